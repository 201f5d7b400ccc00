//! From webhook bytes to [`ParsedWebhook`], leniently and without panics.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
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

/// What ingest needs of a webhook (its event and case key), read without building the
/// whole document: a webhook's fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeekedWebhook<'a> {
    /// The event.
    pub kind: ChatraEventKind,
    /// `client.id`.
    pub client_id: Cow<'a, str>,
    /// `client.chatId`.
    pub chat_id: Cow<'a, str>,
    /// Message objects as sent (`message` and `messages`; duplicates counted), for a log.
    pub messages: usize,
}

/// The top of a webhook, every other key skipped.
#[derive(Deserialize)]
struct Top<'a> {
    #[serde(rename = "eventName", borrow)]
    event_name: Cow<'a, str>,
    #[serde(borrow)]
    client: PeekClient<'a>,
    message: Option<IgnoredAny>,
    messages: Option<Vec<IgnoredAny>>,
}

#[derive(Deserialize)]
struct PeekClient<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "chatId", borrow)]
    chat_id: Cow<'a, str>,
}

/// The usual webhook's event and case key, when reading them alone is certain to agree with
/// [`parse_webhook`]: a JSON object with a known `eventName`, and a `client` object whose
/// `id` and `chatId` are non-blank strings (each key once). `None` for anything else (an
/// unknown event, a missing or numeric id, a repeated key, not JSON): the caller then parses
/// the whole body, which decides.
pub fn peek_webhook(body: &[u8]) -> Option<PeekedWebhook<'_>> {
    let top: Top<'_> = serde_json::from_slice(body).ok()?;
    let kind = ChatraEventKind::from_event_name(&top.event_name)?;
    let blank = |s: &str| s.trim().is_empty();
    if blank(&top.client.id) || blank(&top.client.chat_id) {
        return None;
    }
    Some(PeekedWebhook {
        kind,
        client_id: top.client.id,
        chat_id: top.client.chat_id,
        messages: usize::from(top.message.is_some()) + top.messages.map_or(0, |m| m.len()),
    })
}
