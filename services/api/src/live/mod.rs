//! Live updates for agents (`GET /api/v1/stream`): the relayed case events as server-sent
//! events, resumable with `Last-Event-ID`.
//!
//! - [`tail`]: the case events on JetStream from a stream sequence on, gap-free.
//! - [`message`]: what an event becomes on the stream, and who hears a sound.
//! - [`session`]: one connection, pulled by the client (back-pressure), ending on shutdown
//!   or when its agent is disabled.

pub mod message;
pub mod session;
pub mod tail;

pub use session::{Audience, HEARTBEAT_EVERY, LiveSession};
pub use tail::{CaseEventTail, TailError, TailStart};
