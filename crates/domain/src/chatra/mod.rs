//! Chatra's JSON (webhooks, the visitor card), mapped into our own types in one place; the
//! key names it assumes are all in [`keys`].
//!
//! Chatra documents little of its payloads (`shared/chatra-api.md`, §8 above all), so the
//! parser is lenient: unknown keys are ignored, ids may be strings or numbers, a `chatStarted`
//! may carry a single `message` and `agent` instead of (or besides) the arrays, the text may
//! sit under `text` or `message`, times come in several forms, and the group id may be
//! top-level or inside `client`. It never panics, whatever the bytes (see the property tests).

mod client_data;
pub mod keys;
mod message;
mod parse;
mod time;
mod values;
mod visitor;
mod webhook;

pub use keys::VISITOR_FIELD_PREFIX;
pub use message::DERIVED_ID_PREFIX;
pub use parse::{PeekedWebhook, WebhookParseError, parse_webhook, peek_webhook};
pub use time::millis_of;
pub use visitor::{ChatraVisitor, VisitorParseError, parse_visitor};
pub use webhook::*;
