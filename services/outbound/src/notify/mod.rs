//! Staff notifications a rule asked for (`NotificationRequested`): Slack incoming webhooks
//! and Telegram bots. Not customer-visible, so unlike replies they may be sent again when
//! the outcome is unclear (a timeout, a 5xx, a lost claim): a rare duplicate in a staff
//! channel is better than a missed alert.
//!
//! The ledger row holds the destination still encrypted (as the rule stored it); it is
//! decrypted just before the call and dropped after it, and never logged.

mod client;
mod worker;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use deskie_proto::events::NotificationRequested;
use deskie_store::outbox::NewIntent;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use client::{NotifyClient, NotifyError};
pub(crate) use worker::Notifier;

/// Ledger kind of a post to a Slack incoming webhook.
pub const SLACK_NOTIFICATION: &str = "slack_notification";
/// Ledger kind of a Telegram bot's `sendMessage`.
pub const TELEGRAM_NOTIFICATION: &str = "telegram_notification";
/// Where Telegram's Bot API lives unless `DESKIE_TELEGRAM_API_URL` says otherwise.
pub const DEFAULT_TELEGRAM_API_URL: &str = "https://api.telegram.org";

/// The ledger key of a notification: `{kind}:{notification_id}`.
pub fn notification_intent_key(kind: &str, notification_id: &str) -> String {
    format!("{kind}:{notification_id}")
}

/// What a notification ledger row holds: nothing secret in clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationIntent {
    /// The case the rule fired on.
    pub case_id: Uuid,
    /// The notification (unique per cause, rule and action).
    pub notification_id: String,
    /// The text, rendered by the rule (Slack texts already escaped).
    pub text: String,
    /// The webhook URL (Slack) or bot token (Telegram), still encrypted with
    /// `DESKIE_ENCRYPTION_KEY`, in standard base64.
    pub destination_encrypted: String,
    /// The Telegram chat (`-100…` or `@name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_chat_id: Option<String>,
    /// The rule that asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The trace context of the event, so the delivery continues its trace.
    #[serde(default)]
    pub trace: Vec<(String, String)>,
}

impl NotificationIntent {
    /// The ciphertext of the destination.
    pub(crate) fn destination_ciphertext(&self) -> Result<Vec<u8>, base64::DecodeError> {
        BASE64.decode(&self.destination_encrypted)
    }
}

/// The ledger row for `requested` on `case_id`, when outbound sends it (`slack`, `telegram`;
/// `sound` is the api's). No stream: notifications need no order among themselves or with
/// the case's replies, and a slow Slack must not hold a case's replies back.
pub fn notification_intent(
    case_id: Uuid,
    requested: &NotificationRequested,
    trace: Vec<(String, String)>,
) -> Option<Result<NewIntent, serde_json::Error>> {
    let kind = notification_kind(requested)?;
    let intent = NotificationIntent {
        case_id,
        notification_id: requested.notification_id.clone(),
        text: requested.text.clone(),
        destination_encrypted: BASE64.encode(&requested.destination_secret),
        telegram_chat_id: requested.telegram_chat_id.clone(),
        rule_id: requested.rule_id.clone(),
        trace,
    };
    Some(serde_json::to_value(&intent).map(|payload| NewIntent {
        intent_key: notification_intent_key(kind, &requested.notification_id),
        kind: kind.to_owned(),
        stream_id: None,
        payload,
    }))
}

/// The ledger kind of `requested`, when outbound sends it.
pub fn notification_kind(requested: &NotificationRequested) -> Option<&'static str> {
    match requested.kind.as_str() {
        "slack" => Some(SLACK_NOTIFICATION),
        "telegram" => Some(TELEGRAM_NOTIFICATION),
        _ => None,
    }
}

/// The rate-limit key of a destination: a hash of the kind, the secret and the chat, so the
/// limiter holds no secret. Slack is paced per webhook, Telegram per bot and chat.
pub(crate) fn destination_key(kind: &str, secret: &str, chat_id: Option<&str>) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in [kind, secret, chat_id.unwrap_or_default()] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requested(kind: &str) -> NotificationRequested {
        NotificationRequested {
            notification_id: "n-1".into(),
            kind: kind.into(),
            text: "New chat".into(),
            destination_secret: vec![0, 1, 2, 250],
            telegram_chat_id: (kind == "telegram").then(|| "-100200".into()),
            sound: None,
            rule_id: Some("r-1".into()),
        }
    }

    #[test]
    fn slack_and_telegram_get_a_row_sound_does_not() {
        let case_id = Uuid::now_v7();
        let slack = notification_intent(case_id, &requested("slack"), vec![])
            .and_then(Result::ok)
            .expect("slack row");
        assert_eq!(slack.intent_key, "slack_notification:n-1");
        assert_eq!(slack.stream_id, None);
        let intent: NotificationIntent = serde_json::from_value(slack.payload).expect("intent");
        assert_eq!(
            intent.destination_ciphertext().ok(),
            Some(vec![0, 1, 2, 250])
        );
        let telegram = notification_intent(case_id, &requested("telegram"), vec![])
            .and_then(Result::ok)
            .expect("telegram row");
        assert_eq!(telegram.kind, TELEGRAM_NOTIFICATION);
        assert_eq!(telegram.payload["telegram_chat_id"], "-100200");
        assert!(notification_intent(case_id, &requested("sound"), vec![]).is_none());
    }

    #[test]
    fn destinations_are_told_apart_without_holding_the_secret() {
        let a = destination_key("telegram", "1:abc", Some("-1"));
        assert_ne!(a, destination_key("telegram", "1:abc", Some("-2")));
        assert_ne!(a, destination_key("telegram", "1:ab", Some("c-1")));
        assert_eq!(a, destination_key("telegram", "1:abc", Some("-1")));
    }
}
