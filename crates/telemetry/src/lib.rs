//! Telemetry for every deskie service.
//!
//! - [`init`]: JSON logs through `tracing`, filtered by `RUST_LOG`, plus an OpenTelemetry
//!   exporter only when `OTEL_EXPORTER_OTLP_ENDPOINT` is configured (svix's approach).
//! - [`nats`]: W3C trace context injected into and extracted from NATS headers, so a trace
//!   follows an event across every hop.
//! - [`http`]: an actix-web root span that records the route, never the query string (the
//!   webhook token may travel there).
//! - [`metrics`]: the Prometheus text exposition of a registry.

pub mod http;
pub mod metrics;
pub mod nats;
mod subscriber;

pub use subscriber::{TelemetryError, TelemetryGuard, init};
