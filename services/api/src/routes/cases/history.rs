//! A case's event history as JSON: the envelope's fields and `data`, each event's own fields.
//!
//! The one place that renders events for people. Timestamps are RFC 3339; optional fields
//! that are not set are `null`; bytes (a notification's encrypted destination) are never
//! rendered.

use chrono::{DateTime, SecondsFormat, Utc};
use deskie_proto::Timestamp;
use deskie_proto::events::{CustomerDetails, Envelope, Event, OptionalText};
use deskie_store::read_models::cases::attachments;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// One event of a case's history.
#[derive(Debug, Serialize)]
pub struct EventJson {
    id: String,
    #[serde(rename = "type")]
    event_type: &'static str,
    version: u64,
    occurred_at: Option<String>,
    emitted_by: String,
    causation_id: String,
    correlation_id: String,
    data: Value,
}

impl From<Envelope> for EventJson {
    fn from(envelope: Envelope) -> Self {
        Self {
            event_type: envelope.event.as_ref().map_or("unknown", Event::type_name),
            data: envelope.event.as_ref().map_or_else(|| json!({}), data),
            id: envelope.event_id,
            version: envelope.version,
            occurred_at: time(envelope.occurred_at.as_ref()),
            emitted_by: envelope.emitted_by,
            causation_id: envelope.causation_id,
            correlation_id: envelope.correlation_id,
        }
    }
}

/// The fields of `event`. Exhaustive on purpose: a new event must decide how it shows.
pub fn data(event: &Event) -> Value {
    match event {
        Event::CaseOpened(e) => json!({
            "integration_id": e.integration_id,
            "channel": e.channel,
            "chatra_client_id": e.chatra_client_id,
            "chatra_chat_id": e.chatra_chat_id,
            "chatra_group_id": e.chatra_group_id,
            "group_id": e.group_id,
            "panel": e.panel,
        }),
        Event::CustomerMessageReceived(e) => json!({
            "message_id": e.message_id,
            "chatra_message_id": e.chatra_message_id,
            "text": e.text,
            "created_at": time(e.created_at.as_ref()),
            "attachments": attachments(&e.attachments),
        }),
        Event::SystemMessageReceived(e) => json!({
            "message_id": e.message_id,
            "chatra_message_id": e.chatra_message_id,
            "chatra_type": e.chatra_type,
            "text": e.text,
            "created_at": time(e.created_at.as_ref()),
            "attachments": attachments(&e.attachments),
        }),
        Event::UnmatchedEchoReceived(e) => json!({
            "chatra_message_id": e.chatra_message_id,
            "chatra_agent_id": e.chatra_agent_id,
            "text": e.text,
            "created_at": time(e.created_at.as_ref()),
            "received_from": e.received_from,
        }),
        Event::AgentMessageMirrored(e) => json!({
            "message_id": e.message_id,
            "chatra_message_id": e.chatra_message_id,
            "chatra_agent_id": e.chatra_agent_id,
            "agent_id": e.agent_id,
            "agent_name": e.agent_name,
            "text": e.text,
            "created_at": time(e.created_at.as_ref()),
            "attachments": attachments(&e.attachments),
        }),
        Event::ReplyRequested(e) => json!({
            "message_id": e.message_id,
            "agent_id": e.agent_id,
            "text": e.text,
            "source": e.source,
            "rule_id": e.rule_id,
        }),
        Event::ReplyDelivered(e) => json!({
            "message_id": e.message_id,
            "chatra_message_id": e.chatra_message_id,
            "chatra_agent_id": e.chatra_agent_id,
            "agent_id": e.agent_id,
            "settled_by": e.settled_by,
        }),
        Event::ReplyFailed(e) => json!({"message_id": e.message_id, "reason": e.reason}),
        Event::ReplyOutcomeUnknown(e) => json!({
            "message_id": e.message_id,
            "reason": e.reason,
            "settle_by": time(e.settle_by.as_ref()),
        }),
        Event::CustomerDataChanged(e) => {
            // Only what changed is in the event: absent fields stay out, a cleared one is null.
            let mut data = Map::new();
            for (key, text) in [("name", &e.name), ("email", &e.email), ("phone", &e.phone)] {
                if let Some(OptionalText { value }) = text {
                    data.insert(key.into(), json!(value));
                }
            }
            if e.fields_changed {
                let fields: Vec<Value> = e
                    .fields
                    .iter()
                    .map(|f| json!({"key": f.key, "value": f.value}))
                    .collect();
                data.insert("fields".into(), Value::Array(fields));
            }
            if let Some(details) = &e.details {
                data.insert("details".into(), customer_details(details));
            }
            data.insert("source".into(), json!(e.source));
            data.insert("agent_id".into(), json!(e.agent_id));
            Value::Object(data)
        }
        Event::CaseAssigned(e) => json!({
            "assignee_id": e.assignee_id,
            "by_agent_id": e.by_agent_id,
            "by_rule_id": e.by_rule_id,
        }),
        Event::CaseGroupChanged(e) => json!({
            "group_id": e.group_id,
            "by_agent_id": e.by_agent_id,
            "by_rule_id": e.by_rule_id,
            "reason": e.reason,
            "chatra_group_id": e.chatra_group_id,
        }),
        Event::CaseStatusChanged(e) => json!({
            "from": e.from,
            "to": e.to,
            "by_agent_id": e.by_agent_id,
            "by_rule_id": e.by_rule_id,
        }),
        Event::CaseResumed(e) => json!({
            "message_id": e.message_id,
            "previous_status": e.previous_status,
        }),
        Event::ChatEnded(_) => json!({}),
        Event::RuleFired(e) => json!({
            "rule_id": e.rule_id,
            "rule_name": e.rule_name,
            "trigger": e.trigger,
            "matched_conditions": e.matched_conditions,
            "cause_event_id": e.cause_event_id,
        }),
        Event::NotificationRequested(e) => json!({
            "notification_id": e.notification_id,
            "kind": e.kind,
            "text": e.text,
            "telegram_chat_id": e.telegram_chat_id,
            "sound": e.sound,
            "rule_id": e.rule_id,
        }),
        Event::NotificationDelivered(e) => json!({
            "notification_id": e.notification_id,
            "kind": e.kind,
            "by_rule_id": e.by_rule_id,
            "attempts": e.attempts,
        }),
        Event::NotificationFailed(e) => json!({
            "notification_id": e.notification_id,
            "kind": e.kind,
            "by_rule_id": e.by_rule_id,
            "reason": e.reason,
            "attempts": e.attempts,
        }),
        // Configuration events never belong to a case stream; nothing of them is shown here.
        Event::GroupCreated(_)
        | Event::GroupRenamed(_)
        | Event::IntegrationConnected(_)
        | Event::IntegrationUpdated(_)
        | Event::IntegrationDisconnected(_)
        | Event::IntegrationKeysChecked(_)
        | Event::IntegrationAgentStatusSyncChanged(_)
        | Event::AgentCreated(_)
        | Event::AgentUpdated(_)
        | Event::AgentDisabled(_)
        | Event::AgentTokenRotated(_)
        | Event::AgentStatusChanged(_)
        | Event::AgentChatraLinked(_)
        | Event::RuleCreated(_)
        | Event::RuleUpdated(_)
        | Event::RuleDeleted(_) => json!({}),
    }
}

