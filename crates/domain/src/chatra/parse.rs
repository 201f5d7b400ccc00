//! From webhook bytes to [`ParsedWebhook`], leniently and without panics.

use serde_json::{Map, Value};

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

/// Keys Chatra may use for the visitor's technical details. The names are not documented
/// (`chatra-api.md` §7 item 4), so each detail lists the spellings seen or likely; the first
/// present wins. One place to correct once real captures exist.
const IP_KEYS: &[&str] = &["ip", "ipAddress"];
const BROWSER_KEYS: &[&str] = &["browser", "userAgent"];
const OS_KEYS: &[&str] = &["os", "osVersion", "platform"];
const LANGUAGE_KEYS: &[&str] = &["language", "lang", "locale", "chatLanguage"];
const LOCATION_KEYS: &[&str] = &["location", "geo"];
const LAST_VISIT_KEYS: &[&str] = &["lastVisit", "lastSeen", "lastVisitAt"];

/// Where an agent message's Chatra agent e-mail may be. Chatra documents neither
/// (`chatra-api.md` §7 item 7): first the message's own keys, then the entry of the top-level
/// `agents` array with the message's `agentId`. The first present wins.
const MESSAGE_AGENT_EMAIL_KEYS: &[&str] = &["agentEmail"];
const AGENTS_ENTRY_EMAIL_KEYS: &[&str] = &["email", "agentEmail"];

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
    let group_id = text_of(root.get("groupId")).or_else(|| text_of(client_obj.get("groupId")));
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
    let sources: Vec<&Map<String, Value>> = ["info", "basicInfo", "integrationData"]
        .iter()
        .filter_map(|k| client.get(*k).and_then(Value::as_object))
        .collect();
    let standard = |key: &str| sources.iter().find_map(|s| text_of(s.get(key)));
    let mut fields: Vec<(String, String)> = Vec::new();
    for source in &sources {
        for (key, value) in source.iter() {
            if matches!(key.as_str(), "name" | "email" | "phone") {
                continue;
            }
            if fields.iter().any(|(k, _)| k == key) {
                continue;
            }
            if let Some(value) = text_of(Some(value)) {
                fields.push((key.clone(), value));
            }
        }
    }
    Ok(ChatraClient {
        id,
        chat_id,
        displayed_name: text_of(client.get("displayedName")),
        name: standard("name"),
        email: standard("email"),
        phone: standard("phone"),
        fields,
        details: ClientDetails {
            ip: first_text(client, IP_KEYS),
            browser: first_text(client, BROWSER_KEYS),
            os: first_text(client, OS_KEYS),
            language: first_text(client, LANGUAGE_KEYS),
            location: LOCATION_KEYS
                .iter()
                .find_map(|k| location_of(client.get(*k)?)),
            last_visit_ms: LAST_VISIT_KEYS
                .iter()
                .find_map(|k| client.get(*k).and_then(Value::as_i64)),
        },
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

/// A non-empty string, or a number written out; anything else is `None`.
fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn first_text(object: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| text_of(object.get(*k)))
}

/// A location given as text, or as an object of city/region/country parts.
fn location_of(value: &Value) -> Option<String> {
    if let Some(text) = text_of(Some(value)) {
        return Some(text);
    }
    let object = value.as_object()?;
    let parts: Vec<String> = ["city", "region", "country"]
        .iter()
        .filter_map(|k| text_of(object.get(*k)))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn array_of(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter())
        .into_iter()
        .flatten()
}
