//! From fired rules to case events (decide): what a rules service appends for the rules that
//! fired on one case event.

use deskie_proto::events::{
    CaseAssigned, CaseGroupChanged, CaseStatusChanged, Event, NotificationRequested,
    ReplyRequested, RuleFired,
};
use uuid::Uuid;

use super::action::RenderedAction;
use super::evaluate::Firing;
use super::rotation::Rotation;
use crate::case::CaseState;

/// Namespace of the ids of what rules ask for (reply and notification ids), so a
/// redelivered cause decides exactly the same ids.
const RULE_EFFECT_NAMESPACE: Uuid = Uuid::from_u128(0x5d1e_7c2a_9b3f_4e61_a0d8_3c47_e2b9_f106);

/// What the caller provides besides the firings.
pub struct EffectInputs<'a> {
    /// The case event the rules were evaluated against (its event id).
    pub cause_event_id: &'a str,
    /// The round-robin rotation of the case's group.
    pub rotation: &'a Rotation,
    /// Encrypts a destination secret (a Slack webhook URL, a Telegram bot token) for the
    /// bus: secrets never travel in clear.
    pub seal: &'a (dyn Fn(&str) -> Vec<u8> + Sync),
}

/// The events the `firings` add to the case, in order: for each firing, `RuleFired` then one
/// event per action that changes something. Assignments, group and status changes that
/// would change nothing are left out; every event carries the rule id, so
/// [`super::case_change`] never lets it trigger rules again. Reply and notification ids are
/// derived from the cause, the rule and the action's place: deciding again gives the same
/// ids. Returns the events and the agent the rotation assigned, if any.
pub fn decide_rule_effects(
    state: &CaseState,
    firings: &[Firing],
    inputs: &EffectInputs<'_>,
) -> (Vec<Event>, Option<Uuid>) {
    let mut working = state.clone();
    let mut events = Vec::new();
    let mut rotated = None;
    let mut emit = |event: Event, working: &mut CaseState| {
        working.apply(&event);
        events.push(event);
    };
    for firing in firings {
        let rule_id = firing.rule_id.to_string();
        emit(
            Event::RuleFired(RuleFired {
                rule_id: rule_id.clone(),
                rule_name: firing.rule_name.clone(),
                trigger: firing.trigger.as_str().into(),
                matched_conditions: firing.matched_conditions.clone(),
                cause_event_id: inputs.cause_event_id.to_owned(),
            }),
            &mut working,
        );
        for (index, action) in firing.actions.iter().enumerate() {
            let effect_id = Uuid::new_v5(
                &RULE_EFFECT_NAMESPACE,
                format!("{}\0{rule_id}\0{index}", inputs.cause_event_id).as_bytes(),
            )
            .to_string();
            let assign = |agent: Uuid, working: &CaseState| {
                (working.assignee_id.as_deref() != Some(agent.to_string().as_str())).then(|| {
                    Event::CaseAssigned(CaseAssigned {
                        assignee_id: Some(agent.to_string()),
                        by_agent_id: None,
                        by_rule_id: Some(rule_id.clone()),
                    })
                })
            };
            let event = match action {
                RenderedAction::Reply { text } => Some(Event::ReplyRequested(ReplyRequested {
                    message_id: effect_id,
                    agent_id: None,
                    text: text.clone(),
                    source: "rule".into(),
                    rule_id: Some(rule_id.clone()),
                })),
                RenderedAction::Assign { agent_id } => assign(*agent_id, &working),
                RenderedAction::AssignRoundRobin => match inputs.rotation.next() {
                    Some(agent) => {
                        rotated = Some(agent);
                        assign(agent, &working)
                    }
                    None => None,
                },
                RenderedAction::SetGroup { group_id } => {
                    let group = group_id.to_string();
                    (working.group_id != group).then(|| {
                        Event::CaseGroupChanged(CaseGroupChanged {
                            group_id: group,
                            by_rule_id: Some(rule_id.clone()),
                            ..Default::default()
                        })
                    })
                }
                RenderedAction::SetStatus { status } => (working.status != *status).then(|| {
                    Event::CaseStatusChanged(CaseStatusChanged {
                        from: working.status.as_str().into(),
                        to: status.as_str().into(),
                        by_agent_id: None,
                        by_rule_id: Some(rule_id.clone()),
                    })
                }),
                RenderedAction::NotifySlack { webhook_url, text } => {
                    Some(Event::NotificationRequested(NotificationRequested {
                        notification_id: effect_id,
                        kind: "slack".into(),
                        text: text.clone(),
                        destination_secret: (inputs.seal)(webhook_url),
                        telegram_chat_id: None,
                        sound: None,
                        rule_id: Some(rule_id.clone()),
                    }))
                }
                RenderedAction::NotifyTelegram {
                    bot_token,
                    chat_id,
                    text,
                } => Some(Event::NotificationRequested(NotificationRequested {
                    notification_id: effect_id,
                    kind: "telegram".into(),
                    text: text.clone(),
                    destination_secret: (inputs.seal)(bot_token),
                    telegram_chat_id: Some(chat_id.clone()),
                    sound: None,
                    rule_id: Some(rule_id.clone()),
                })),
                RenderedAction::PlaySound { sound } => {
                    Some(Event::NotificationRequested(NotificationRequested {
                        notification_id: effect_id,
                        kind: "sound".into(),
                        text: String::new(),
                        destination_secret: Vec::new(),
                        telegram_chat_id: None,
                        sound: Some(sound.clone()),
                        rule_id: Some(rule_id.clone()),
                    }))
                }
            };
            if let Some(event) = event {
                emit(event, &mut working);
            }
        }
    }
    (events, rotated)
}

