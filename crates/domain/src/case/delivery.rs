//! From the outcome of a reply's delivery to case events (decide).

use deskie_proto::Timestamp;
use deskie_proto::events::{Event, ReplyDelivered, ReplyFailed, ReplyOutcomeUnknown};

use super::state::CaseState;

/// What became of one attempt to deliver a reply, as outbound saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    /// Chatra answered with the new message.
    Delivered {
        /// Chatra's message id.
        chatra_message_id: String,
        /// The Chatra agent it was sent as, when Chatra said.
        chatra_agent_id: Option<String>,
    },
    /// It did not reach the visitor and will not be retried by itself.
    Failed {
        /// Why, for the agent.
        reason: String,
    },
    /// It may have reached the visitor; the echo or the deadline will tell.
    Unknown {
        /// Why.
        reason: String,
        /// When it becomes `Failed` unless the echo arrived.
        settle_by: Timestamp,
    },
}

/// The events an outcome adds to the case: nothing for a reply the case never asked for, nor
/// for one already delivered (the echo may settle it before Chatra's own answer is
/// recorded), nor for a failure already recorded; and nothing for a Chatra message id the
/// case already holds (the echo gave it to another reply with the same text; this reply's
/// own echo settles it then). Pure: outbound calls it under the case's lock.
pub fn decide_delivery(
    state: &CaseState,
    message_id: &str,
    outcome: &DeliveryOutcome,
) -> Vec<Event> {
    let Some(reply) = state.reply(message_id) else {
        return Vec::new();
    };
    if reply.chatra_message_id.is_some() {
        return Vec::new();
    }
    let event = match outcome {
        DeliveryOutcome::Delivered {
            chatra_message_id,
            chatra_agent_id,
        } => {
            if state.chatra_message_ids.contains(chatra_message_id) {
                return Vec::new();
            }
            Event::ReplyDelivered(ReplyDelivered {
                message_id: message_id.to_owned(),
                chatra_message_id: chatra_message_id.clone(),
                chatra_agent_id: chatra_agent_id.clone(),
                agent_id: reply.agent_id.clone(),
                settled_by: "chatra_response".into(),
            })
        }
        DeliveryOutcome::Failed { reason } => {
            if reply.failed {
                return Vec::new();
            }
            Event::ReplyFailed(ReplyFailed {
                message_id: message_id.to_owned(),
                reason: reason.clone(),
            })
        }
        DeliveryOutcome::Unknown { reason, settle_by } => {
            if reply.failed {
                return Vec::new();
            }
            Event::ReplyOutcomeUnknown(ReplyOutcomeUnknown {
                message_id: message_id.to_owned(),
                reason: reason.clone(),
                settle_by: Some(*settle_by),
            })
        }
    };
    vec![event]
}

#[cfg(test)]
mod tests {
    use deskie_proto::events::ReplyRequested;

    use super::*;

    fn requested(id: &str, text: &str) -> Event {
        Event::ReplyRequested(ReplyRequested {
            message_id: id.into(),
            agent_id: Some("agent-1".into()),
            text: text.into(),
            source: "deskie".into(),
            rule_id: None,
        })
    }

    fn delivered(chatra_id: &str) -> DeliveryOutcome {
        DeliveryOutcome::Delivered {
            chatra_message_id: chatra_id.into(),
            chatra_agent_id: Some("chatra-7".into()),
        }
    }

    fn failed() -> DeliveryOutcome {
        DeliveryOutcome::Failed {
            reason: "no echo".into(),
        }
    }

    #[test]
    fn a_delivery_names_the_agent_and_is_recorded_once() {
        let mut state = CaseState::from_events(&[requested("m1", "hi")]);
        let events = decide_delivery(&state, "m1", &delivered("c1"));
        let [Event::ReplyDelivered(d)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(d.agent_id.as_deref(), Some("agent-1"));
        assert_eq!(d.settled_by, "chatra_response");
        state.apply(&events[0]);
        assert!(decide_delivery(&state, "m1", &delivered("c1")).is_empty());
        assert!(
            decide_delivery(&state, "m1", &failed()).is_empty(),
            "delivered stays delivered"
        );
    }

    #[test]
    fn nothing_for_an_unknown_reply_or_an_id_the_echo_gave_another_reply() {
        let state = CaseState::from_events(&[
            requested("m1", "ok"),
            requested("m2", "ok"),
            Event::ReplyDelivered(ReplyDelivered {
                message_id: "m1".into(),
                chatra_message_id: "c1".into(),
                settled_by: "echo".into(),
                ..Default::default()
            }),
        ]);
        assert!(decide_delivery(&state, "nope", &delivered("c9")).is_empty());
        assert!(decide_delivery(&state, "m2", &delivered("c1")).is_empty());
        assert_eq!(decide_delivery(&state, "m2", &delivered("c2")).len(), 1);
    }

    #[test]
    fn unknown_then_failed_once_and_a_late_delivery_still_counts() {
        let mut state = CaseState::from_events(&[requested("m1", "hi")]);
        let unknown = DeliveryOutcome::Unknown {
            reason: "HTTP 500".into(),
            settle_by: Timestamp::default(),
        };
        let events = decide_delivery(&state, "m1", &unknown);
        assert!(matches!(events.as_slice(), [Event::ReplyOutcomeUnknown(_)]));
        state.apply(&events[0]);
        let events = decide_delivery(&state, "m1", &failed());
        assert!(matches!(events.as_slice(), [Event::ReplyFailed(_)]));
        state.apply(&events[0]);
        assert!(decide_delivery(&state, "m1", &failed()).is_empty());
        assert_eq!(decide_delivery(&state, "m1", &delivered("c1")).len(), 1);
    }
}
