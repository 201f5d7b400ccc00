//! Every JSON key we assume Chatra uses, in one place.
//!
//! Chatra publishes no reference for its webhook and REST bodies (`chatra-api.md` §6–§8):
//! only `client.info`, `client.basicInfo` and `client.integrationData` are known for sure.
//! Each other list holds the spellings seen in working integrations or in Brevo
//! Conversations (Chatra's sibling) and, where nothing was seen, likely ones; the first key
//! present wins. The webhook parser and the visitor card (`GET /clients/{id}`) read the same
//! lists, and `docs/setup-chatra.md` ("what we know and what we assume") names them: a real
//! capture that shows another spelling is fixed here and nowhere else.

/// Objects holding the visitor's contact data (form answers, the site's integration data,
/// Chatra's merged view), read in this order; a key seen in an earlier one wins.
pub(crate) const CONTACT_SOURCES: &[&str] = &["info", "basicInfo", "integrationData"];

/// Keys inside [`CONTACT_SOURCES`] that are the customer's own fields, not form fields.
pub(crate) const NAME_KEY: &str = "name";
/// See [`NAME_KEY`].
pub(crate) const EMAIL_KEY: &str = "email";
/// See [`NAME_KEY`].
pub(crate) const PHONE_KEY: &str = "phone";

/// The visitor's IP address (unknown in webhooks, §8.7).
pub(crate) const IP_KEYS: &[&str] = &["ip", "ipAddress"];
/// The visitor's browser (unknown).
pub(crate) const BROWSER_KEYS: &[&str] = &["browser", "userAgent"];
/// The visitor's operating system (unknown).
pub(crate) const OS_KEYS: &[&str] = &["os", "osVersion", "platform"];
/// The chat's language (unknown).
pub(crate) const LANGUAGE_KEYS: &[&str] = &["language", "lang", "locale", "chatLanguage"];
/// The visitor's location: text, or an object of [`LOCATION_PARTS`] (unknown).
pub(crate) const LOCATION_KEYS: &[&str] = &["location", "geo"];
/// The parts of a location object, joined with ", " in this order.
pub(crate) const LOCATION_PARTS: &[&str] = &["city", "region", "country"];
/// The visitor's last visit: epoch milliseconds or ISO 8601 (unknown).
pub(crate) const LAST_VISIT_KEYS: &[&str] = &["lastVisit", "lastSeen", "lastVisitAt"];

/// The Chatra group id, as a key of its own (webhook root, `client`, visitor card).
pub(crate) const GROUP_ID_KEYS: &[&str] = &["groupId", "chatraGroupId"];
/// The Chatra group as an object, whose id is under one of [`GROUP_OBJECT_ID_KEYS`].
pub(crate) const GROUP_OBJECT_KEYS: &[&str] = &["group"];
/// See [`GROUP_OBJECT_KEYS`].
pub(crate) const GROUP_OBJECT_ID_KEYS: &[&str] = &["id", "_id"];

/// The visitor card's own id (the client id asked for; not kept as an extra field).
pub(crate) const VISITOR_ID_KEYS: &[&str] = &["id", "_id", "clientId"];

/// The label prefix of a visitor card key kept as an extra customer field
/// (`chatra.<dotted path>`).
pub const VISITOR_FIELD_PREFIX: &str = "chatra.";

/// The message text: `text` (Brevo, two integrations) else `message` (two others), §8.8.
pub(crate) const MESSAGE_TEXT_KEYS: &[&str] = &["text", "message"];

/// When a message was written. Key and form unknown for Chatra (§8 "still unknown"): the
/// sibling's `createdAt` in epoch milliseconds; also read as a float, a numeric string or
/// ISO 8601 (`super::time`).
pub(crate) const MESSAGE_CREATED_AT_KEYS: &[&str] = &["createdAt", "created_at", "date"];

/// Where an agent message's Chatra agent e-mail may be: first the message's own keys, then
/// the entry of the `agents` array (or the single `agent`) with the message's `agentId`.
/// Chatra documents neither (§7 item 7).
pub(crate) const MESSAGE_AGENT_EMAIL_KEYS: &[&str] = &["agentEmail"];
/// See [`MESSAGE_AGENT_EMAIL_KEYS`].
pub(crate) const AGENTS_ENTRY_EMAIL_KEYS: &[&str] = &["email", "agentEmail"];

/// The sibling's attachment object on a message (§8.9).
pub(crate) const FILE_KEY: &str = "file";
/// The sibling's list of attachments, added in 2026-02 (§8.9).
pub(crate) const ATTACHMENTS_KEY: &str = "attachments";
/// An attachment's name: `filename` in `file`, `name` in `attachments[]`.
pub(crate) const FILE_NAME_KEYS: &[&str] = &["filename", "name", "fileName"];
/// An attachment's download address.
pub(crate) const FILE_URL_KEYS: &[&str] = &["url", "link", "downloadUrl"];
/// An image's preview: `previewUrl`, renamed `previewLink` in 2026-02 (§8.9); looked up in
/// `imageInfo` first, then on the attachment itself.
pub(crate) const FILE_PREVIEW_KEYS: &[&str] = &["previewUrl", "previewLink"];
/// An attachment's MIME type.
pub(crate) const FILE_MIME_TYPE_KEYS: &[&str] = &["mimeType", "contentType"];
