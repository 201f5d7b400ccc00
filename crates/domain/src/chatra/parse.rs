//! From webhook bytes to [`ParsedWebhook`], leniently and without panics.

use serde_json::{Map, Value};

use super::client_data::{first_text, group_id_of, read_client_data, text_of};
use super::keys::{AGENTS_ENTRY_EMAIL_KEYS, MESSAGE_AGENT_EMAIL_KEYS};
use super::webhook::*;

/// Why a webhook body was refused. Each message names what is wrong, for the 400 body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookParseError {
    /// Not JSON at all (or nested deeper than serde_json allows).
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    /// JSON, but not an object.
    #[error("body must be a JSON object")]
    NotAnObject,
    /// No `eventName` string.
    #[error("eventName is missing or not a string")]
    MissingEventName,
    /// A known event without the case key.
    #[error("{0} is missing")]
    MissingField(&'static str),
}

/// Parses a webhook body. Unknown `eventName`s come back as [`ParsedWebhook::UnknownEvent`].
pub fn parse_webhook(body: &[u8]) -> Result<ParsedWebhook, WebhookParseError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| WebhookParseError::InvalidJson(e.to_string()))?;
    let root = value.as_object().ok_or(WebhookParseError::NotAnObject)?;
    let event_name = root
        .get("eventName")
        .and_then(Value::as_str)
        .ok_or(WebhookParseError::MissingEventName)?;
    let Some(kind) = ChatraEventKind::from_event_name(event_name) else {
        return Ok(ParsedWebhook::UnknownEvent {
            event_name: event_name.to_owned(),
        });
    };
    let client_obj = root
        .get("client")
        .and_then(Value::as_object)
        .ok_or(WebhookParseError::MissingField("client"))?;
    let client = parse_client(client_obj)?;
    let group_id = group_id_of(root)
        .or_else(|| group_id_of(client_obj))
        .map(|(_, id)| id);
    let agents: Vec<&Map<String, Value>> = array_of(root.get("agents"))
        .filter_map(Value::as_object)
        .collect();
    let agent_ids = agents.iter().filter_map(|a| text_of(a.get("id"))).collect();
    let messages = array_of(root.get("messages"))
        .filter_map(Value::as_object)
        .filter_map(|m| parse_message(m, &agents))
        .collect();
    Ok(ParsedWebhook::Known(Box::new(ChatraWebhook {
        kind,
        client,
        group_id,
        agent_ids,
        messages,
    })))
}

fn parse_client(client: &Map<String, Value>) -> Result<ChatraClient, WebhookParseError> {
    let id = text_of(client.get("id")).ok_or(WebhookParseError::MissingField("client.id"))?;
    let chat_id =
        text_of(client.get("chatId")).ok_or(WebhookParseError::MissingField("client.chatId"))?;
    let data = read_client_data(client);
    Ok(ChatraClient {
        id,
        chat_id,
        displayed_name: text_of(client.get("displayedName")),
        name: data.name,
        email: data.email,
        phone: data.phone,
        fields: data.fields,
        details: data.details,
    })
}

fn parse_message(
    message: &Map<String, Value>,
    agents: &[&Map<String, Value>],
) -> Option<ChatraMessage> {
    // A message without an id cannot be deduplicated; it is dropped rather than stored
    // twice on redelivery.
    let id = text_of(message.get("id"))?;
    let author = match message.get("type").and_then(Value::as_str) {
        Some("client") | Some("visitor") => MessageAuthor::Client,
        Some("agent") => MessageAuthor::Agent,
        Some(other) => MessageAuthor::Other(other.to_owned()),
        None => MessageAuthor::Other(String::new()),
    };
    let text = message
        .get("text")
        .and_then(Value::as_str)
        .or_else(|| message.get("message").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned();
    let agent_id = text_of(message.get("agentId"));
    let agent_email = agent_email_of(message, agent_id.as_deref(), agents);
    Some(ChatraMessage {
        id,
        author,
        text,
        created_at_ms: message.get("createdAt").and_then(Value::as_i64),
        agent_id,
        agent_email,
        agent_name: text_of(message.get("agentName")),
        received_from: text_of(message.get("receivedFrom")),
        is_pushed: message
            .get("isPushed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        file: message
            .get("file")
            .and_then(Value::as_object)
            .map(parse_file),
    })
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

fn parse_file(file: &Map<String, Value>) -> ChatraFile {
    let image = file.get("imageInfo").and_then(Value::as_object);
    let dimension = |key: &str| {
        image
            .and_then(|i| i.get(key))
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
    };
    ChatraFile {
        filename: text_of(file.get("filename")).unwrap_or_default(),
        size: file.get("size").and_then(Value::as_u64),
        is_image: file
            .get("isImage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        url: text_of(file.get("url")),
        preview_url: image.and_then(|i| text_of(i.get("previewUrl"))),
        width: dimension("width"),
        height: dimension("height"),
    }
}

fn array_of(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter())
        .into_iter()
        .flatten()
}
