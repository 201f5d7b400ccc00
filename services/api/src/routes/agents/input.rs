//! Validation of agent requests: every refusal names its field.

use deskie_store::Store;
use serde_json::Value;
use uuid::Uuid;

use crate::ApiError;
use crate::channels;
use crate::commands::agents::{AgentPatch, NewAgent, STATUSES};
use crate::routes::body::Fields;
use crate::routes::groups;

/// The most groups one agent may be a member of.
pub const MAX_GROUP_IDS: usize = 500;

/// The body of `POST /api/v1/agents`; `channel_access` defaults to none.
pub fn new_agent(body: Value) -> Result<NewAgent, ApiError> {
    let fields = Fields::of_body(body)?;
    Ok(NewAgent {
        email: fields.required_email("email")?,
        name: fields.required_text("name")?,
        channel_access: channel_access(&fields)?.unwrap_or_default(),
        group_ids: group_ids(&fields)?.unwrap_or_default(),
    })
}

/// The body of `PATCH /api/v1/agents/{id}`.
pub fn agent_patch(body: Value) -> Result<AgentPatch, ApiError> {
    let fields = Fields::of_body(body)?;
    Ok(AgentPatch {
        email: fields.email("email")?,
        name: fields.text("name")?,
        channel_access: channel_access(&fields)?,
        group_ids: group_ids(&fields)?,
        disabled: fields.bool("disabled")?,
    })
}

/// The body of `PUT /api/v1/agents/me/status`: `{"status": "online" | "offline"}`.
pub fn agent_status(body: Value) -> Result<&'static str, ApiError> {
    let fields = Fields::of_body(body)?;
    let refusal = || {
        ApiError::invalid(
            "status",
            format!(
                "status is required and must be one of: {}",
                STATUSES.join(", ")
            ),
        )
    };
    let status = fields
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(refusal)?;
    STATUSES
        .into_iter()
        .find(|known| *known == status)
        .ok_or_else(refusal)
}

/// `group_ids` as sent checked against the store: refuses the first id that names no
/// existing group (`group_ids[1]`); returns the ids with repeats counted once, in order.
pub async fn existing_groups(store: &Store, ids: &[Uuid]) -> Result<Vec<Uuid>, ApiError> {
    let named = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (format!("group_ids[{i}]"), *id));
    groups::ensure_groups_exist(store, named).await?;
    let mut once = Vec::with_capacity(ids.len());
    for id in ids {
        if !once.contains(id) {
            once.push(*id);
        }
    }
    Ok(once)
}

/// At most [`MAX_GROUP_IDS`] UUIDs; `null` or absent = not given. Whether they name
/// groups is [`existing_groups`]' business.
fn group_ids(fields: &Fields) -> Result<Option<Vec<Uuid>>, ApiError> {
    let Some(items) = fields.array("group_ids")? else {
        return Ok(None);
    };
    if items.len() > MAX_GROUP_IDS {
        return Err(ApiError::invalid(
            "group_ids",
            format!("group_ids may hold at most {MAX_GROUP_IDS} groups"),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str()
                .and_then(|id| id.trim().parse().ok())
                .ok_or_else(|| {
                    let name = format!("group_ids[{i}]");
                    ApiError::invalid(&name, format!("{name} must be a group id (a UUID)"))
                })
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Known channel names; a repeated one counts once.
fn channel_access(fields: &Fields) -> Result<Option<Vec<String>>, ApiError> {
    let Some(items) = fields.array("channel_access")? else {
        return Ok(None);
    };
    let mut channels = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let known = item
            .as_str()
            .and_then(|name| channels::KNOWN.iter().find(|known| **known == name));
        let Some(known) = known else {
            let name = format!("channel_access[{i}]");
            return Err(ApiError::invalid(
                &name,
                format!(
                    "{name} must be one of the known channels: {}",
                    channels::KNOWN.join(", ")
                ),
            ));
        };
        if !channels.iter().any(|c| c == known) {
            channels.push((*known).to_owned());
        }
    }
    Ok(Some(channels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(result: Result<NewAgent, ApiError>) -> String {
        match result {
            Err(ApiError::Invalid { field, message }) => {
                assert!(message.contains(&field), "{message} does not name {field}");
                field
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_body_is_trimmed_and_repeated_channels_count_once() {
        let new = new_agent(json!({
            "email": " ann@example.com ",
            "name": " Ann ",
            "channel_access": ["live_chat", "live_chat"],
        }))
        .expect("valid");
        assert_eq!(new.email, "ann@example.com");
        assert_eq!(new.name, "Ann");
        assert_eq!(new.channel_access, ["live_chat"]);
        let none = new_agent(json!({"email": "a@b.co", "name": "A"})).expect("valid");
        assert!(none.channel_access.is_empty());
        assert!(none.group_ids.is_empty(), "no groups: every group");
    }

    #[test]
    fn each_bad_field_is_named() {
        let valid = json!({"email": "ann@example.com", "name": "Ann", "channel_access": []});
        let with = |field: &str, value: Value| {
            let mut body = valid.clone();
            body[field] = value;
            body
        };
        for (body, field) in [
            (json!("ann"), "body"),
            (with("email", json!("ann")), "email"),
            (with("email", json!(7)), "email"),
            (with("email", Value::Null), "email"),
            (with("name", json!(" ")), "name"),
            (with("name", json!("n".repeat(201))), "name"),
            (with("channel_access", json!("live_chat")), "channel_access"),
            (
                with("channel_access", json!(["email"])),
                "channel_access[0]",
            ),
            (
                with("channel_access", json!(["live_chat", 3])),
                "channel_access[1]",
            ),
            (with("group_ids", json!("sales")), "group_ids"),
            (
                with("group_ids", json!([Uuid::nil(), "sales"])),
                "group_ids[1]",
            ),
            (with("group_ids", json!([7])), "group_ids[0]"),
            (
                with("group_ids", json!(vec![Uuid::nil(); MAX_GROUP_IDS + 1])),
                "group_ids",
            ),
        ] {
            assert_eq!(field_of(new_agent(body)), field);
        }
        assert!(agent_patch(json!({"disabled": "yes"})).is_err());
    }

    #[test]
    fn a_status_is_online_or_offline_and_anything_else_names_the_field() {
        assert_eq!(
            agent_status(json!({"status": "online"})).ok(),
            Some("online")
        );
        assert_eq!(
            agent_status(json!({"status": "offline"})).ok(),
            Some("offline")
        );
        for body in [
            json!({}),
            json!({"status": null}),
            json!({"status": "away"}),
            json!({"status": "Online"}),
            json!({"status": 1}),
        ] {
            match agent_status(body) {
                Err(ApiError::Invalid { field, message }) => {
                    assert_eq!(field, "status");
                    assert!(message.contains("online, offline"), "{message}");
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    }
}
