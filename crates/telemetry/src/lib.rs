//! Telemetry for every deskie service.
//!
//! - [`init`]: JSON logs through `tracing`, filtered by `RUST_LOG`, plus an OpenTelemetry
//!   exporter only when `OTEL_EXPORTER_OTLP_ENDPOINT` is configured (svix's approach).
//! - [`nats`]: W3C trace context injected into and extracted from NATS headers, so a trace
//!   follows an event across every hop.
//! - [`http`]: an actix-web root span that records the route, never the query string (the
//!   webhook token may travel there).
//! - [`metrics`]: the Prometheus text exposition of a registry.
//! - [`ops`]: `/healthz`, `/readyz` and `/metrics` for a service without an HTTP API.

pub mod http;
pub mod metrics;
pub mod nats;
pub mod ops;
mod subscriber;

/// A token cancelled on SIGINT or SIGTERM ([`shutdown_signal`]): what a service binary
/// hands its run loop so a `docker stop` ends it gracefully.
pub fn cancel_on_shutdown_signal() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let on_signal = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        on_signal.cancel();
    });
    token
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (`docker stop`), whichever comes first.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub use subscriber::{TelemetryError, TelemetryGuard, init};
