//! The relay's Prometheus metrics, in a registry of their own (several services may share a
//! process).

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use super::lag::Lag;

/// `relay_leader` (1 while this process's relay leads), `relay_unpublished_events`
/// (committed events past the checkpoint), `relay_oldest_unpublished_age_seconds` (how long
/// the oldest of them has waited since it was appended), `relay_published_events_total`,
/// `relay_publish_failures_total{reason="stream_full"|"other"}` (failed publish passes; the
/// relay backs off between them) and `relay_events_stream_full` (1 while the events stream
/// refuses the relay's publishes because it is full).
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
    failures: IntCounterVec,
    stream_full: IntGauge,
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
        let failures = IntCounterVec::new(
            Opts::new(
                "relay_publish_failures_total",
                "Relay passes that could not publish everything they read, by reason",
            ),
            &["reason"],
        )?;
        let stream_full = IntGauge::new(
            "relay_events_stream_full",
            "1 while the events stream refuses the relay's publishes because it is full",
        )?;
        registry.register(Box::new(published.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(stream_full.clone()))?;
        Ok(Self {
            registry,
            leader,
            unpublished,
            oldest_age,
            published,
            failures,
            stream_full,
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

    /// Whether the last publish found the events stream full (for tests and logs).
    pub fn is_stream_full(&self) -> bool {
        self.stream_full.get() == 1
    }

    /// Failed publish passes so far because the events stream was full.
    pub fn stream_full_failures(&self) -> u64 {
        self.failures.with_label_values(&["stream_full"]).get()
    }

    pub(super) fn publish_failed(&self, stream_full: bool) {
        let reason = if stream_full { "stream_full" } else { "other" };
        self.failures.with_label_values(&[reason]).inc();
        self.set_stream_full(stream_full);
    }

    pub(super) fn set_stream_full(&self, full: bool) {
        self.stream_full.set(i64::from(full));
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