#[cfg(test)]
mod tests {
    use deskie_proto::events::CaseOpened;

    use super::*;
    use crate::case::CaseStatus;
    use crate::rules::Trigger;

    fn opened() -> CaseState {
        CaseState::from_events(&[Event::CaseOpened(CaseOpened {
            group_id: Uuid::from_u128(100).to_string(),
            ..Default::default()
        })])
    }

    fn firing(actions: Vec<RenderedAction>) -> Firing {
        Firing {
            rule_id: Uuid::from_u128(7),
            rule_name: "Greet".into(),
            trigger: Trigger::CaseCreated,
            matched_conditions: vec!["channel eq live_chat".into()],
            actions,
        }
    }

    fn decide(
        state: &CaseState,
        firings: &[Firing],
        rotation: &Rotation,
    ) -> (Vec<Event>, Option<Uuid>) {
        let seal = |secret: &str| format!("sealed:{}", secret.len()).into_bytes();
        let inputs = EffectInputs {
            cause_event_id: "event-1",
            rotation,
            seal: &seal,
        };
        decide_rule_effects(state, firings, &inputs)
    }

    #[test]
    fn a_firing_records_why_then_each_effect_with_the_rule_and_stable_ids() {
        let state = opened();
        let firings = [firing(vec![
            RenderedAction::Reply {
                text: "Hi Maria".into(),
            },
            RenderedAction::AssignRoundRobin,
            RenderedAction::SetStatus {
                status: CaseStatus::Pending,
            },
            RenderedAction::NotifySlack {
                webhook_url: "https://hooks.slack.com/services/T/B/x".into(),
                text: "New chat".into(),
            },
            RenderedAction::PlaySound {
                sound: "bell".into(),
            },
        ])];
        let rotation = Rotation {
            online: vec![Uuid::from_u128(1), Uuid::from_u128(2)],
            last: None,
        };
        let (events, rotated) = decide(&state, &firings, &rotation);
        let names: Vec<&str> = events.iter().map(Event::type_name).collect();
        assert_eq!(
            names,
            [
                "rule_fired",
                "reply_requested",
                "case_assigned",
                "case_status_changed",
                "notification_requested",
                "notification_requested"
            ]
        );
        assert_eq!(rotated, Some(Uuid::from_u128(1)));
        let Event::ReplyRequested(reply) = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(reply.source, "rule");
        assert_eq!(reply.agent_id, None);
        let Event::NotificationRequested(slack) = &events[4] else {
            panic!("{events:?}")
        };
        assert_eq!(slack.destination_secret, b"sealed:38");
        assert!(
            events
                .iter()
                .all(|e| crate::rules::case_change(e).is_none()),
            "nothing a rule does triggers rules again"
        );
        let (again, _) = decide(&state, &firings, &rotation);
        assert_eq!(again, events, "the same cause decides the same ids");
    }

    #[test]
    fn effects_that_change_nothing_are_left_out() {
        let mut state = opened();
        state.apply(&Event::CaseAssigned(CaseAssigned {
            assignee_id: Some(Uuid::from_u128(1).to_string()),
            ..Default::default()
        }));
        let firings = [firing(vec![
            RenderedAction::Assign {
                agent_id: Uuid::from_u128(1),
            },
            RenderedAction::SetGroup {
                group_id: Uuid::from_u128(100),
            },
            RenderedAction::SetStatus {
                status: CaseStatus::Open,
            },
            RenderedAction::AssignRoundRobin,
        ])];
        let (events, rotated) = decide(&state, &firings, &Rotation::default());
        let names: Vec<&str> = events.iter().map(Event::type_name).collect();
        assert_eq!(names, ["rule_fired"], "nobody online, nothing changes");
        assert_eq!(rotated, None);
    }
}
