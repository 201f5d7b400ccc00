//! Dead letters: messages a consumer gave up on, kept with the reason in their own stream.

use async_nats::HeaderMap;

use crate::consumer::Delivery;
use crate::{Bus, BusError};

/// Header names on a dead letter.
pub mod headers {
    /// The stream the message came from.
    pub const STREAM: &str = "Deskie-Dead-Letter-Stream";
    /// Its sequence there.
    pub const SEQUENCE: &str = "Deskie-Dead-Letter-Sequence";
    /// Its original subject.
    pub const SUBJECT: &str = "Deskie-Dead-Letter-Subject";
    /// The consumer that gave up.
    pub const CONSUMER: &str = "Deskie-Dead-Letter-Consumer";
    /// How many deliveries it had.
    pub const DELIVERIES: &str = "Deskie-Dead-Letter-Deliveries";
    /// Why it was given up.
    pub const REASON: &str = "Deskie-Dead-Letter-Reason";
    /// The original `Nats-Msg-Id`.
    pub const ORIGINAL_MESSAGE_ID: &str = "Deskie-Original-Msg-Id";
}

/// Writes a dead-letter record for `delivery` (idempotent per consumer and sequence).
pub async fn record(
    bus: &Bus,
    consumer: &str,
    stream: &str,
    delivery: &Delivery,
    reason: &str,
) -> Result<(), BusError> {
    let mut out = HeaderMap::new();
    if let Some(original) = &delivery.headers {
        for (name, values) in original.iter() {
            let name: &str = name.as_ref();
            if name.eq_ignore_ascii_case(async_nats::header::NATS_MESSAGE_ID.as_ref()) {
                continue;
            }
            for value in values {
                out.append(name, value.as_str());
            }
        }
    }
    if let Some(id) = delivery.message_id() {
        out.insert(headers::ORIGINAL_MESSAGE_ID, id);
    }
    out.insert(headers::STREAM, stream);
    out.insert(
        headers::SEQUENCE,
        delivery.stream_sequence.to_string().as_str(),
    );
    out.insert(headers::SUBJECT, delivery.subject.as_str());
    out.insert(headers::CONSUMER, consumer);
    out.insert(headers::DELIVERIES, delivery.delivered.to_string().as_str());
    // Header values cannot hold line breaks; keep the reason on one bounded line.
    let reason: String = reason
        .replace(['\r', '\n'], " ")
        .chars()
        .take(512)
        .collect();
    out.insert(headers::REASON, reason.as_str());
    let message_id = format!(
        "dead-letter:{consumer}:{stream}:{}",
        delivery.stream_sequence
    );
    bus.publish_durable(
        bus.topology().dead_letter_subject(consumer),
        &message_id,
        out,
        delivery.payload.clone(),
    )
    .await
    .map(|_| ())
}
