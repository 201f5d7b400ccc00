//! The protobuf contract between deskie services (see `docs/events.md`).
//!
//! Everything on NATS is one of these messages; the `.proto` sources live in `proto/`.

/// Case and configuration events, wrapped in [`events::Envelope`].
pub mod events {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("deskie.events.v1");

    /// The event inside an envelope.
    pub use envelope::Event;
}

/// What ingest publishes for each accepted webhook.
pub mod webhooks {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("deskie.webhooks.v1");
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
            GroupCreated(_) => "group_created",
            GroupRenamed(_) => "group_renamed",
            IntegrationConnected(_) => "integration_connected",
            IntegrationUpdated(_) => "integration_updated",
            IntegrationDisconnected(_) => "integration_disconnected",
            IntegrationKeysChecked(_) => "integration_keys_checked",
        }
    }
}
