//! Rule evaluation: each field and operator, any/all, order, `stop_processing`, disabled
//! rules, trigger mismatch, and rendered actions.

use chrono::{DateTime, TimeZone, Utc};
use deskie_domain::case::CaseStatus;
use deskie_domain::rules::*;
use serde_json::{Value, json};
use uuid::Uuid;

const CASE: Uuid = Uuid::from_u128(0xCA5E);
const GROUP: Uuid = Uuid::from_u128(0x6);
const AGENT: Uuid = Uuid::from_u128(0xA6);

/// Wednesday 2025-01-15, 10:00 UTC.
fn wednesday_morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0)
        .single()
        .expect("a time")
}

/// A customer message on a live chat case in GROUP, assigned to AGENT.
fn message(text: &str) -> RuleContext {
    let mut ctx = RuleContext::new(
        CaseChange::Updated(UpdateKind::CustomerMessage),
        CASE,
        wednesday_morning(),
    );
    ctx.case.group_id = Some(GROUP);
    ctx.case.assignee_id = Some(AGENT);
    ctx.customer.name = Some("Ana López".into());
    ctx.customer.email = Some("ana@example.com".into());
    ctx.customer.fields = vec![("plan".into(), "Gold".into())];
    ctx.message_text = Some(text.into());
    ctx
}

/// A valid rule from JSON (the id given, trigger `case_updated` unless set).
fn rule(id: u128, mut json: Value) -> ValidRule {
    if json.get("trigger").is_none() {
        json["trigger"] = json!("case_updated");
    }
    if json.get("actions").is_none() {
        json["actions"] = json!([{"type": "play_sound", "sound": "bell"}]);
    }
    let spec: RuleSpec = serde_json::from_value(json).expect("a rule spec");
    validate(Uuid::from_u128(id), &spec).expect("valid")
}

/// Whether the single condition `field op value` holds in `ctx`.
fn holds(ctx: &RuleContext, field: &str, op: &str, value: Value) -> bool {
    let condition = if value.is_null() {
        json!({"field": field, "op": op})
    } else {
        json!({"field": field, "op": op, "value": value})
    };
    let rule = rule(1, json!({"name": "t", "conditions": {"all": [condition]}}));
    !evaluate(&[rule], ctx).is_empty()
}

#[test]
fn text_operators_ignore_case() {
    let ctx = message("I want a REFUND please");
    let cases = [
        ("eq", json!("i want a refund PLEASE"), true),
        ("eq", json!("refund"), false),
        ("ne", json!("refund"), true),
        ("ne", json!("I WANT A REFUND PLEASE"), false),
        ("contains", json!("Refund"), true),
        ("contains", json!("invoice"), false),
        ("not_contains", json!("invoice"), true),
        ("not_contains", json!("refund"), false),
        ("in", json!(["hello", "i want a refund please"]), true),
        ("in", json!(["hello"]), false),
        ("not_in", json!(["hello"]), true),
        ("not_in", json!(["I want a refund please"]), false),
        ("matches", json!(r"(?i)\brefund\b"), true),
        ("matches", json!(r"\brefund\b"), false),
        ("present", Value::Null, true),
        ("absent", Value::Null, false),
    ];
    for (op, value, expected) in cases {
        assert_eq!(
            holds(&ctx, "message.text", op, value.clone()),
            expected,
            "{op} {value}"
        );
    }
}

#[test]
fn an_unknown_or_blank_value_is_absent_and_only_negations_hold() {
    for text in [None, Some("   ")] {
        let mut ctx = message("");
        ctx.message_text = text.map(str::to_owned);
        assert!(holds(&ctx, "message.text", "absent", Value::Null));
        assert!(!holds(&ctx, "message.text", "present", Value::Null));
    }
    let mut ctx = message("");
    ctx.message_text = None;
    let cases = [
        ("eq", json!("x"), false),
        ("ne", json!("x"), true),
        ("contains", json!("x"), false),
        ("not_contains", json!("x"), true),
        ("in", json!(["x"]), false),
        ("not_in", json!(["x"]), true),
        ("matches", json!(".*"), false),
    ];
    for (op, value, expected) in cases {
        assert_eq!(holds(&ctx, "message.text", op, value), expected, "{op}");
    }
}

