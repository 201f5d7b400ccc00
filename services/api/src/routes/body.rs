//! Reading JSON request bodies field by field, so every refusal names its field.
//!
//! Bodies are taken as `serde_json::Value` rather than typed structs: serde's messages for
//! a wrong type name neither the field nor stay free of the submitted value. A `null`
//! field counts as absent; unknown fields are ignored.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::ApiError;

/// The longest text field accepted (names, keys, Chatra group ids), in characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// The fields of one JSON object; `prefix` locates it in the body (`group_mappings[2].`).
pub struct Fields {
    map: Map<String, Value>,
    prefix: String,
}

impl Fields {
    /// The body, which must be a JSON object.
    pub fn of_body(body: Value) -> Result<Self, ApiError> {
        match body {
            Value::Object(map) => Ok(Self {
                map,
                prefix: String::new(),
            }),
            _ => Err(ApiError::invalid("body", "the body must be a JSON object")),
        }
    }

    /// A nested object named `name` (e.g. `group_mappings[2]`).
    pub fn nested(value: &Value, name: &str) -> Result<Self, ApiError> {
        match value {
            Value::Object(map) => Ok(Self {
                map: map.clone(),
                prefix: format!("{name}."),
            }),
            _ => Err(ApiError::invalid(name, format!("{name} must be an object"))),
        }
    }

    /// The full name of `field`.
    pub fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// The value of `field`; `null` counts as absent.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    /// A required, non-empty text field (trimmed).
    pub fn required_text(&self, field: &str) -> Result<String, ApiError> {
        self.text(field)?.ok_or_else(|| {
            let name = self.name(field);
            ApiError::invalid(&name, format!("{name} is required"))
        })
    }

    /// An optional text field: when present, non-empty (trimmed) and not too long.
    pub fn text(&self, field: &str) -> Result<Option<String>, ApiError> {
        let name = self.name(field);
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let Value::String(text) = value else {
            return Err(ApiError::invalid(&name, format!("{name} must be a string")));
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(ApiError::invalid(
                &name,
                format!("{name} must not be empty"),
            ));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(ApiError::invalid(
                &name,
                format!("{name} must be at most {MAX_TEXT_CHARS} characters"),
            ));
        }
        Ok(Some(text.to_owned()))
    }

    /// A required email field.
    pub fn required_email(&self, field: &str) -> Result<String, ApiError> {
        self.email(field)?.ok_or_else(|| {
            let name = self.name(field);
            ApiError::invalid(&name, format!("{name} is required"))
        })
    }

    /// An optional email field: when present, a text field that [`is_email`].
    pub fn email(&self, field: &str) -> Result<Option<String>, ApiError> {
        let Some(email) = self.text(field)? else {
            return Ok(None);
        };
        if !is_email(&email) {
            let name = self.name(field);
            return Err(ApiError::invalid(
                &name,
                format!("{name} must be an email address"),
            ));
        }
        Ok(Some(email))
    }

    /// A text field that may be cleared: `None` when absent, `Some(None)` when `null` or
    /// blank, else the trimmed text (at most [`MAX_TEXT_CHARS`]).
    pub fn clearable_text(&self, field: &str) -> Result<Option<Option<String>>, ApiError> {
        let name = self.name(field);
        match self.map.get(field) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(Some(None)),
            Some(Value::String(_)) => self.text(field).map(Some),
            Some(_) => Err(ApiError::invalid(
                &name,
                format!("{name} must be a string or null"),
            )),
        }
    }

    /// An email that may be cleared, as [`Fields::clearable_text`].
    pub fn clearable_email(&self, field: &str) -> Result<Option<Option<String>>, ApiError> {
        let value = self.clearable_text(field)?;
        if let Some(Some(email)) = &value
            && !is_email(email)
        {
            let name = self.name(field);
            return Err(ApiError::invalid(
                &name,
                format!("{name} must be an email address or null"),
            ));
        }
        Ok(value)
    }

    /// A UUID that may be cleared: `None` when absent, `Some(None)` when `null`.
    pub fn clearable_uuid(&self, field: &str) -> Result<Option<Option<Uuid>>, ApiError> {
        match self.map.get(field) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(_) => self.uuid(field).map(Some),
        }
    }

    /// A required UUID field.
    pub fn required_uuid(&self, field: &str) -> Result<Uuid, ApiError> {
        self.uuid(field)?.ok_or_else(|| {
            let name = self.name(field);
            ApiError::invalid(&name, format!("{name} is required"))
        })
    }

    /// An optional UUID field.
    pub fn uuid(&self, field: &str) -> Result<Option<Uuid>, ApiError> {
        let name = self.name(field);
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(text)) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid(&name, format!("{name} must be a UUID"))),
            Some(_) => Err(ApiError::invalid(&name, format!("{name} must be a UUID"))),
        }
    }

    /// An optional boolean field.
    pub fn bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        let name = self.name(field);
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid(
                &name,
                format!("{name} must be true or false"),
            )),
        }
    }

    /// An optional array field.
    pub fn array(&self, field: &str) -> Result<Option<&Vec<Value>>, ApiError> {
        let name = self.name(field);
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(ApiError::invalid(&name, format!("{name} must be an array"))),
        }
    }
}

/// Whether `text` looks like an email address: `local@domain`, no whitespace or control
/// characters, a dot-separated domain of at least two non-empty labels made of letters,
/// digits and inner hyphens. Deliverability is not checked.
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && !local.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"(),:;<>[\\]".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_told_from_other_text() {
        for good in [
            "ann@example.com",
            "Ann.Lee+support@mail.example.co.uk",
            "j_o-e@xn--bcher-kva.example",
            "анна@пример.рф",
        ] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "ann@@example.com",
            "ann@exa mple.com",
            "an n@example.com",
            ".ann@example.com",
            "ann..lee@example.com",
            "ann@-example.com",
            "ann@example..com",
            "ann@example.com.",
            "<ann>@example.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
