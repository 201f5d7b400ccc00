//! Lenient readers of JSON values: what Chatra sends is taken as text wherever it can be.

use serde_json::{Map, Value};

/// A non-empty string, or a number written out; anything else is `None`.
pub(crate) fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The first of `keys` that holds text.
pub(crate) fn first_text(object: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| text_of(object.get(*k)))
}

/// The elements of an array; nothing for anything else.
pub(crate) fn array_of(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter())
        .into_iter()
        .flatten()
}
