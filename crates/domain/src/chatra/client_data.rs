//! What a client object says about the visitor, read the same way from a webhook's `client`
//! and from the visitor card (`GET /clients/{id}`), with the keys of [`super::keys`].

use serde_json::{Map, Value};

use super::keys::*;
use super::time::millis_of;
use super::values::text_of;
use super::webhook::ClientDetails;

/// A key path inside a JSON object, one segment per level.
pub(crate) type Path = Vec<String>;

/// The visitor's data found in a client object, and where it was read.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientData {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Every other contact field, under its key, first seen first.
    pub fields: Vec<(String, String)>,
    pub details: ClientDetails,
    /// Paths whose values are in the above (the visitor card keeps everything else).
    pub read: Vec<Path>,
}

/// Reads the contact sources and the technical details of `client`.
pub(crate) fn read_client_data(client: &Map<String, Value>) -> ClientData {
    let mut data = ClientData::default();
    let sources: Vec<(&str, &Map<String, Value>)> = CONTACT_SOURCES
        .iter()
        .filter_map(|k| client.get(*k).and_then(Value::as_object).map(|s| (*k, s)))
        .collect();
    let standard = |key: &str| sources.iter().find_map(|(_, s)| text_of(s.get(key)));
    data.name = standard(NAME_KEY);
    data.email = standard(EMAIL_KEY);
    data.phone = standard(PHONE_KEY);
    for (source_key, source) in &sources {
        for (key, value) in source.iter() {
            let Some(text) = text_of(Some(value)) else {
                continue;
            };
            let kept = if [NAME_KEY, EMAIL_KEY, PHONE_KEY].contains(&key.as_str()) {
                standard(key)
            } else if let Some((_, kept)) = data.fields.iter().find(|(k, _)| k == key) {
                Some(kept.clone())
            } else {
                data.fields.push((key.clone(), text.clone()));
                Some(text.clone())
            };
            // A later source repeating a key with another value is not kept: not read.
            if kept.as_deref() == Some(text.as_str()) {
                data.read.push(vec![(*source_key).to_owned(), key.clone()]);
            }
        }
    }
    let mut detail = |keys: &[&str]| first_text_at(client, keys, &mut data.read);
    let (ip, browser, os, language) = (
        detail(IP_KEYS),
        detail(BROWSER_KEYS),
        detail(OS_KEYS),
        detail(LANGUAGE_KEYS),
    );
    data.details = ClientDetails {
        ip,
        browser,
        os,
        language,
        location: LOCATION_KEYS
            .iter()
            .find_map(|k| location_at(client, k, &mut data.read)),
        last_visit_ms: LAST_VISIT_KEYS.iter().find_map(|k| {
            let ms = millis_of(client.get(*k)?).ok().flatten()?;
            data.read.push(vec![(*k).to_owned()]);
            Some(ms)
        }),
    };
    data
}

/// The Chatra group id in `object` ([`GROUP_ID_KEYS`], else the id of a
/// [`GROUP_OBJECT_KEYS`] object) and the path it was read at.
pub(crate) fn group_id_of(object: &Map<String, Value>) -> Option<(Path, String)> {
    let own = GROUP_ID_KEYS
        .iter()
        .find_map(|k| text_of(object.get(*k)).map(|id| (vec![(*k).to_owned()], id)));
    own.or_else(|| {
        GROUP_OBJECT_KEYS.iter().find_map(|g| {
            let group = object.get(*g)?.as_object()?;
            GROUP_OBJECT_ID_KEYS.iter().find_map(|k| {
                text_of(group.get(*k)).map(|id| (vec![(*g).to_owned(), (*k).to_owned()], id))
            })
        })
    })
}

/// The text under the first of `keys` that has one, noting the key read in `read`.
fn first_text_at(
    object: &Map<String, Value>,
    keys: &[&str],
    read: &mut Vec<Path>,
) -> Option<String> {
    let (key, text) = keys
        .iter()
        .find_map(|k| text_of(object.get(*k)).map(|t| (*k, t)))?;
    read.push(vec![key.to_owned()]);
    Some(text)
}

/// A location under `key`, given as text or as an object of [`LOCATION_PARTS`].
fn location_at(object: &Map<String, Value>, key: &str, read: &mut Vec<Path>) -> Option<String> {
    let value = object.get(key)?;
    if let Some(text) = text_of(Some(value)) {
        read.push(vec![key.to_owned()]);
        return Some(text);
    }
    let parts = value.as_object()?;
    let found: Vec<(&str, String)> = LOCATION_PARTS
        .iter()
        .filter_map(|p| text_of(parts.get(*p)).map(|t| (*p, t)))
        .collect();
    if found.is_empty() {
        return None;
    }
    read.extend(
        found
            .iter()
            .map(|(p, _)| vec![key.to_owned(), (*p).to_owned()]),
    );
    let texts: Vec<String> = found.into_iter().map(|(_, t)| t).collect();
    Some(texts.join(", "))
}
