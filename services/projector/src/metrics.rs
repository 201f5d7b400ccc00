//! The projector's Prometheus metrics, in a registry of its own (several services may share
//! a process).

use prometheus::{IntCounterVec, Opts, Registry};

/// `projector_events_total{outcome}`: `applied` (the case moved forward), `already_applied`
/// (a redelivery, or a writer projected it first), `ignored` (not a case event), `retried`,
/// `poison`.
#[derive(Debug, Clone)]
pub struct ProjectorMetrics {
    registry: Registry,
    events: IntCounterVec,
}

impl ProjectorMetrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let events = IntCounterVec::new(
            Opts::new(
                "projector_events_total",
                "Case events handled by the projector, by outcome",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(events.clone()))?;
        Ok(Self { registry, events })
    }

    /// The registry, to mount on a `/metrics` endpoint.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition, for a `/metrics` endpoint.
    pub fn render(&self) -> String {
        deskie_telemetry::metrics::render(&self.registry)
    }

    /// Counts one event with `outcome`.
    pub fn count(&self, outcome: &str) {
        self.events.with_label_values(&[outcome]).inc();
    }

    /// How many events ended with `outcome` so far (for tests and logs).
    pub fn total(&self, outcome: &str) -> u64 {
        self.events.with_label_values(&[outcome]).get()
    }
}
