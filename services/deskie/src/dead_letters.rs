//! `deskie dead-letters`: list what consumers gave up on.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use deskie_bus::Bus;
use deskie_bus::dead_letter::headers;
use futures::StreamExt;

/// One dead letter, as listed to an operator.
#[derive(Debug, Clone)]
pub struct DeadLetterSummary {
    /// Sequence in the dead-letter stream.
    pub sequence: u64,
    /// The consumer that gave up.
    pub consumer: String,
    /// Original subject.
    pub subject: String,
    /// Deliveries before giving up.
    pub deliveries: String,
    /// Why.
    pub reason: String,
}

/// Up to `limit` dead letters, oldest first.
pub async fn list(bus: &Bus, limit: usize) -> anyhow::Result<Vec<DeadLetterSummary>> {
    let stream = bus
        .jetstream()
        .get_stream(bus.topology().dead_letter_stream())
        .await?;
    let consumer = stream
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer
        .fetch()
        .max_messages(limit)
        .expires(Duration::from_secs(1))
        .messages()
        .await?;
    let mut out = Vec::new();
    while let Some(Ok(message)) = messages.next().await {
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        out.push(DeadLetterSummary {
            sequence: message.info().map(|i| i.stream_sequence).unwrap_or(0),
            consumer: header(headers::CONSUMER),
            subject: header(headers::SUBJECT),
            deliveries: header(headers::DELIVERIES),
            reason: header(headers::REASON),
        });
    }
    Ok(out)
}
