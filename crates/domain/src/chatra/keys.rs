//! Every JSON key we assume Chatra uses, in one place.
//!
//! Chatra publishes no reference for its webhook and REST bodies (`shared/chatra-api.md`
//! §7–§8), so each list holds the spellings seen in working integrations or in Brevo
//! Conversations (Chatra's sibling) and, where nothing was seen, likely ones. The first key
//! present wins. `docs/setup-chatra.md` ("what we know and what we assume") lists them; a
//! real capture that shows another spelling is fixed here and nowhere else.

/// The message text: `text` (Brevo, two integrations) else `message` (two others), §8.8.
pub const MESSAGE_TEXT_KEYS: &[&str] = &["text", "message"];

/// When a message was written. Key and form unknown for Chatra (§8 "still unknown"): the
/// sibling's `createdAt` in epoch milliseconds; also read as a float, a numeric string or
/// ISO 8601 (`super::time`).
pub const MESSAGE_CREATED_AT_KEYS: &[&str] = &["createdAt", "created_at", "date"];

/// The visitor's IP address (unknown in webhooks, §8.7).
pub const IP_KEYS: &[&str] = &["ip", "ipAddress"];
/// The visitor's browser (unknown).
pub const BROWSER_KEYS: &[&str] = &["browser", "userAgent"];
/// The visitor's operating system (unknown).
pub const OS_KEYS: &[&str] = &["os", "osVersion", "platform"];
/// The chat language (unknown).
pub const LANGUAGE_KEYS: &[&str] = &["language", "lang", "locale", "chatLanguage"];
/// The visitor's location, as text or `{city, region, country}` (unknown).
pub const LOCATION_KEYS: &[&str] = &["location", "geo"];
/// The last visit, epoch milliseconds or ISO 8601 (unknown).
pub const LAST_VISIT_KEYS: &[&str] = &["lastVisit", "lastSeen", "lastVisitAt"];

/// Where an agent message's Chatra agent e-mail may be: first the message's own keys, then
/// the entry of the `agents` array (or the single `agent`) with the message's `agentId`.
/// Chatra documents neither (§7 item 7).
pub const MESSAGE_AGENT_EMAIL_KEYS: &[&str] = &["agentEmail"];
/// See [`MESSAGE_AGENT_EMAIL_KEYS`].
pub const AGENTS_ENTRY_EMAIL_KEYS: &[&str] = &["email", "agentEmail"];

/// The sibling's attachment object on a message (§8.9).
pub const FILE_KEY: &str = "file";
/// The sibling's list of attachments, added in 2026-02 (§8.9).
pub const ATTACHMENTS_KEY: &str = "attachments";
/// An attachment's name: `filename` in `file`, `name` in `attachments[]`.
pub const FILE_NAME_KEYS: &[&str] = &["filename", "name", "fileName"];
/// An attachment's download address.
pub const FILE_URL_KEYS: &[&str] = &["url", "link", "downloadUrl"];
/// An image's preview: `previewUrl`, renamed `previewLink` in 2026-02 (§8.9); looked up in
/// `imageInfo` first, then on the attachment itself.
pub const FILE_PREVIEW_KEYS: &[&str] = &["previewUrl", "previewLink"];
/// An attachment's MIME type.
pub const FILE_MIME_TYPE_KEYS: &[&str] = &["mimeType", "contentType"];
