//! One message object of a webhook, and its attachments.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::keys::*;
use super::time::millis_of;
use super::values::{array_of, first_text, text_of};
use super::webhook::{ChatraFile, ChatraMessage, MessageAuthor, UnreadableValue};

/// Namespace of the ids given to messages Chatra sent without one (a fixed, random UUID).
const MISSING_ID_NAMESPACE: Uuid = Uuid::from_u128(0x2b8f_61d4_0c3a_4e95_b7d2_9a1c_5e08_f3b6);

/// Prefix of an id we derived because the message had none.
pub const DERIVED_ID_PREFIX: &str = "deskie-derived:";

/// The message. A value present in a form we cannot read is pushed onto `unreadable`, and
/// so is a missing id: the message is then kept under an id derived from its content, so a
/// redelivery of the same object is still recognised (an edited copy would be kept again).
pub(super) fn parse_message(
    message: &Map<String, Value>,
    agents: &[&Map<String, Value>],
    unreadable: &mut Vec<UnreadableValue>,
) -> ChatraMessage {
    let id = text_of(message.get("id")).unwrap_or_else(|| {
        // The map keeps Chatra's key order, so the same object sent again gives the same bytes.
        let bytes = serde_json::to_vec(message).unwrap_or_default();
        let id = format!(
            "{DERIVED_ID_PREFIX}{}",
            Uuid::new_v5(&MISSING_ID_NAMESPACE, &bytes)
        );
        unreadable.push(UnreadableValue {
            message_id: id.clone(),
            key: "id".into(),
            found: "no id; kept under an id derived from the message".into(),
        });
        id
    });
    let author = match message.get("type") {
        None | Some(Value::Null) => MessageAuthor::Untyped,
        Some(Value::String(t)) => match t.as_str() {
            "client" | "visitor" => MessageAuthor::Client,
            "agent" => MessageAuthor::Agent,
            other => MessageAuthor::System(other.to_owned()),
        },
        Some(other) => MessageAuthor::System(other.to_string()),
    };
    let text = MESSAGE_TEXT_KEYS
        .iter()
        .find_map(|k| message.get(*k).and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned();
    let created_at_ms = match MESSAGE_CREATED_AT_KEYS
        .iter()
        .find_map(|k| message.get(*k).map(|v| (*k, v)))
    {
        None => None,
        Some((key, value)) => millis_of(value).unwrap_or_else(|found| {
            unreadable.push(UnreadableValue {
                message_id: id.clone(),
                key: key.to_owned(),
                found,
            });
            None
        }),
    };
    let agent_id = text_of(message.get("agentId"));
    let agent_email = agent_email_of(message, agent_id.as_deref(), agents);
    ChatraMessage {
        id,
        author,
        text,
        created_at_ms,
        agent_id,
        agent_email,
        agent_name: text_of(message.get("agentName")),
        received_from: text_of(message.get("receivedFrom")),
        is_pushed: message
            .get("isPushed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        files: files_of(message),
    }
}

/// The agent's e-mail: on the message itself, else on its `agents` entry (see
/// [`MESSAGE_AGENT_EMAIL_KEYS`]). Only something that looks like an address counts.
fn agent_email_of(
    message: &Map<String, Value>,
    agent_id: Option<&str>,
    agents: &[&Map<String, Value>],
) -> Option<String> {
    let on_entry = || {
        let agent_id = agent_id?;
        let entry = agents
            .iter()
            .find(|a| text_of(a.get("id")).as_deref() == Some(agent_id))?;
        first_text(entry, AGENTS_ENTRY_EMAIL_KEYS)
    };
    first_text(message, MESSAGE_AGENT_EMAIL_KEYS)
        .or_else(on_entry)
        .map(|email| email.trim().to_owned())
        .filter(|email| email.contains('@'))
}

/// `file` (one object), then every object of `attachments[]`.
fn files_of(message: &Map<String, Value>) -> Vec<ChatraFile> {
    let single = message.get(FILE_KEY).and_then(Value::as_object);
    single
        .into_iter()
        .chain(array_of(message.get(ATTACHMENTS_KEY)).filter_map(Value::as_object))
        .map(parse_file)
        .collect()
}

fn parse_file(file: &Map<String, Value>) -> ChatraFile {
    let image = file.get("imageInfo").and_then(Value::as_object);
    let dimension = |key: &str| {
        image
            .and_then(|i| i.get(key))
            .or_else(|| file.get(key))
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
    };
    let mime_type = first_text(file, FILE_MIME_TYPE_KEYS);
    let is_image = file
        .get("isImage")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| {
            mime_type
                .as_deref()
                .is_some_and(|m| m.starts_with("image/"))
        });
    ChatraFile {
        filename: first_text(file, FILE_NAME_KEYS).unwrap_or_default(),
        size: file.get("size").and_then(Value::as_u64),
        is_image,
        url: first_text(file, FILE_URL_KEYS),
        preview_url: image
            .and_then(|i| first_text(i, FILE_PREVIEW_KEYS))
            .or_else(|| first_text(file, FILE_PREVIEW_KEYS)),
        width: dimension("width"),
        height: dimension("height"),
        mime_type,
        is_inline: file
            .get("isInline")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        inline_id: text_of(file.get("inlineId")),
    }
}
