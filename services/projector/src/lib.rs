//! projector: case events from JetStream into the case read models.
//!
//! For each case event it brings that case up to the event store with
//! [`deskie_store::read_models::cases::catch_up`], the same fenced function every writer of
//! case events calls in its own transaction. The fence (version v only after v−1, older
//! versions a no-op, gaps filled from the event store) makes redelivery, reordering and
//! several instances harmless, so the projector needs no inbox. See
//! `docs/services/projector.md`.

mod config;
mod handler;
mod metrics;
mod startup;

pub use config::{ConfigError, ProjectorConfig};
pub use handler::ProjectCases;
pub use metrics::ProjectorMetrics;
pub use startup::{Application, ProjectorStartError};

/// The service name: the durable consumer is `{prefix}_projector`.
pub const SERVICE: &str = "projector";
