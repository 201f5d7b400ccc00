//! Chatra's visitor card (`GET /clients/{id}`) in our own types.
//!
//! Only `basicInfo`, `integrationData` and `info` are known keys (`chatra-api.md` §8.6); the
//! card is read with the webhook's key lists ([`super::keys`]). Nothing is dropped: every
//! value not read into the customer's fields, details or the group id becomes an extra field
//! labelled `chatra.<dotted path>` ([`VISITOR_FIELD_PREFIX`]), in the card's order. Arrays
//! are kept whole as compact JSON; `null`, blank strings, empty arrays and empty objects
//! carry nothing and are skipped.

use serde_json::{Map, Value};

use super::client_data::{Path, group_id_of, read_client_data};
use super::keys::{VISITOR_FIELD_PREFIX, VISITOR_ID_KEYS};
use super::values::text_of;
use super::webhook::ChatraClient;

/// Keys a card may come wrapped in (`{"client": {…}}`); unwrapped when the card holds
/// nothing else.
const WRAPPER_KEYS: &[&str] = &["client", "data"];

/// A visitor, as Chatra's card describes them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatraVisitor {
    /// The contact data and details; `chat_id` is empty (a card is no chat) and
    /// `displayed_name` is not read (it is kept as an extra field).
    pub client: ChatraClient,
    /// The visitor's Chatra group id, when the card names one.
    pub group_id: Option<String>,
    /// Every other value of the card: `(chatra.<path>, text)`, in the card's order.
    pub extra_fields: Vec<(String, String)>,
}

/// Why a visitor card was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VisitorParseError {
    /// The answer is not a JSON object.
    #[error("the visitor card is not a JSON object")]
    NotAnObject,
}

/// Reads the card Chatra returned for `client_id`.
pub fn parse_visitor(card: &Value, client_id: &str) -> Result<ChatraVisitor, VisitorParseError> {
    let mut root = card.as_object().ok_or(VisitorParseError::NotAnObject)?;
    if root.len() == 1
        && let Some(inner) = WRAPPER_KEYS
            .iter()
            .find_map(|k| root.get(*k).and_then(Value::as_object))
    {
        root = inner;
    }
    let data = read_client_data(root);
    let mut read = data.read;
    let group = group_id_of(root);
    if let Some((path, _)) = &group {
        read.push(path.clone());
    }
    read.extend(VISITOR_ID_KEYS.iter().map(|k| vec![(*k).to_owned()]));
    let mut extra_fields = Vec::new();
    collect_extras(root, &mut Vec::new(), &read, &mut extra_fields);
    Ok(ChatraVisitor {
        client: ChatraClient {
            id: client_id.to_owned(),
            chat_id: String::new(),
            displayed_name: None,
            name: data.name,
            email: data.email,
            phone: data.phone,
            fields: data.fields,
            details: data.details,
        },
        group_id: group.map(|(_, id)| id),
        extra_fields,
    })
}

/// Appends every value under `object` whose path is not in `read`, depth first.
fn collect_extras(
    object: &Map<String, Value>,
    path: &mut Path,
    read: &[Path],
    out: &mut Vec<(String, String)>,
) {
    for (key, value) in object {
        path.push(key.clone());
        if !read.contains(path) {
            match value {
                Value::Object(inner) => collect_extras(inner, path, read, out),
                Value::Array(items) if !items.is_empty() => {
                    out.push((label(path), value.to_string()));
                }
                Value::Bool(flag) => out.push((label(path), flag.to_string())),
                other => {
                    if let Some(text) = text_of(Some(other)) {
                        out.push((label(path), text));
                    }
                }
            }
        }
        path.pop();
    }
}

fn label(path: &Path) -> String {
    format!("{VISITOR_FIELD_PREFIX}{}", path.join("."))
}
