//! Chatra's JSON (webhooks, the visitor card), mapped into our own types in one place; the
//! key names it assumes are all in `keys.rs`.
//!
//! Chatra documents little of its payloads (`shared/chatra-api.md`), so the parser is
//! lenient: unknown keys are ignored, ids may be strings or numbers, the text may sit under
//! `text` or `message`, and the group id may be top-level or inside `client`. It never
//! panics, whatever the bytes (see the property tests).

mod client_data;
mod keys;
mod parse;
mod visitor;
mod webhook;

pub use keys::VISITOR_FIELD_PREFIX;
pub use parse::{WebhookParseError, parse_webhook};
pub use visitor::{ChatraVisitor, VisitorParseError, parse_visitor};
pub use webhook::*;
