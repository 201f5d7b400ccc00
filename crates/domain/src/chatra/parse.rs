//! From webhook bytes to [`ParsedWebhook`], leniently and without panics.

use serde_json::{Map, Value};

use super::client_data::{group_id_of, read_client_data};
use super::message::parse_message;
use super::values::{array_of, text_of};
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
    // `chatStarted` carries a single `agent` and `message` object (§8.1), `chatFragment` and
    // `chatTranscript` the arrays; a body may hold both, so both are read, each id once.
    let agents: Vec<&Map<String, Value>> = root
        .get("agent")
        .and_then(Value::as_object)
        .into_iter()
        .chain(array_of(root.get("agents")).filter_map(Value::as_object))
        .collect();
    let mut agent_ids: Vec<String> = Vec::new();
    for id in agents.iter().filter_map(|a| text_of(a.get("id"))) {
        if !agent_ids.contains(&id) {
            agent_ids.push(id);
        }
    }
    let mut unreadable = Vec::new();
    let mut messages: Vec<ChatraMessage> = Vec::new();
    let bodies = root
        .get("message")
        .and_then(Value::as_object)
        .into_iter()
        .chain(array_of(root.get("messages")).filter_map(Value::as_object));
    for body in bodies {
        let message = parse_message(body, &agents, &mut unreadable);
        if !messages.iter().any(|m| m.id == message.id) {
            messages.push(message);
        }
    }
    Ok(ParsedWebhook::Known(Box::new(ChatraWebhook {
        kind,
        client,
        group_id,
        agent_ids,
        messages,
        unreadable,
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
