//! Reading back what a test published.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{Context, Message};
use futures::StreamExt;

/// Every message of `stream`, in stream order, once it holds at least `at_least` messages
/// (or after `wait`, whichever comes first: the caller's assertions then show what is missing).
pub async fn read_stream(
    jetstream: &Context,
    stream: &str,
    at_least: usize,
    wait: Duration,
) -> Vec<Message> {
    let deadline = Instant::now() + wait;
    loop {
        let mut handle = jetstream
            .get_stream(stream)
            .await
            .unwrap_or_else(|e| panic!("stream {stream}: {e}"));
        let count = handle
            .info()
            .await
            .map(|i| i.state.messages as usize)
            .unwrap_or(0);
        if count >= at_least || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let handle = jetstream
        .get_stream(stream)
        .await
        .unwrap_or_else(|e| panic!("stream {stream}: {e}"));
    let consumer = handle
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("consumer on {stream}: {e}"));
    let mut messages = consumer
        .messages()
        .await
        .unwrap_or_else(|e| panic!("pull {stream}: {e}"));
    let mut out = Vec::new();
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_millis(500), messages.next()).await
    {
        out.push(message);
    }
    out
}

/// The value of header `name` on `message`, or "".
pub fn header(message: &Message, name: &str) -> String {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}
