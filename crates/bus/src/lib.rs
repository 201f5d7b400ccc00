//! Everything deskie does with NATS JetStream, in one crate.
//!
//! - [`Topology`]: every stream, subject and consumer name, derived from `DESKIE_NATS_PREFIX`.
//! - [`Bus`]: the connection, idempotent provisioning, and [`Bus::publish_durable`], which
//!   returns only once JetStream has acknowledged the message.
//! - [`consumer`]: durable pull consumers with explicit ack after the handler's commit,
//!   outages waited out in place, a delivery budget with delayed naks for other failures,
//!   and a dead-letter record for poison and spent budgets.

pub mod batch;
mod bus;
pub mod consumer;
pub mod dead_letter;
mod held;
mod topology;

pub use bus::{Bus, BusError, Outgoing, PublishOutcome};
pub use topology::{EVENT_PARTITIONS, StreamLimits, Topology, partition_of};

/// Header carrying the event type on relayed events (e.g. `case_opened`).
pub const EVENT_TYPE_HEADER: &str = "Deskie-Event-Type";
/// Header on accepted webhooks naming their chat (its case id), so consumers can keep each
/// chat's webhooks in order while handling chats in parallel.
pub const CHAT_LANE_HEADER: &str = "Deskie-Chat-Lane";
/// Header carrying the stream version on relayed events.
pub const STREAM_VERSION_HEADER: &str = "Deskie-Stream-Version";
