//! From the outcome of a staff notification (Slack, Telegram) to a case event (decide).

use deskie_proto::events::{Event, NotificationDelivered, NotificationFailed};

use super::state::CaseState;

/// The longest `NotificationFailed.reason` kept, in characters; longer reasons are cut and end
/// with `…`. A reason quotes the peer's answer, which the case needs only the start of.
pub const MAX_NOTIFICATION_REASON_CHARS: usize = 300;

/// How a staff notification settled, as outbound saw it when it settled the ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// The destination accepted it.
    Delivered,
    /// It will not be sent.
    Failed {
        /// Why, already free of secrets (the caller scrubs the webhook URL or bot token).
        reason: String,
    },
}

/// The event that records `outcome` of the notification `notification_id` after `attempts`
/// delivery attempts, or `None` when there is nothing to record: the case never asked for
/// that notification, it is not one outbound sends (a `sound`), or its outcome is already on
/// the case (a second worker, or a redelivery, never records twice). Kind and rule come from
/// the case's `NotificationRequested`, not from the caller. Pure: outbound calls it under the
/// case's lock, in the transaction that settles the ledger row.
pub fn decide_notification(
    state: &CaseState,
    notification_id: &str,
    attempts: u32,
    outcome: &NotificationOutcome,
) -> Option<Event> {
    let requested = state.notification(notification_id)?;
    if !requested.awaits_outcome() {
        return None;
    }
    let notification_id = notification_id.to_owned();
    let kind = requested.kind.clone();
    let by_rule_id = requested.rule_id.clone();
    Some(match outcome {
        NotificationOutcome::Delivered => Event::NotificationDelivered(NotificationDelivered {
            notification_id,
            kind,
            by_rule_id,
            attempts,
        }),
        NotificationOutcome::Failed { reason } => Event::NotificationFailed(NotificationFailed {
            notification_id,
            kind,
            by_rule_id,
            reason: shorten(reason),
            attempts,
        }),
    })
}

/// `reason` cut to [`MAX_NOTIFICATION_REASON_CHARS`] characters.
fn shorten(reason: &str) -> String {
    let mut chars = reason.chars();
    let mut kept: String = chars
        .by_ref()
        .take(MAX_NOTIFICATION_REASON_CHARS - 1)
        .collect();
    match (chars.next(), chars.next()) {
        (None, _) => {}
        (Some(last), None) => kept.push(last),
        (Some(_), Some(_)) => kept.push('…'),
    }
    kept
}

#[cfg(test)]
mod tests {
    use deskie_proto::events::{CaseOpened, NotificationRequested};

    use super::*;
    use crate::rules::{HistoryEvent, case_change, changes_to_evaluate, context_at};

    fn requested(id: &str, kind: &str) -> Event {
        Event::NotificationRequested(NotificationRequested {
            notification_id: id.into(),
            kind: kind.into(),
            text: "New chat".into(),
            destination_secret: b"ciphertext".to_vec(),
            telegram_chat_id: (kind == "telegram").then(|| "-100200".into()),
            sound: (kind == "sound").then(|| "ding".into()),
            rule_id: Some("rule-1".into()),
        })
    }

    fn failed(reason: &str) -> NotificationOutcome {
        NotificationOutcome::Failed {
            reason: reason.into(),
        }
    }

    #[test]
    fn a_delivery_names_the_request_and_is_recorded_once() {
        let mut state = CaseState::from_events(&[requested("n1", "slack")]);
        let event = decide_notification(&state, "n1", 2, &NotificationOutcome::Delivered);
        let Some(Event::NotificationDelivered(delivered)) = &event else {
            panic!("{event:?}")
        };
        assert_eq!(
            delivered,
            &NotificationDelivered {
                notification_id: "n1".into(),
                kind: "slack".into(),
                by_rule_id: Some("rule-1".into()),
                attempts: 2,
            }
        );
        let before = state.clone();
        if let Some(event) = &event {
            state.apply(event);
        }
        assert_eq!(state.version, before.version + 1);
        assert_eq!(
            (state.status, &state.replies, &state.customer),
            (before.status, &before.replies, &before.customer),
            "the case itself is unchanged"
        );
        assert_eq!(
            decide_notification(&state, "n1", 3, &NotificationOutcome::Delivered),
            None,
            "a second worker or a redelivery records nothing"
        );
        assert_eq!(
            decide_notification(&state, "n1", 3, &failed("http 500")),
            None
        );
    }

    #[test]
    fn a_failure_carries_its_reason_and_is_recorded_once() {
        let mut state = CaseState::from_events(&[requested("n1", "telegram")]);
        let event = decide_notification(&state, "n1", 1, &failed("refused (HTTP 404): no_service"));
        let Some(Event::NotificationFailed(failure)) = &event else {
            panic!("{event:?}")
        };
        assert_eq!(failure.kind, "telegram");
        assert_eq!(failure.reason, "refused (HTTP 404): no_service");
        assert_eq!(failure.attempts, 1);
        if let Some(event) = &event {
            state.apply(event);
        }
        assert_eq!(decide_notification(&state, "n1", 1, &failed("again")), None);
        assert_eq!(
            decide_notification(&state, "n1", 2, &NotificationOutcome::Delivered),
            None
        );
    }

    #[test]
    fn nothing_for_a_notification_the_case_never_asked_for_or_a_sound() {
        let state = CaseState::from_events(&[requested("n1", "slack"), requested("s1", "sound")]);
        assert_eq!(
            decide_notification(&state, "other", 1, &NotificationOutcome::Delivered),
            None
        );
        assert_eq!(
            decide_notification(&state, "s1", 1, &NotificationOutcome::Delivered),
            None
        );
        assert!(decide_notification(&state, "n1", 1, &NotificationOutcome::Delivered).is_some());
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let state = CaseState::from_events(&[requested("n1", "slack")]);
        let long = "é".repeat(MAX_NOTIFICATION_REASON_CHARS + 10);
        let Some(Event::NotificationFailed(f)) =
            decide_notification(&state, "n1", 8, &failed(&long))
        else {
            panic!("a failure")
        };
        assert_eq!(f.reason.chars().count(), MAX_NOTIFICATION_REASON_CHARS);
        assert!(f.reason.ends_with('…'));
        let exact = "x".repeat(MAX_NOTIFICATION_REASON_CHARS);
        assert_eq!(shorten(&exact), exact);
    }

    #[test]
    fn outcomes_trigger_no_rules() {
        let delivered = Event::NotificationDelivered(NotificationDelivered {
            notification_id: "n1".into(),
            kind: "slack".into(),
            ..Default::default()
        });
        let failed = Event::NotificationFailed(NotificationFailed {
            notification_id: "n2".into(),
            kind: "telegram".into(),
            reason: "http 404".into(),
            ..Default::default()
        });
        assert_eq!(case_change(&delivered), None);
        assert_eq!(case_change(&failed), None);
        assert!(changes_to_evaluate(&[&delivered, &failed]).is_empty());

        let history = [
            Event::CaseOpened(CaseOpened::default()),
            requested("n1", "slack"),
            delivered,
            failed,
        ];
        let causes = [
            "webhook",
            "rule",
            "slack_notification:n1",
            "telegram_notification:n2",
        ];
        let history: Vec<HistoryEvent<'_>> = history
            .iter()
            .zip(causes)
            .map(|(event, causation_id)| HistoryEvent {
                causation_id,
                event,
            })
            .collect();
        let now = chrono::Utc::now();
        for index in 1..history.len() {
            assert!(
                context_at(uuid::Uuid::nil(), &history, index, now).is_none(),
                "{index}"
            );
        }
    }
}
