//! Chatra's message times, in whatever form they come.
//!
//! The sibling sends epoch milliseconds as an integer; integrations have also seen floats,
//! and we accept a numeric string and ISO 8601 as well (§8, "`createdAt`'s key and form" is
//! still unknown). A value in none of these forms is reported, never guessed.

use chrono::{DateTime, NaiveDateTime};
use serde_json::Value;

/// The largest epoch-milliseconds value accepted (year 9999): beyond it a number is no time.
const MAX_MILLIS: f64 = 253_402_300_799_999.0;

/// Epoch milliseconds from `value`: `Ok(None)` for null, `Err` with the value shown when
/// it is present but in no form we read.
pub fn millis_of(value: &Value) -> Result<Option<i64>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_i64() {
            Some(ms) => Ok(Some(ms)),
            None => n
                .as_f64()
                .and_then(float_millis)
                .map(Some)
                .ok_or_else(|| n.to_string()),
        },
        Value::String(s) => text_millis(s.trim()).map(Some).ok_or_else(|| {
            let shown: String = s.chars().take(64).collect();
            format!("{shown:?}")
        }),
        other => Err(kind_of(other).to_owned()),
    }
}

fn float_millis(ms: f64) -> Option<i64> {
    // Truncation of a finite, bounded float is exact enough for a message time.
    (ms.is_finite() && ms.abs() <= MAX_MILLIS).then_some(ms.trunc() as i64)
}

fn text_millis(text: &str) -> Option<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(ms) = text.parse::<f64>() {
        return float_millis(ms);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.timestamp_millis());
    }
    // ISO 8601 without an offset: taken as UTC.
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|at| at.and_utc().timestamp_millis())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "a boolean",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        _ => "a value",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_known_form_gives_the_same_instant() {
        let expected = Some(1_732_608_000_123);
        for value in [
            json!(1_732_608_000_123_i64),
            json!(1_732_608_000_123.9_f64),
            json!("1732608000123"),
            json!(" 1732608000123.4 "),
            json!("2024-11-26T08:00:00.123Z"),
            json!("2024-11-26T09:00:00.123+01:00"),
            json!("2024-11-26T08:00:00.123"),
        ] {
            assert_eq!(millis_of(&value), Ok(expected), "{value}");
        }
        assert_eq!(millis_of(&Value::Null), Ok(None));
    }

    #[test]
    fn anything_else_is_reported_with_what_it_was() {
        assert_eq!(millis_of(&json!("yesterday")), Err("\"yesterday\"".into()));
        assert_eq!(millis_of(&json!(true)), Err("a boolean".into()));
        assert_eq!(millis_of(&json!({"ms": 1})), Err("an object".into()));
        assert!(millis_of(&json!(1e300)).is_err());
        assert!(millis_of(&json!("NaN")).is_err());
    }
}
