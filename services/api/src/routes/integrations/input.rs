//! Validation of integration requests: shape first, then that the named groups exist.

use std::collections::HashSet;

use deskie_store::Store;
use deskie_store::read_models::integrations::GroupMapping;
use secrecy::SecretString;
use serde_json::Value;
use uuid::Uuid;

use crate::ApiError;
use crate::commands::integrations::{IntegrationPatch, NewIntegration, Panel};
use crate::routes::body::Fields;
use crate::routes::groups;

/// The most group mappings one integration may have.
pub const MAX_GROUP_MAPPINGS: usize = 500;

/// The body of `POST /api/v1/integrations/chatra`.
pub fn new_integration(body: Value) -> Result<NewIntegration, ApiError> {
    let fields = Fields::of_body(body)?;
    Ok(NewIntegration {
        public_key: fields.required_text("public_key")?,
        secret_key: SecretString::from(fields.required_text("secret_key")?),
        default_group_id: fields.required_uuid("default_group_id")?,
        panel: panel(&fields)?.unwrap_or_default(),
        group_mappings: group_mappings(&fields)?.unwrap_or_default(),
        sender_name: fields.text("sender_name")?,
        sender_email: fields.email("sender_email")?,
    })
}

/// The body of `PATCH /api/v1/integrations/chatra/{id}`.
pub fn integration_patch(body: Value) -> Result<IntegrationPatch, ApiError> {
    let fields = Fields::of_body(body)?;
    Ok(IntegrationPatch {
        public_key: fields.text("public_key")?,
        secret_key: fields.text("secret_key")?.map(SecretString::from),
        default_group_id: fields.uuid("default_group_id")?,
        panel: panel(&fields)?,
        group_mappings: group_mappings(&fields)?,
        rotate_webhook_token: fields.bool("rotate_webhook_token")?.unwrap_or(false),
        sender_name: fields.clearable_text("sender_name")?,
        sender_email: fields.clearable_email("sender_email")?,
    })
}

/// Refuses, naming the field, a default group or mapped group that does not exist.
pub async fn ensure_groups_exist(
    store: &Store,
    default_group_id: Option<Uuid>,
    mappings: Option<&[GroupMapping]>,
) -> Result<(), ApiError> {
    let named = default_group_id
        .map(|id| ("default_group_id".to_owned(), id))
        .into_iter()
        .chain(
            mappings
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, m)| (format!("group_mappings[{i}].group_id"), m.group_id)),
        );
    groups::ensure_groups_exist(store, named).await
}

fn panel(fields: &Fields) -> Result<Option<Panel>, ApiError> {
    let Some(value) = fields.get("panel") else {
        return Ok(None);
    };
    value
        .as_str()
        .and_then(Panel::parse)
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid("panel", "panel must be \"separate\" or \"informational\"")
        })
}

fn group_mappings(fields: &Fields) -> Result<Option<Vec<GroupMapping>>, ApiError> {
    let Some(items) = fields.array("group_mappings")? else {
        return Ok(None);
    };
    if items.len() > MAX_GROUP_MAPPINGS {
        return Err(ApiError::invalid(
            "group_mappings",
            format!("group_mappings may hold at most {MAX_GROUP_MAPPINGS} mappings"),
        ));
    }
    let mut seen = HashSet::new();
    let mut mappings = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mapping = Fields::nested(item, &format!("group_mappings[{i}]"))?;
        let chatra_group_id = mapping.required_text("chatra_group_id")?;
        let group_id = mapping.required_uuid("group_id")?;
        if !seen.insert(chatra_group_id.clone()) {
            let name = mapping.name("chatra_group_id");
            return Err(ApiError::invalid(
                &name,
                format!("{name} repeats a chatra_group_id mapped earlier in group_mappings"),
            ));
        }
        mappings.push(GroupMapping {
            chatra_group_id,
            group_id,
        });
    }
    Ok(Some(mappings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(result: Result<NewIntegration, ApiError>) -> String {
        match result {
            Err(ApiError::Invalid { field, message }) => {
                assert!(message.contains(&field), "{message} does not name {field}");
                field
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn valid() -> Value {
        json!({"public_key": "pub", "secret_key": "sec", "default_group_id": Uuid::nil()})
    }

    fn with(field: &str, value: Value) -> Value {
        let mut body = valid();
        body[field] = value;
        body
    }

    #[test]
    fn defaults_apply_when_optional_fields_are_absent() {
        let new = new_integration(valid()).expect("valid");
        assert_eq!(new.panel, Panel::Separate);
        assert!(new.group_mappings.is_empty());
    }

    #[test]
    fn each_bad_field_is_named() {
        let long = "x".repeat(201);
        for (body, field) in [
            (json!([]), "body"),
            (with("public_key", json!("  ")), "public_key"),
            (with("secret_key", json!(long)), "secret_key"),
            (with("secret_key", json!(7)), "secret_key"),
            (with("default_group_id", json!("nope")), "default_group_id"),
            (with("panel", json!("floating")), "panel"),
            (with("sender_name", json!(" ")), "sender_name"),
            (with("sender_name", json!("x".repeat(201))), "sender_name"),
            (
                with("sender_email", json!("not an address")),
                "sender_email",
            ),
            (with("sender_email", json!(3)), "sender_email"),
            (with("group_mappings", json!({})), "group_mappings"),
            (with("group_mappings", json!([1])), "group_mappings[0]"),
            (
                with(
                    "group_mappings",
                    json!([{"chatra_group_id": "a", "group_id": "x"}]),
                ),
                "group_mappings[0].group_id",
            ),
            (
                with(
                    "group_mappings",
                    json!([
                        {"chatra_group_id": "a", "group_id": Uuid::nil()},
                        {"chatra_group_id": "a", "group_id": Uuid::nil()},
                    ]),
                ),
                "group_mappings[1].chatra_group_id",
            ),
        ] {
            assert_eq!(field_of(new_integration(body)), field);
        }
        let mut missing = valid();
        missing.as_object_mut().map(|o| o.remove("secret_key"));
        assert_eq!(field_of(new_integration(missing)), "secret_key");
    }

    #[test]
    fn a_patch_may_name_any_subset_of_fields() {
        let patch =
            integration_patch(json!({"panel": "informational", "rotate_webhook_token": true}))
                .expect("valid");
        assert_eq!(patch.panel, Some(Panel::Informational));
        assert!(patch.rotate_webhook_token && patch.public_key.is_none());
        assert!(integration_patch(json!({"rotate_webhook_token": "yes"})).is_err());
    }
}
