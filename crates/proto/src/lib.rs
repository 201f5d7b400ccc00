//! The protobuf contract between deskie services (see `docs/events.md`).
//!
//! Everything on NATS is one of these messages; the `.proto` sources live in `proto/`.

/// Case and configuration events, wrapped in [`events::Envelope`].
pub mod events {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/deskie.events.v1.rs"));

    /// The event inside an envelope.
    pub use envelope::Event;
}

/// What ingest publishes for each accepted webhook.
pub mod webhooks {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/deskie.webhooks.v1.rs"));
}

/// The body of a [`webhooks::ChatraWebhookReceived`]: compressed when large, so a body at
/// ingest's 1 MiB limit still fits in one NATS message.
pub mod webhook_body {
    /// Bodies above this size travel gzip-compressed, so a body at the 1 MiB limit still fits in
    /// one NATS message (the server's default `max_payload` is 1 MB).
    const COMPRESS_ABOVE: usize = 512 * 1024;

    /// Encodes a webhook body for [`crate::webhooks::ChatraWebhookReceived`]: `(body_encoding, bytes)`.
    pub fn encode(body: &[u8]) -> (&'static str, Vec<u8>) {
        use std::io::Write;
        if body.len() <= COMPRESS_ABOVE {
            return ("", body.to_vec());
        }
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        match encoder.write_all(body).and_then(|()| encoder.finish()) {
            Ok(compressed) => ("gzip", compressed),
            Err(_) => ("", body.to_vec()),
        }
    }

    /// The webhook's JSON body as received, undoing ingest's compression.
    pub fn decode(message: &crate::webhooks::ChatraWebhookReceived) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        match message.body_encoding.as_str() {
            "" => Ok(message.body.clone()),
            "gzip" => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(message.body.as_slice()).read_to_end(&mut out)?;
                Ok(out)
            }
            other => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unknown body encoding {other:?}"),
            )),
        }
    }
}

pub use prost::Message;
pub use prost_types::Timestamp;

/// Converts a UTC instant in milliseconds since the epoch into a protobuf timestamp.
pub fn timestamp_from_millis(millis: i64) -> Timestamp {
    Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Converts a protobuf timestamp back into milliseconds since the epoch.
pub fn timestamp_to_millis(ts: &Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(ts.nanos) / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_including_before_the_epoch() {
        for millis in [0, 1, 999, 1_732_608_000_123, -1, -1001] {
            assert_eq!(timestamp_to_millis(&timestamp_from_millis(millis)), millis);
        }
    }
}

impl events::Event {
    /// The snake_case name of the event: the last subject token and the `event_type` column.
    pub fn type_name(&self) -> &'static str {
        use events::Event::*;
        match self {
            CaseOpened(_) => "case_opened",
            CustomerMessageReceived(_) => "customer_message_received",
            SystemMessageReceived(_) => "system_message_received",
            UnmatchedEchoReceived(_) => "unmatched_echo_received",
            AgentMessageMirrored(_) => "agent_message_mirrored",
            ReplyRequested(_) => "reply_requested",
            ReplyDelivered(_) => "reply_delivered",
            ReplyFailed(_) => "reply_failed",
            ReplyOutcomeUnknown(_) => "reply_outcome_unknown",
            CustomerDataChanged(_) => "customer_data_changed",
            CaseAssigned(_) => "case_assigned",
            CaseGroupChanged(_) => "case_group_changed",
            CaseStatusChanged(_) => "case_status_changed",
            CaseResumed(_) => "case_resumed",
            ChatEnded(_) => "chat_ended",
            RuleFired(_) => "rule_fired",
            NotificationRequested(_) => "notification_requested",
            NotificationDelivered(_) => "notification_delivered",
            NotificationFailed(_) => "notification_failed",
            GroupCreated(_) => "group_created",
            GroupRenamed(_) => "group_renamed",
            IntegrationConnected(_) => "integration_connected",
            IntegrationUpdated(_) => "integration_updated",
            IntegrationDisconnected(_) => "integration_disconnected",
            IntegrationKeysChecked(_) => "integration_keys_checked",
            IntegrationAgentStatusSyncChanged(_) => "integration_agent_status_sync_changed",
            AgentCreated(_) => "agent_created",
            AgentUpdated(_) => "agent_updated",
            AgentDisabled(_) => "agent_disabled",
            AgentTokenRotated(_) => "agent_token_rotated",
            AgentStatusChanged(_) => "agent_status_changed",
            AgentChatraLinked(_) => "agent_chatra_linked",
            RuleCreated(_) => "rule_created",
            RuleUpdated(_) => "rule_updated",
            RuleDeleted(_) => "rule_deleted",
        }
    }
}

#[cfg(test)]
mod body_tests {
    use super::*;

    #[test]
    fn large_bodies_are_compressed_and_decode_to_the_original() {
        let small = br#"{"eventName":"chatStarted"}"#.to_vec();
        let large = format!(
            r#"{{"eventName":"chatFragment","pad":"{}"}}"#,
            "x".repeat(700 * 1024)
        )
        .into_bytes();
        for body in [small, large] {
            let (encoding, bytes) = webhook_body::encode(&body);
            let message = webhooks::ChatraWebhookReceived {
                body: bytes,
                body_encoding: encoding.to_owned(),
                ..Default::default()
            };
            assert_eq!(webhook_body::decode(&message).expect("decodes"), body);
        }
        let (encoding, _) = webhook_body::encode(&vec![b'a'; 600 * 1024]);
        assert_eq!(encoding, "gzip");
    }
}
