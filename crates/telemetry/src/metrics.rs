//! Prometheus exposition.

use prometheus::{Encoder, Registry, TextEncoder};

/// Renders `registry` in the Prometheus text format for a `/metrics` endpoint.
pub fn render(registry: &Registry) -> String {
    let mut buffer = Vec::new();
    // Encoding into a Vec only fails on a metric family with an invalid name, which the
    // registry refuses at registration; an empty page is the safe fallback.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buffer);
    String::from_utf8(buffer).unwrap_or_default()
}
