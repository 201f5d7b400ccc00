//! Rule validation: the issue's example passes, and every refusal names the field the API
//! returns.

use deskie_domain::rules::*;
use serde_json::{Value, json};
use uuid::Uuid;

const AGENT: &str = "0190a3c4-1111-7000-8000-000000000001";
const GROUP: &str = "0190a3c4-2222-7000-8000-000000000002";

/// The issue's example, with real ids and credentials.
fn example() -> Value {
    json!({
        "name": "Greet new chats", "trigger": "case_created", "enabled": true, "position": 1,
        "stop_processing": false,
        "conditions": {"all": [{"field": "channel", "op": "eq", "value": "live_chat"}], "any": []},
        "actions": [
            {"type": "reply", "text": "Hi {{customer.name}}, we are on it."},
            {"type": "assign", "agent_id": AGENT},
            {"type": "assign_round_robin"},
            {"type": "set_group", "group_id": GROUP},
            {"type": "set_status", "status": "pending"},
            {"type": "notify_slack", "webhook_url": "https://hooks.slack.com/services/T0/B0/x",
             "text": "New chat {{case.id}}"},
            {"type": "notify_telegram", "bot_token": "123456:ABC-def_1", "chat_id": "-100123",
             "text": "New chat from {{customer.email}}"},
            {"type": "play_sound", "sound": "bell"}
        ]
    })
}

fn spec(json: Value) -> RuleSpec {
    serde_json::from_value(json).expect("a rule spec")
}

/// The example with `edit` applied, validated: the error it must produce.
fn refused(edit: impl FnOnce(&mut Value)) -> RuleError {
    let mut json = example();
    edit(&mut json);
    match validate(Uuid::nil(), &spec(json)) {
        Ok(rule) => panic!("accepted: {rule:?}"),
        Err(e) => e,
    }
}

/// The example with its only condition replaced by `condition`.
fn condition_refused(condition: Value) -> RuleError {
    refused(|r| r["conditions"]["all"][0] = condition)
}

fn unknown(what: &'static str, name: &str) -> RuleProblem {
    RuleProblem::Unknown {
        what,
        name: name.to_owned(),
    }
}

/// A change to a JSON value.
type Edit<'a> = &'a dyn Fn(&mut Value);

#[track_caller]
fn assert_refused(error: RuleError, path: &str, problem: RuleProblem) {
    assert_eq!(
        error,
        RuleError {
            path: path.to_owned(),
            problem
        }
    );
}

#[test]
fn the_issue_example_is_valid_and_keeps_its_actions_in_order() {
    let rule = validate(Uuid::from_u128(7), &spec(example())).expect("valid");
    assert_eq!(rule.name(), "Greet new chats");
    assert_eq!(rule.trigger(), Trigger::CaseCreated);
    assert_eq!(rule.position(), 1);
    let kinds: Vec<_> = rule.actions().iter().map(|a| a.kind()).collect();
    assert_eq!(
        kinds,
        [
            "reply",
            "assign",
            "assign_round_robin",
            "set_group",
            "set_status",
            "notify_slack",
            "notify_telegram",
            "play_sound"
        ]
    );
}

#[test]
fn a_spec_round_trips_and_tolerates_unknown_top_level_keys() {
    let mut json = example();
    json["added_in_a_later_version"] = json!(true);
    let parsed = spec(json);
    let again: RuleSpec =
        serde_json::from_str(&serde_json::to_string(&parsed).expect("json")).expect("parses");
    assert_eq!(again, parsed);
    assert!(validate(Uuid::nil(), &parsed).is_ok());
}

#[test]
fn defaults_enabled_without_stop_and_no_conditions() {
    let parsed = spec(json!({"name": "n", "trigger": "case_updated",
                             "actions": [{"type": "play_sound", "sound": "bell"}]}));
    let rule = validate(Uuid::nil(), &parsed).expect("valid");
    assert!(rule.enabled());
    assert!(!rule.stop_processing());
    assert_eq!(rule.position(), 0);
}

#[test]
fn name_must_be_present_and_short() {
    assert_refused(
        refused(|r| r["name"] = json!("  ")),
        "name",
        RuleProblem::Empty,
    );
    let missing = refused(|r| _ = r.as_object_mut().map(|o| o.remove("name")));
    assert_refused(missing, "name", RuleProblem::Empty);
    let long = "x".repeat(MAX_NAME_CHARS + 1);
    assert_refused(
        refused(|r| r["name"] = json!(long)),
        "name",
        RuleProblem::TooLong {
            max: MAX_NAME_CHARS,
        },
    );
}

