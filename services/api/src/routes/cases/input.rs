//! Validation of case requests: every refusal names its field.

use serde_json::Value;

use deskie_domain::case::CaseStatus;

use crate::ApiError;
use crate::commands::cases::{CaseChange, CustomerEdit, STATUSES};
use crate::routes::body::Fields;

/// The body of `PATCH /api/v1/cases/{id}`: `status`, `assignee_id` (`null` unassigns),
/// `group_id`.
pub fn case_change(body: Value) -> Result<CaseChange, ApiError> {
    let fields = Fields::of_body(body)?;
    let status = match fields.text("status")? {
        Some(status) => Some(CaseStatus::parse(&status).ok_or_else(|| {
            ApiError::invalid(
                "status",
                format!("status must be one of: {}", STATUSES.join(", ")),
            )
        })?),
        None => None,
    };
    Ok(CaseChange {
        status,
        assignee_id: fields.clearable_uuid("assignee_id")?,
        group_id: fields.uuid("group_id")?,
    })
}

/// The body of `PUT /api/v1/cases/{id}/customer`: `name`, `email`, `phone`, each a string
/// or `null` (cleared); an absent one stays as it is.
pub fn customer_edit(body: Value) -> Result<CustomerEdit, ApiError> {
    let fields = Fields::of_body(body)?;
    Ok(CustomerEdit {
        name: fields.clearable_text("name")?,
        email: fields.clearable_email("email")?,
        phone: fields.clearable_text("phone")?,
    })
}

/// Longest reply accepted: the limit known for Chatra's `POST /messages/` text (its real
/// limit is undocumented; `shared/chatra-api.md` §6).
pub const MAX_REPLY_CHARS: usize = 5000;

/// The body of `POST /api/v1/cases/{id}/replies`: `{text}`, non-empty, at most
/// [`MAX_REPLY_CHARS`] characters. Surrounding whitespace is dropped; the rest is kept as typed.
pub fn reply_text(body: Value) -> Result<String, ApiError> {
    let fields = Fields::of_body(body)?;
    let Some(value) = fields.get("text") else {
        return Err(ApiError::invalid("text", "text is required".to_owned()));
    };
    let Value::String(text) = value else {
        return Err(ApiError::invalid(
            "text",
            "text must be a string".to_owned(),
        ));
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::invalid(
            "text",
            "text must not be empty".to_owned(),
        ));
    }
    if text.chars().count() > MAX_REPLY_CHARS {
        return Err(ApiError::invalid(
            "text",
            format!("text must be at most {MAX_REPLY_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of<T: std::fmt::Debug>(result: Result<T, ApiError>) -> String {
        match result {
            Err(ApiError::Invalid { field, message }) => {
                assert!(message.contains(&field), "{message}");
                field
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn null_unassigns_and_absent_keeps() {
        let change = case_change(json!({"assignee_id": null})).expect("valid");
        assert_eq!(change.assignee_id, Some(None));
        let change = case_change(json!({"status": "closed"})).expect("valid");
        assert_eq!(change.assignee_id, None);
        assert_eq!(change.status, Some(CaseStatus::Closed));
    }

    #[test]
    fn blank_customer_values_clear_and_bad_ones_are_named() {
        let edit =
            customer_edit(json!({"name": " ", "email": null, "phone": "+1 555"})).expect("valid");
        assert_eq!(edit.name, Some(None));
        assert_eq!(edit.email, Some(None));
        assert_eq!(edit.phone, Some(Some("+1 555".into())));
        assert_eq!(field_of(customer_edit(json!({"email": "nope"}))), "email");
        assert_eq!(field_of(customer_edit(json!({"phone": 5}))), "phone");
        let long = "n".repeat(201);
        assert_eq!(field_of(customer_edit(json!({"name": long}))), "name");
        assert_eq!(field_of(case_change(json!({"status": "done"}))), "status");
        assert_eq!(
            field_of(case_change(json!({"assignee_id": "x"}))),
            "assignee_id"
        );
        assert_eq!(field_of(case_change(json!({"group_id": 1}))), "group_id");
    }
}
