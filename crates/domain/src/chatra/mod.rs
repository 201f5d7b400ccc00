//! Chatra's webhook JSON, mapped into our own types in one place.
//!
//! Chatra documents little of its payloads (`shared/chatra-api.md`), so the parser is
//! lenient: unknown keys are ignored, ids may be strings or numbers, the text may sit under
//! `text` or `message`, and the group id may be top-level or inside `client`. It never
//! panics, whatever the bytes (see the property tests).

mod parse;
mod webhook;

pub use parse::{WebhookParseError, parse_webhook};
pub use webhook::*;