#[test]
fn trigger_and_position_are_checked() {
    let error = refused(|r| r["trigger"] = json!("case_deleted"));
    assert_refused(error, "trigger", unknown("trigger", "case_deleted"));
    let range = RuleProblem::OutOfRange {
        min: 0,
        max: MAX_POSITION,
    };
    assert_refused(
        refused(|r| r["position"] = json!(-1)),
        "position",
        range.clone(),
    );
    assert_refused(
        refused(|r| r["position"] = json!(MAX_POSITION + 1)),
        "position",
        range,
    );
}

#[test]
fn actions_must_exist_and_be_few() {
    assert_refused(
        refused(|r| r["actions"] = json!([])),
        "actions",
        RuleProblem::Empty,
    );
    let many = vec![json!({"type": "assign_round_robin"}); MAX_ACTIONS + 1];
    assert_refused(
        refused(|r| r["actions"] = json!(many)),
        "actions",
        RuleProblem::TooMany { max: MAX_ACTIONS },
    );
}

#[test]
fn unknown_fields_and_operators_are_refused() {
    let error = condition_refused(json!({"field": "customer.age", "op": "eq", "value": "3"}));
    assert_refused(
        error,
        "conditions.all[0].field",
        unknown("field", "customer.age"),
    );
    let error = condition_refused(json!({"field": "customer.field.", "op": "present"}));
    assert_refused(
        error,
        "conditions.all[0].field",
        unknown("field", "customer.field."),
    );
    let error = condition_refused(json!({"field": "channel", "op": "gt", "value": "x"}));
    assert_refused(error, "conditions.all[0].op", unknown("operator", "gt"));
    let error = condition_refused(json!({"field": "channel", "op": "contains", "value": "chat"}));
    let problem = RuleProblem::OperatorNotForField {
        op: "contains".into(),
        field: "channel".into(),
    };
    assert_refused(error, "conditions.all[0].op", problem);
}

#[test]
fn conditions_in_any_are_checked_too() {
    let error = refused(|r| {
        r["conditions"]["any"] = json!([{"field": "status", "op": "eq", "value": "open"},
                                        {"field": "status", "op": "eq", "value": "archived"}])
    });
    assert_refused(
        error,
        "conditions.any[1].value",
        unknown("status", "archived"),
    );
    let many = vec![json!({"field": "status", "op": "eq", "value": "open"}); MAX_CONDITIONS + 1];
    let error = refused(|r| r["conditions"]["any"] = json!(many));
    assert_refused(
        error,
        "conditions.any",
        RuleProblem::TooMany {
            max: MAX_CONDITIONS,
        },
    );
}

#[test]
fn update_conditions_belong_to_update_rules_and_name_known_updates() {
    let update = json!({"field": "update", "op": "eq", "value": "customer_resumed"});
    let error = condition_refused(update.clone());
    assert_refused(
        error,
        "conditions.all[0].field",
        RuleProblem::OnlyForUpdates,
    );

    let error = refused(|r| {
        r["trigger"] = json!("case_updated");
        r["conditions"]["all"][0] = json!({"field": "update", "op": "in",
                                           "value": ["customer_message", "customer_left"]});
    });
    assert_refused(
        error,
        "conditions.all[0].value[1]",
        unknown("update", "customer_left"),
    );
}

#[test]
fn ids_must_be_uuids() {
    let error = condition_refused(json!({"field": "group_id", "op": "eq", "value": "sales"}));
    assert_refused(error, "conditions.all[0].value", RuleProblem::NotUuid);
    let error = condition_refused(json!({"field": "assignee_id", "op": "not_in",
                                         "value": [AGENT, "bob"]}));
    assert_refused(error, "conditions.all[0].value[1]", RuleProblem::NotUuid);
}

