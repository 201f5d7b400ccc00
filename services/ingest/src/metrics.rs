//! Prometheus metrics of ingest.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};

/// The counters and histograms ingest exports on `/metrics`.
pub(crate) struct IngestMetrics {
    pub registry: Registry,
    /// Webhooks by outcome: accepted, duplicate, ignored (kept, an unknown `eventName`),
    /// unroutable (kept, a known event without its case key), unauthorized, unknown_integration,
    /// bad_request (400 and 415), too_large, unavailable.
    pub webhooks: IntCounterVec,
    /// Time from the body being read to JetStream's acknowledgement.
    pub publish_seconds: Histogram,
}

impl IngestMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let webhooks = IntCounterVec::new(
            Opts::new(
                "ingest_webhooks_total",
                "Chatra webhooks received, by outcome",
            ),
            &["outcome"],
        )
        .expect("constant metric definition is valid");
        let publish_seconds = Histogram::with_opts(
            HistogramOpts::new("ingest_publish_seconds", "JetStream publish until PubAck").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 3.0,
                ],
            ),
        )
        .expect("constant metric definition is valid");
        let _ = registry.register(Box::new(webhooks.clone()));
        let _ = registry.register(Box::new(publish_seconds.clone()));
        Self {
            registry,
            webhooks,
            publish_seconds,
        }
    }

    pub fn count(&self, outcome: &str) {
        self.webhooks.with_label_values(&[outcome]).inc();
    }
}
