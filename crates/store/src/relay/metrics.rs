//! The relay's Prometheus metrics, in a registry of their own (several services may share a
//! process).

use prometheus::{Gauge, IntCounter, IntGauge, Registry};

use super::lag::Lag;

/// `relay_leader` (1 while this process's relay leads), `relay_unpublished_events`
/// (committed events past the checkpoint), `relay_oldest_unpublished_age_seconds` (how long
/// the oldest of them has waited since it was appended), `relay_published_events_total`.
///
/// Only the leader measures the lag; a standby shows 0. Alert on the largest value across
/// instances, e.g. `max(relay_oldest_unpublished_age_seconds) > 30`.
#[derive(Debug, Clone)]
pub struct RelayMetrics {
    registry: Registry,
    leader: IntGauge,
    unpublished: IntGauge,
    oldest_age: Gauge,
    published: IntCounter,
}

impl RelayMetrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let leader = IntGauge::new(
            "relay_leader",
            "1 while this process's relay holds the leader lock",
        )?;
        let unpublished = IntGauge::new(
            "relay_unpublished_events",
            "Committed events the relay has not published yet (measured by the leader)",
        )?;
        let oldest_age = Gauge::new(
            "relay_oldest_unpublished_age_seconds",
            "Seconds since the oldest unpublished committed event was appended",
        )?;
        let published = IntCounter::new(
            "relay_published_events_total",
            "Events the relay published and JetStream acknowledged",
        )?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(unpublished.clone()))?;
        registry.register(Box::new(oldest_age.clone()))?;
        registry.register(Box::new(published.clone()))?;
        Ok(Self {
            registry,
            leader,
            unpublished,
            oldest_age,
            published,
        })
    }

    /// The registry, to mount on a `/metrics` endpoint.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        deskie_telemetry::metrics::render(&self.registry)
    }

    /// The last lag measured (for tests and logs).
    pub fn lag(&self) -> Lag {
        Lag {
            unpublished: self.unpublished.get(),
            oldest_age_secs: self.oldest_age.get(),
        }
    }

    /// Whether this relay leads (for tests and logs).
    pub fn is_leader(&self) -> bool {
        self.leader.get() == 1
    }

    /// Events published so far (for tests and logs).
    pub fn published(&self) -> u64 {
        self.published.get()
    }

    pub(super) fn set_leader(&self, leads: bool) {
        self.leader.set(i64::from(leads));
        if !leads {
            self.record(&Lag::default());
        }
    }

    pub(super) fn record(&self, lag: &Lag) {
        self.unpublished.set(lag.unpublished);
        self.oldest_age.set(lag.oldest_age_secs);
    }

    pub(super) fn count_published(&self, n: u64) {
        self.published.inc_by(n);
    }
}
