//! PostgreSQL, the system of record (BRIEF §2).
//!
//! - [`case_stream`]: the one way to write a case: lock, inbox, bounded state (snapshot plus
//!   tail), append, project, commit.
//! - [`case_consumer`]: the one way case events are consumed: each wanted event once, in
//!   version order, gaps filled from the event store (kept by [`cursors`]).
//! - [`event_store`]: append-only events with a version per stream; every transaction that
//!   appends takes the stream's advisory lock first ([`Store::begin_stream`]).
//! - [`inbox`]: what each consumer already processed, written in the same transaction.
//! - [`outbox`]: intents of outside effects, unique per key.
//! - [`relay`]: publishes committed events to JetStream in per-stream order.
//! - [`read_models`]: the shared projections other services read.
//! - [`session`]: the settings every PostgreSQL session starts with (keepalives, timeouts).
//! - [`event_limit`]: the largest event an append accepts (what NATS can carry).
//! - [`startup`]: the database and the bus a service binary opens before it serves.
//! - [`idempotency`]: the api's `Idempotency-Key`s and the answers they replay.
//! - [`visitor_fetches`]: agent-sync's ledger of visitor-card fetches.
//! - [`client_updates`]: agent-sync's queue of customer edits for Chatra's client card.

pub mod case_consumer;
pub mod case_stream;
pub mod client_updates;
pub mod cursors;
pub mod event_limit;
pub mod event_store;
pub mod idempotency;
pub mod inbox;
pub mod outbox;
pub mod read_models;
pub mod relay;
pub mod retention;
pub mod session;
pub mod startup;
mod store;
pub mod visitor_fetches;

pub use case_stream::{Asking, CaseBatch, CaseStream};
pub use event_store::{Cause, EventDraft, StoredEvent, StreamKey, StreamTx};
pub use store::{Store, StoreError};