#[test]
fn values_have_the_shape_their_operator_needs() {
    let at = "conditions.all[0].value";
    let cases = [
        (
            json!({"field": "message.text", "op": "eq"}),
            RuleProblem::Missing,
        ),
        (
            json!({"field": "message.text", "op": "eq", "value": 5}),
            RuleProblem::WrongType {
                expected: "a string",
            },
        ),
        (
            json!({"field": "message.text", "op": "contains", "value": " "}),
            RuleProblem::Empty,
        ),
        (
            json!({"field": "message.text", "op": "in", "value": "a"}),
            RuleProblem::WrongType {
                expected: "an array",
            },
        ),
        (
            json!({"field": "message.text", "op": "in", "value": []}),
            RuleProblem::Empty,
        ),
        (
            json!({"field": "message.text", "op": "in", "value": vec!["a"; MAX_IN_VALUES + 1]}),
            RuleProblem::TooMany { max: MAX_IN_VALUES },
        ),
        (
            json!({"field": "customer.email", "op": "present", "value": "x"}),
            RuleProblem::UnexpectedValue,
        ),
        (
            json!({"field": "message.text", "op": "eq", "value": "x".repeat(MAX_VALUE_CHARS + 1)}),
            RuleProblem::TooLong {
                max: MAX_VALUE_CHARS,
            },
        ),
    ];
    for (condition, problem) in cases {
        assert_refused(condition_refused(condition), at, problem);
    }
    let present = json!({"field": "customer.email", "op": "present", "value": null});
    assert!(
        validate(
            Uuid::nil(),
            &spec(json!({"name": "n", "trigger": "case_created",
        "conditions": {"all": [present]}, "actions": [{"type": "assign_round_robin"}]}))
        )
        .is_ok()
    );
}

#[test]
fn regexes_must_compile_within_limits() {
    let at = "conditions.all[0].value";
    let matches =
        |pattern: &str| json!({"field": "message.text", "op": "matches", "value": pattern});
    let error = condition_refused(matches("(refund"));
    assert_eq!(error.path, at);
    assert!(
        matches!(error.problem, RuleProblem::InvalidRegex(_)),
        "{error:?}"
    );
    assert_refused(
        condition_refused(matches(r"\w{1000}{1000}")),
        at,
        RuleProblem::RegexTooLarge,
    );
    let long = "a".repeat(MAX_PATTERN_CHARS + 1);
    assert_refused(
        condition_refused(matches(&long)),
        at,
        RuleProblem::TooLong {
            max: MAX_PATTERN_CHARS,
        },
    );
    assert_refused(condition_refused(matches("")), at, RuleProblem::Empty);
}

#[test]
fn business_hours_are_checked_key_by_key() {
    let hours = |edit: &dyn Fn(&mut Value)| {
        let mut value = json!({"days": ["mon", "fri"], "from": "09:00", "to": "18:00",
                               "time_zone": "Europe/Madrid"});
        edit(&mut value);
        condition_refused(json!({"field": "time", "op": "in", "value": value}))
    };
    let at = |key: &str| format!("conditions.all[0].value{key}");
    let hh_mm = RuleProblem::Malformed("expected a time of day as HH:MM, 00:00 to 23:59");
    let cases: Vec<(Edit, String, RuleProblem)> = vec![
        (
            &|v| *v = json!("9-18"),
            at(""),
            RuleProblem::WrongType {
                expected: "an object",
            },
        ),
        (&|v| v["days"] = json!([]), at(".days"), RuleProblem::Empty),
        (
            &|v| v["days"] = json!(["mon", "mon"]),
            at(".days[1]"),
            RuleProblem::DuplicateDay,
        ),
        (
            &|v| v["days"] = json!(["monday"]),
            at(".days[0]"),
            unknown("day", "monday"),
        ),
        (&|v| v["from"] = json!("9:00"), at(".from"), hh_mm.clone()),
        (&|v| v["to"] = json!("24:00"), at(".to"), hh_mm),
        (
            &|v| v["to"] = json!("09:00"),
            at(".to"),
            RuleProblem::EmptyWindow,
        ),
        (
            &|v| v["time_zone"] = json!("Mars/Olympus"),
            at(".time_zone"),
            unknown("time zone", "Mars/Olympus"),
        ),
        (&|v| v["tz"] = json!("UTC"), at(".tz"), unknown("key", "tz")),
        (
            &|v| v["time_zone"] = Value::Null,
            at(".time_zone"),
            RuleProblem::WrongType {
                expected: "a string",
            },
        ),
        (
            &|v| _ = v.as_object_mut().map(|o| o.remove("from")),
            at(".from"),
            RuleProblem::Missing,
        ),
    ];
    for (edit, path, problem) in cases {
        assert_refused(hours(edit), &path, problem);
    }
    let error = condition_refused(json!({"field": "time", "op": "eq", "value": "09:00"}));
    let problem = RuleProblem::OperatorNotForField {
        op: "eq".into(),
        field: "time".into(),
    };
    assert_refused(error, "conditions.all[0].op", problem);
}

