//! The deskie HTTP API (BRIEF §3): groups, Chatra integrations, agents and rules for the
//! admin; cases and their live updates for agents.
//!
//! A library with a thin `main.rs`, so `deskie run` can start it in-process:
//! [`ApiConfig`] → [`Application::build`] → [`Application::run_until_stopped`].
//!
//! - Writes append configuration events to the event store and update the read models in
//!   the same transaction ([`commands`]); reads come from the read models.
//! - [`key_check`] checks each integration's API keys against Chatra in the background.
//! - [`idempotency`] lets a retried creating POST (with an `Idempotency-Key`) get the
//!   first answer instead of acting twice.
//! - [`live`] streams case events to agents as server-sent events (`GET /api/v1/stream`).

pub mod agent_token;
pub mod auth;
pub mod channels;
pub mod commands;
pub mod config;
pub mod error;
pub mod idempotency;
pub mod key_check;
pub mod live;
pub mod metrics;
pub mod routes;
pub mod rule_secrets;
pub mod secret_token;
pub mod startup;
pub mod webhook_token;

pub use config::{ApiConfig, ExtraMetrics};
pub use error::ApiError;
pub use startup::{ApiStartError, Application};