fn customer_details(d: &CustomerDetails) -> Value {
    json!({
        "ip": d.ip,
        "browser": d.browser,
        "os": d.os,
        "language": d.language,
        "location": d.location,
        "last_visit": time(d.last_visit.as_ref()),
    })
}

/// A protobuf timestamp as RFC 3339 (UTC); `None` when unset or out of range.
pub fn time(ts: Option<&Timestamp>) -> Option<String> {
    let ts = ts?;
    let at: DateTime<Utc> = DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)?;
    Some(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deskie_proto::events::{
        CustomerDataChanged, NotificationDelivered, NotificationFailed, NotificationRequested,
    };

    #[test]
    fn customer_data_shows_only_what_changed_and_null_for_cleared() {
        let event = Event::CustomerDataChanged(CustomerDataChanged {
            name: Some(OptionalText {
                value: Some("Ann".into()),
            }),
            email: Some(OptionalText { value: None }),
            source: "agent".into(),
            ..Default::default()
        });
        assert_eq!(
            data(&event),
            json!({"name": "Ann", "email": null, "source": "agent", "agent_id": null})
        );
    }

    #[test]
    fn secrets_in_bytes_are_never_rendered() {
        let event = Event::NotificationRequested(NotificationRequested {
            kind: "slack".into(),
            destination_secret: b"encrypted-url".to_vec(),
            ..Default::default()
        });
        let rendered = data(&event).to_string();
        assert!(!rendered.contains("destination"), "{rendered}");
    }

    #[test]
    fn notification_outcomes_show_their_ids_kind_rule_reason_and_attempts() {
        let delivered = Event::NotificationDelivered(NotificationDelivered {
            notification_id: "n-1".into(),
            kind: "slack".into(),
            by_rule_id: Some("rule-1".into()),
            attempts: 2,
        });
        assert_eq!(
            data(&delivered),
            json!({"notification_id": "n-1", "kind": "slack", "by_rule_id": "rule-1", "attempts": 2})
        );
        let failed = Event::NotificationFailed(NotificationFailed {
            notification_id: "n-2".into(),
            kind: "telegram".into(),
            by_rule_id: None,
            reason: "refused (HTTP 400): Bad Request: chat not found".into(),
            attempts: 1,
        });
        assert_eq!(
            data(&failed),
            json!({
                "notification_id": "n-2",
                "kind": "telegram",
                "by_rule_id": null,
                "reason": "refused (HTTP 400): Bad Request: chat not found",
                "attempts": 1,
            })
        );
        let envelope = Envelope {
            event_id: "e-1".into(),
            stream_type: "case".into(),
            version: 3,
            emitted_by: "outbound".into(),
            causation_id: "slack_notification:n-1".into(),
            correlation_id: "n-1".into(),
            event: Some(delivered),
            ..Default::default()
        };
        let shown = serde_json::to_value(EventJson::from(envelope)).unwrap_or_default();
        assert_eq!(shown["type"], "notification_delivered");
        assert_eq!(shown["emitted_by"], "outbound");
        assert_eq!(shown["data"]["attempts"], 2);
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let ts = Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        };
        assert_eq!(time(Some(&ts)).as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(time(None), None);
    }
}