#[test]
fn customer_fields_are_tested_by_name_and_form_key() {
    let ctx = message("hi");
    assert!(holds(&ctx, "customer.name", "contains", json!("lópez")));
    assert!(holds(
        &ctx,
        "customer.email",
        "matches",
        json!("@example\\.com$")
    ));
    assert!(holds(&ctx, "customer.phone", "absent", Value::Null));
    assert!(holds(
        &ctx,
        "customer.field.plan",
        "in",
        json!(["gold", "silver"])
    ));
    assert!(!holds(&ctx, "customer.field.Plan", "present", Value::Null));
    assert!(holds(&ctx, "customer.field.company", "absent", Value::Null));
}

#[test]
fn case_fields_channel_group_assignee_status() {
    let mut ctx = message("hi");
    assert!(holds(&ctx, "channel", "eq", json!("LIVE_CHAT")));
    assert!(holds(&ctx, "channel", "not_in", json!(["email"])));
    let upper = GROUP.to_string().to_uppercase();
    assert!(holds(&ctx, "group_id", "eq", json!(upper)));
    assert!(holds(&ctx, "group_id", "ne", json!(Uuid::from_u128(9))));
    assert!(holds(
        &ctx,
        "assignee_id",
        "in",
        json!([Uuid::from_u128(9), AGENT])
    ));
    assert!(holds(&ctx, "assignee_id", "present", Value::Null));
    assert!(holds(&ctx, "status", "eq", json!("open")));
    ctx.case.assignee_id = None;
    ctx.case.status = CaseStatus::Pending;
    assert!(holds(&ctx, "assignee_id", "absent", Value::Null));
    assert!(holds(&ctx, "assignee_id", "ne", json!(AGENT)));
    assert!(holds(&ctx, "status", "in", json!(["pending", "closed"])));
}

#[test]
fn update_kind_tells_a_resumed_chat_from_a_message() {
    let mut ctx = message("back again");
    assert!(holds(&ctx, "update", "eq", json!("customer_message")));
    ctx.change = CaseChange::Updated(UpdateKind::CustomerResumed);
    assert!(holds(&ctx, "update", "eq", json!("customer_resumed")));
    assert!(holds(
        &ctx,
        "update",
        "not_in",
        json!(["agent_reply", "assigned"])
    ));
}

#[test]
fn all_must_hold_and_one_of_a_non_empty_any() {
    let ctx = message("refund");
    let rule_with = |any: Value| {
        rule(
            1,
            json!({"name": "t", "conditions": {
            "all": [{"field": "channel", "op": "eq", "value": "live_chat"}], "any": any}}),
        )
    };
    let hits = rule_with(
        json!([{"field": "message.text", "op": "contains", "value": "invoice"},
                                {"field": "message.text", "op": "contains", "value": "refund"}]),
    );
    let fired = evaluate(&[hits], &ctx);
    assert_eq!(
        fired[0].matched_conditions,
        ["channel eq live_chat", "message.text contains refund"]
    );
    let misses =
        rule_with(json!([{"field": "message.text", "op": "contains", "value": "invoice"}]));
    assert!(evaluate(&[misses], &ctx).is_empty());
    let no_any = rule_with(json!([]));
    assert_eq!(
        evaluate(&[no_any], &ctx)[0].matched_conditions,
        ["channel eq live_chat"]
    );
    let failing_all = rule(
        2,
        json!({"name": "t", "conditions": {
        "all": [{"field": "status", "op": "eq", "value": "closed"}],
        "any": [{"field": "message.text", "op": "present"}]}}),
    );
    assert!(evaluate(&[failing_all], &ctx).is_empty());
}

#[test]
fn matched_conditions_read_as_written() {
    let ctx = message("hi");
    let conditions = json!([
        {"field": "customer.name", "op": "contains", "value": "Ana"},
        {"field": "customer.field.plan", "op": "in", "value": ["Gold", "Silver"]},
        {"field": "assignee_id", "op": "present"},
        {"field": "time", "op": "in", "value": {"days": ["wed", "mon"], "from": "09:00",
                                                "to": "18:00", "time_zone": "UTC"}},
    ]);
    let fired = evaluate(
        &[rule(
            1,
            json!({"name": "t", "conditions": {"all": conditions}}),
        )],
        &ctx,
    );
    assert_eq!(
        fired[0].matched_conditions,
        [
            "customer.name contains Ana",
            "customer.field.plan in [Gold, Silver]",
            "assignee_id present",
            "time in mon,wed 09:00-18:00 UTC",
        ]
    );
}

