//! From the admin's JSON to a rule ready to store: merged over the stored rule, masked
//! credentials put back, validated, defaults filled in, credentials taken out.

use deskie_domain::rules::{RuleSpec, validate};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::RuleCommandError;
use crate::rule_secrets::{ClearSecret, restore_masked, take_secrets};

/// Keys of the api's answer that are not part of a rule: ignored in a body, so a rule as
/// fetched can be sent back.
const ANSWER_ONLY: [&str; 4] = ["id", "version", "created_at", "updated_at"];

/// A validated rule: its spec with every credential `""`, and the credentials in clear.
#[derive(PartialEq)]
pub struct PreparedRule {
    /// The rule as the admin sent it, defaults filled in, name trimmed.
    pub spec: Map<String, Value>,
    /// The credentials taken out of `spec`, with their paths.
    pub secrets: Vec<ClearSecret>,
}

/// `body`'s top-level keys over `current` (a `null` removes the key, so its default
/// applies), then [`prepare`].
pub fn merge(mut current: Map<String, Value>, body: Map<String, Value>) -> Map<String, Value> {
    for (key, value) in body {
        if ANSWER_ONLY.contains(&key.as_str()) {
            continue;
        }
        if value.is_null() {
            current.remove(&key);
        } else {
            current.insert(key, value);
        }
    }
    current
}

/// Checks `spec` as rule `id`. Masked credentials are replaced by the `stored` ones they
/// stand for; an error names the offending field as `deskie_domain::rules::validate` does.
pub fn prepare(
    id: Uuid,
    mut spec: Map<String, Value>,
    stored: &[ClearSecret],
) -> Result<PreparedRule, RuleCommandError> {
    restore_masked(&mut spec, stored)
        .map_err(|(field, message)| RuleCommandError::Invalid { field, message })?;
    let rule: RuleSpec =
        serde_json::from_value(Value::Object(spec.clone())).map_err(|_| wrong_shape(&spec))?;
    validate(id, &rule).map_err(|e| RuleCommandError::Invalid {
        field: e.path.clone(),
        message: e.to_string(),
    })?;
    if let Ok(Value::Object(defaults)) = serde_json::to_value(&rule) {
        for (key, value) in defaults {
            spec.entry(key).or_insert(value);
        }
    }
    spec.insert("name".into(), Value::String(rule.name.trim().to_owned()));
    let secrets = take_secrets(&mut spec);
    Ok(PreparedRule { spec, secrets })
}

/// Names the first field whose JSON type a rule cannot have, without repeating its value.
fn wrong_shape(spec: &Map<String, Value>) -> RuleCommandError {
    let fits = |key: &str, value: &Value| {
        let one = Map::from_iter([(key.to_owned(), value.clone())]);
        serde_json::from_value::<RuleSpec>(Value::Object(one)).is_ok()
    };
    let Some((key, value)) = spec.iter().find(|(key, value)| !fits(key, value)) else {
        return invalid("body", "the body is not a rule");
    };
    let field = match (key.as_str(), value) {
        ("actions", Value::Array(actions)) => actions
            .iter()
            .position(|a| !fits("actions", &Value::Array(vec![a.clone()])))
            .map(|i| format!("actions[{i}]")),
        ("conditions", Value::Object(groups)) => groups
            .iter()
            .find(|(group, conditions)| {
                let one = Map::from_iter([((*group).clone(), (*conditions).clone())]);
                !fits("conditions", &Value::Object(one))
            })
            .map(|(group, _)| format!("conditions.{group}")),
        _ => None,
    }
    .unwrap_or_else(|| key.clone());
    let expected = match field.as_str() {
        "name" | "trigger" => "a string",
        "enabled" | "stop_processing" => "true or false",
        "position" => "a whole number",
        "conditions" => "an object with the arrays all and any",
        "actions" => "an array of actions",
        f if f.starts_with("actions[") => "an object with a string type",
        _ => "an array of conditions, each an object with string field and op",
    };
    invalid(&field, format!("{field} must be {expected}"))
}

fn invalid(field: &str, message: impl Into<String>) -> RuleCommandError {
    RuleCommandError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn field_of(body: Value) -> String {
        match prepare(Uuid::nil(), object(body), &[]) {
            Err(RuleCommandError::Invalid { field, .. }) => field,
            _ => panic!("accepted"),
        }
    }

    #[test]
    fn wrong_types_name_their_field() {
        let actions = json!([{"type": "play_sound", "sound": "bell"}]);
        assert_eq!(field_of(json!({"name": 5, "actions": actions})), "name");
        assert_eq!(field_of(json!({"name": "x", "actions": {}})), "actions");
        assert_eq!(
            field_of(json!({"name": "x", "actions": [{"type": "reply", "text": "a"}, 7]})),
            "actions[1]"
        );
        let conditions = json!({"all": [], "any": [{"field": 1}]});
        assert_eq!(
            field_of(json!({"name": "x", "conditions": conditions, "actions": actions})),
            "conditions.any"
        );
    }

    #[test]
    fn defaults_are_filled_in_unknown_keys_kept_and_answer_keys_ignored() {
        let body = object(json!({
            "id": "ignored", "created_at": "ignored", "name": "  Greet ",
            "trigger": "case_created", "x_custom": 1, "enabled": null,
            "actions": [{"type": "notify_slack", "webhook_url": "https://h.example/s", "text": "t"}],
        }));
        let rule = prepare(Uuid::nil(), merge(Map::new(), body), &[]).expect("valid");
        assert_eq!(rule.spec["name"], "Greet");
        assert_eq!(rule.spec["enabled"], true);
        assert_eq!(rule.spec["position"], 0);
        assert_eq!(rule.spec["x_custom"], 1);
        assert_eq!(rule.spec["actions"][0]["webhook_url"], "");
        assert!(!rule.spec.contains_key("id") && !rule.spec.contains_key("created_at"));
        assert_eq!(rule.secrets.len(), 1);
    }
}
