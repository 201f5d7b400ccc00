//! Which case events trigger rules, and why rules never trigger themselves.

use chrono::{TimeZone, Utc};
use deskie_domain::case::{CaseState, CaseStatus};
use deskie_domain::rules::*;
use deskie_proto::events::*;
use deskie_testkit::case_events::{self, assigned, customer_says, reply, status};
use serde_json::json;
use uuid::Uuid;

const RULE: &str = "0190a3c4-0000-7000-8000-000000000001";
const GROUP: Uuid = Uuid::from_u128(0x6);

/// The agent cases are assigned to.
const AGENT: Uuid = Uuid::from_u128(0xA6);

fn opened() -> Event {
    case_events::opened().in_group(GROUP).into()
}

#[test]
fn each_case_event_maps_to_its_trigger() {
    use CaseChange::*;
    use UpdateKind::*;
    let cases = [
        (opened(), Some(Created)),
        (customer_says("hi").into(), Some(Updated(CustomerMessage))),
        (
            Event::CaseResumed(CaseResumed::default()),
            Some(Updated(CustomerResumed)),
        ),
        (reply("On it").into(), Some(Updated(AgentReply))),
        (
            Event::AgentMessageMirrored(AgentMessageMirrored::default()),
            Some(Updated(AgentReply)),
        ),
        (
            status("pending").from("open").into(),
            Some(Updated(StatusChanged)),
        ),
        (assigned(AGENT).into(), Some(Updated(Assigned))),
        (
            Event::CustomerDataChanged(CustomerDataChanged::default()),
            None,
        ),
        (Event::CaseGroupChanged(CaseGroupChanged::default()), None),
        (Event::ChatEnded(ChatEnded {}), None),
        (Event::ReplyDelivered(ReplyDelivered::default()), None),
        // Chatra's own messages are not the customer writing (chatra-api.md §8.2).
        (
            Event::SystemMessageReceived(SystemMessageReceived::default()),
            None,
        ),
        // An echo of our own message is no agent replying (and no customer writing).
        (
            Event::UnmatchedEchoReceived(UnmatchedEchoReceived::default()),
            None,
        ),
    ];
    for (event, expected) in cases {
        assert_eq!(case_change(&event), expected, "{}", event.type_name());
    }
    assert_eq!(Created.trigger(), Trigger::CaseCreated);
    assert_eq!(Updated(Assigned).trigger(), Trigger::CaseUpdated);
    assert_eq!(Updated(Assigned).update(), Some(Assigned));
}

#[test]
fn events_caused_by_rules_trigger_nothing() {
    let caused_by_rules = [
        assigned(AGENT).by_rule(RULE).into(),
        status("pending").from("open").by_rule(RULE).into(),
        reply("On it").from("rule").by_rule(RULE).into(),
        reply("On it").from("rule").into(),
        reply("On it").by_rule(RULE).into(),
        Event::RuleFired(RuleFired::default()),
        Event::NotificationRequested(NotificationRequested::default()),
    ];
    for event in caused_by_rules {
        assert_eq!(case_change(&event), None, "{event:?}");
    }
}

/// A rule that reacts to every update by assigning, changing the status and replying: the
/// events its actions become trigger no further evaluation, so it cannot loop.
#[test]
fn a_rule_reacting_to_every_update_does_not_react_to_its_own_actions() {
    let spec: RuleSpec = serde_json::from_value(json!({
        "name": "Echo", "trigger": "case_updated",
        "actions": [{"type": "assign_round_robin"}, {"type": "set_status", "status": "pending"},
                    {"type": "reply", "text": "Noted"}]}))
    .expect("a spec");
    let rules = [validate(RULE.parse().expect("uuid"), &spec).expect("valid")];
    let now = Utc
        .timestamp_opt(1_700_000_000, 0)
        .single()
        .expect("a time");
    let state = CaseState::from_events(&[opened()]);

    let first = RuleContext::for_event(Uuid::nil(), &state, &customer_says("hi").into(), now)
        .expect("a customer message triggers rules");
    assert_eq!(evaluate(&rules, &first).len(), 1);
    // What a rules service would append for those actions, marked as caused by the rule.
    let consequences = [
        assigned(AGENT).by_rule(RULE).into(),
        status("pending").from("open").by_rule(RULE).into(),
        reply("On it").from("rule").by_rule(RULE).into(),
    ];
    for event in consequences {
        assert!(RuleContext::for_event(Uuid::nil(), &state, &event, now).is_none());
    }
}

#[test]
fn the_context_for_an_event_comes_from_the_case_state_after_it() {
    let history = [
        opened(),
        Event::CustomerDataChanged(CustomerDataChanged {
            name: Some(OptionalText {
                value: Some("Ana".into()),
            }),
            fields: vec![CustomerField {
                key: "plan".into(),
                value: "gold".into(),
            }],
            fields_changed: true,
            source: "chatra".into(),
            ..Default::default()
        }),
        assigned(AGENT).into(),
        status("pending").from("open").into(),
    ];
    let state = CaseState::from_events(&history);
    let mirrored = Event::AgentMessageMirrored(AgentMessageMirrored {
        text: "Hello Ana".into(),
        agent_name: Some("Bob".into()),
        ..Default::default()
    });
    let now = Utc
        .timestamp_opt(1_700_000_000, 0)
        .single()
        .expect("a time");
    let case_id = Uuid::from_u128(0xCA5E);
    let ctx = RuleContext::for_event(case_id, &state, &mirrored, now).expect("an agent reply");

    assert_eq!(ctx.change, CaseChange::Updated(UpdateKind::AgentReply));
    assert_eq!(ctx.case.id, case_id);
    assert_eq!(ctx.case.channel, "live_chat");
    assert_eq!(ctx.case.group_id, Some(GROUP));
    assert_eq!(ctx.case.assignee_id, Some(AGENT));
    assert_eq!(ctx.case.status, CaseStatus::Pending);
    assert_eq!(ctx.customer.name.as_deref(), Some("Ana"));
    assert_eq!(
        ctx.customer.fields,
        [("plan".to_owned(), "gold".to_owned())]
    );
    assert_eq!(ctx.message_text.as_deref(), Some("Hello Ana"));
    assert_eq!(ctx.agent_name.as_deref(), Some("Bob"));
    assert_eq!(ctx.now, now);

    let opened_ctx = RuleContext::for_event(case_id, &state, &opened(), now).expect("created");
    assert_eq!(opened_ctx.message_text, None);
}
