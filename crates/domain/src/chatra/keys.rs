//! Every assumption about the names of Chatra's JSON keys, in one place.
//!
//! Chatra documents few of them (`chatra-api.md` §6–8): only `client.info`,
//! `client.basicInfo` and `client.integrationData` are known for sure. Each other list names
//! the spellings seen in third-party code or judged likely; the first one present wins. The
//! webhook parser and the visitor card (`GET /clients/{id}`) read the same lists, so a
//! correction made here, once real captures exist, reaches both.

/// Objects holding the visitor's contact data (form answers, the site's integration data,
/// Chatra's merged view), read in this order; a key seen in an earlier one wins.
pub(crate) const CONTACT_SOURCES: &[&str] = &["info", "basicInfo", "integrationData"];

/// Keys inside [`CONTACT_SOURCES`] that are the customer's own fields, not form fields.
pub(crate) const NAME_KEY: &str = "name";
/// See [`NAME_KEY`].
pub(crate) const EMAIL_KEY: &str = "email";
/// See [`NAME_KEY`].
pub(crate) const PHONE_KEY: &str = "phone";

/// The visitor's IP address.
pub(crate) const IP_KEYS: &[&str] = &["ip", "ipAddress"];
/// The visitor's browser.
pub(crate) const BROWSER_KEYS: &[&str] = &["browser", "userAgent"];
/// The visitor's operating system.
pub(crate) const OS_KEYS: &[&str] = &["os", "osVersion", "platform"];
/// The chat's language.
pub(crate) const LANGUAGE_KEYS: &[&str] = &["language", "lang", "locale", "chatLanguage"];
/// The visitor's location: text, or an object of [`LOCATION_PARTS`].
pub(crate) const LOCATION_KEYS: &[&str] = &["location", "geo"];
/// The parts of a location object, joined with ", " in this order.
pub(crate) const LOCATION_PARTS: &[&str] = &["city", "region", "country"];
/// The visitor's last visit, epoch milliseconds.
pub(crate) const LAST_VISIT_KEYS: &[&str] = &["lastVisit", "lastSeen", "lastVisitAt"];

/// The Chatra group id, as a key of its own (webhook root, `client`, visitor card).
pub(crate) const GROUP_ID_KEYS: &[&str] = &["groupId", "chatraGroupId"];
/// The Chatra group as an object, whose id is under one of [`GROUP_OBJECT_ID_KEYS`].
pub(crate) const GROUP_OBJECT_KEYS: &[&str] = &["group"];
/// See [`GROUP_OBJECT_KEYS`].
pub(crate) const GROUP_OBJECT_ID_KEYS: &[&str] = &["id", "_id"];

/// The visitor card's own id (the client id asked for; not kept as an extra field).
pub(crate) const VISITOR_ID_KEYS: &[&str] = &["id", "_id", "clientId"];

/// Where an agent message's Chatra agent e-mail may be: first the message's own keys, then
/// the entry of the top-level `agents` array with the message's `agentId`
/// (`chatra-api.md` §7 item 7).
pub(crate) const MESSAGE_AGENT_EMAIL_KEYS: &[&str] = &["agentEmail"];
/// See [`MESSAGE_AGENT_EMAIL_KEYS`].
pub(crate) const AGENTS_ENTRY_EMAIL_KEYS: &[&str] = &["email", "agentEmail"];

/// The label prefix of a visitor card key kept as an extra customer field
/// (`chatra.<dotted path>`).
pub const VISITOR_FIELD_PREFIX: &str = "chatra.";
