//! A rule as the admin sees it: the spec with its credentials masked, never in clear.

use deskie_config::Cipher;
use deskie_store::read_models::rules::StoredRule;
use serde_json::{Map, Value, json};

use crate::rule_secrets::{mask, param_of};

/// The keys of a rule, in the order answers show them; other keys follow.
const ORDER: [&str; 7] = [
    "name",
    "trigger",
    "enabled",
    "position",
    "stop_processing",
    "conditions",
    "actions",
];

/// `{id, name, trigger, …, actions, created_at, updated_at}`: credentials masked
/// (`https://hooks.slack.com/***`, `***`).
pub fn rule_view(rule: &StoredRule, cipher: &Cipher) -> Value {
    let masked = rule.spec_with_secrets(|path, encrypted| {
        let shown = match cipher.decrypt_string(encrypted) {
            Ok(secret) => mask(param_of(path), &secret),
            Err(error) => {
                tracing::warn!(rule_id = %rule.id, path, %error, "rule credential cannot be decrypted");
                mask("", "")
            }
        };
        Ok::<_, std::convert::Infallible>(shown)
    });
    let Ok(Value::Object(mut spec)) = masked else {
        return json!({"id": rule.id});
    };
    let mut view = Map::from_iter([("id".to_owned(), json!(rule.id))]);
    for key in ORDER {
        if let Some(value) = spec.shift_remove(key) {
            view.insert(key.to_owned(), value);
        }
    }
    if let Some(Value::Array(actions)) = view.get_mut("actions") {
        for action in actions.iter_mut().filter_map(Value::as_object_mut) {
            // PostgreSQL's jsonb keeps keys sorted its own way: `type` first reads better.
            if let Some(kind) = action.shift_remove("type") {
                action.shift_insert(0, "type".to_owned(), kind);
            }
        }
    }
    view.extend(spec);
    view.insert("created_at".into(), json!(rule.created_at));
    view.insert("updated_at".into(), json!(rule.updated_at));
    Value::Object(view)
}