#[test]
fn texts_may_only_use_known_placeholders() {
    let error = refused(|r| r["actions"][0]["text"] = json!("Hi {{customer.age}}"));
    assert_refused(
        error.clone(),
        "actions[0].text",
        RuleProblem::UnknownPlaceholder("customer.age".into()),
    );
    assert_eq!(
        error.to_string(),
        "actions[0].text: unknown placeholder {{customer.age}}"
    );
    let error = refused(|r| r["actions"][5]["text"] = json!("Case {{case.id"));
    assert_refused(error, "actions[5].text", RuleProblem::UnclosedPlaceholder);
    let error = refused(|r| r["actions"][6]["text"] = json!("{{ agent.name }} {{Customer.Name}}"));
    assert_refused(
        error,
        "actions[6].text",
        RuleProblem::UnknownPlaceholder("Customer.Name".into()),
    );
}

#[test]
fn action_types_and_parameters_are_checked() {
    let error = refused(|r| r["actions"][1] = json!({"type": "send_email", "to": "a@b.c"}));
    assert_refused(
        error,
        "actions[1].type",
        unknown("action type", "send_email"),
    );
    let error = refused(|r| r["actions"][1] = json!({"agent_id": AGENT}));
    assert_refused(error, "actions[1].type", RuleProblem::Missing);
    let error = refused(|r| r["actions"][0]["agent_id"] = json!(AGENT));
    let problem = RuleProblem::UnexpectedParameter {
        action: "reply".into(),
    };
    assert_refused(error, "actions[0].agent_id", problem);
}

#[test]
fn action_parameters_have_their_formats() {
    let cases = [
        (0, "text", json!(""), RuleProblem::Empty),
        (
            0,
            "text",
            json!(5),
            RuleProblem::WrongType {
                expected: "a string",
            },
        ),
        (0, "text", Value::Null, RuleProblem::Missing),
        (
            0,
            "text",
            json!("x".repeat(MAX_TEXT_CHARS + 1)),
            RuleProblem::TooLong {
                max: MAX_TEXT_CHARS,
            },
        ),
        (1, "agent_id", json!("bob"), RuleProblem::NotUuid),
        (3, "group_id", json!("sales"), RuleProblem::NotUuid),
        (
            4,
            "status",
            json!("archived"),
            unknown("status", "archived"),
        ),
        (
            5,
            "webhook_url",
            json!("http://hooks.slack.com/services/x"),
            RuleProblem::NotHttps,
        ),
        (
            5,
            "webhook_url",
            json!("hooks.slack.com/services/x"),
            RuleProblem::NotHttps,
        ),
        (
            5,
            "webhook_url",
            json!("http://10.0.0.7/services/x"),
            RuleProblem::NotHttps,
        ),
        (
            5,
            "webhook_url",
            json!("http://localhost.example.com/x"),
            RuleProblem::NotHttps,
        ),
        (
            5,
            "webhook_url",
            json!("ftp://127.0.0.1/x"),
            RuleProblem::NotHttps,
        ),
        (
            6,
            "bot_token",
            json!("not a token"),
            RuleProblem::Malformed("expected a Telegram bot token like 123456:ABC-def"),
        ),
        (
            6,
            "chat_id",
            json!("general"),
            RuleProblem::Malformed("expected a numeric chat id or an @username"),
        ),
        (
            7,
            "sound",
            json!("Bell!"),
            RuleProblem::Malformed("expected a sound name of a-z, 0-9, _ and -"),
        ),
    ];
    for (index, param, value, problem) in cases {
        let error = refused(|r| r["actions"][index][param] = value);
        assert_refused(error, &format!("actions[{index}].{param}"), problem);
    }
    let channel = json!({"type": "notify_telegram", "bot_token": "1:a", "chat_id": "@deskie_ops",
                         "text": "x"});
    let rule = spec(json!({"name": "n", "trigger": "case_created", "actions": [channel]}));
    assert!(validate(Uuid::nil(), &rule).is_ok());
}

#[test]
fn plain_http_webhooks_are_accepted_only_on_a_loopback_host() {
    for url in [
        "http://127.0.0.1:9100/hook",
        "http://127.8.0.1/hook",
        "http://localhost:9100/hook",
        "http://LOCALHOST/hook",
        "http://[::1]:9100/hook",
        "https://hooks.slack.com/services/T0/B0/x",
    ] {
        let mut json = example();
        json["actions"][5]["webhook_url"] = json!(url);
        assert!(
            validate(Uuid::nil(), &spec(json)).is_ok(),
            "{url} should be accepted"
        );
    }
}

#[test]
fn credentials_never_reach_debug_output() {
    let parsed = spec(example());
    let rule = validate(Uuid::nil(), &parsed).expect("valid");
    for debug in [format!("{parsed:?}"), format!("{rule:?}")] {
        assert!(!debug.contains("hooks.slack.com"), "{debug}");
        assert!(!debug.contains("ABC-def"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }
}