#[test]
fn rules_run_by_position_then_id_and_stop_processing_ends_the_run() {
    let ctx = message("hi");
    let named = |id, name: &str, position, stop| {
        rule(
            id,
            json!({"name": name, "position": position, "stop_processing": stop}),
        )
    };
    let rules = [
        named(3, "third", 5, false),
        named(2, "second", 1, false),
        named(1, "first", 1, false),
        named(4, "stops", 7, true),
        named(5, "never", 9, false),
    ];
    let names: Vec<_> = evaluate(&rules, &ctx)
        .into_iter()
        .map(|f| f.rule_name)
        .collect();
    assert_eq!(names, ["first", "second", "third", "stops"]);
}

#[test]
fn stop_processing_only_counts_when_the_rule_fires() {
    let ctx = message("hi");
    let stopper_that_misses = rule(
        1,
        json!({"name": "a", "position": 1, "stop_processing": true,
        "conditions": {"all": [{"field": "status", "op": "eq", "value": "closed"}]}}),
    );
    let later = rule(2, json!({"name": "b", "position": 2}));
    assert_eq!(
        evaluate(&[stopper_that_misses, later], &ctx)[0].rule_name,
        "b"
    );
}

#[test]
fn disabled_rules_and_other_triggers_do_not_fire() {
    let ctx = message("hi");
    let disabled = rule(1, json!({"name": "off", "enabled": false}));
    let for_new_cases = rule(2, json!({"name": "new", "trigger": "case_created"}));
    assert!(evaluate(&[disabled, for_new_cases.clone()], &ctx).is_empty());
    let created = RuleContext::new(CaseChange::Created, CASE, wednesday_morning());
    let fired = evaluate(&[for_new_cases], &created);
    assert_eq!(fired[0].trigger, Trigger::CaseCreated);
    assert_eq!(fired[0].rule_id, Uuid::from_u128(2));
}

#[test]
fn actions_come_rendered_in_order() {
    let mut ctx = message("Where is my order?");
    ctx.customer.name = Some("<!channel> & co".into());
    ctx.agent_name = None;
    let actions = json!([
        {"type": "reply", "text": "Hi {{customer.name}}, {{agent.name}}will answer."},
        {"type": "assign", "agent_id": AGENT},
        {"type": "set_status", "status": "pending"},
        {"type": "notify_slack", "webhook_url": "https://hooks.slack.com/services/a",
         "text": "<{{customer.email}}> {{customer.name}}: {{message.text}}"},
    ]);
    let fired = evaluate(&[rule(1, json!({"name": "t", "actions": actions}))], &ctx);
    assert_eq!(
        fired[0].actions,
        [
            Action::Reply {
                text: "Hi <!channel> & co, will answer.".into()
            },
            Action::Assign { agent_id: AGENT },
            Action::SetStatus {
                status: CaseStatus::Pending
            },
            Action::NotifySlack {
                webhook_url: "https://hooks.slack.com/services/a".into(),
                text: "<ana@example.com> &lt;!channel&gt; &amp; co: Where is my order?".into(),
            },
        ]
    );
}

proptest::proptest! {
    /// Whatever the customer sends, evaluation returns without panicking, and rules that do
    /// not depend on the text fire either way.
    #[test]
    fn any_customer_input_evaluates(text in ".*", name in ".*", key in "[a-z]{1,3}") {
        let mut ctx = message(&text);
        ctx.customer.name = Some(name.clone());
        ctx.customer.fields = vec![(key.clone(), name)];
        let conditions = json!({"any": [
            {"field": "message.text", "op": "matches", "value": r"(?i)refund|\d{4}"},
            {"field": "message.text", "op": "not_contains", "value": "É"},
            {"field": "customer.name", "op": "in", "value": ["a", "ß"]},
            {"field": format!("customer.field.{key}"), "op": "absent"},
            {"field": "channel", "op": "eq", "value": "live_chat"},
        ]});
        let actions = json!([{"type": "reply", "text": "{{customer.name}}: {{message.text}}"}]);
        let rules = [rule(1, json!({"name": "t", "conditions": conditions, "actions": actions}))];
        let fired = evaluate(&rules, &ctx);
        proptest::prop_assert_eq!(fired.len(), 1);
    }
}
