//! Prometheus metrics of ingest.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

/// The counters and histograms ingest exports on `/metrics`.
pub(crate) struct IngestMetrics {
    pub registry: Registry,
    /// Webhooks by outcome: accepted, duplicate, ignored (kept, an unknown `eventName`),
    /// unroutable (kept, a known event without its case key), unauthorized, unknown_integration,
    /// bad_request (400 and 415), too_large, unavailable, stream_full (503: the webhook
    /// stream is at its byte limit).
    pub webhooks: IntCounterVec,
    /// 1 while the last publish found the webhook stream full, else 0.
    pub stream_full: IntGauge,
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
        let stream_full = IntGauge::new(
            "ingest_webhook_stream_full",
            "1 while the webhook stream refuses webhooks because it is full",
        )
        .expect("constant metric definition is valid");
        let _ = registry.register(Box::new(webhooks.clone()));
        let _ = registry.register(Box::new(stream_full.clone()));
        let _ = registry.register(Box::new(publish_seconds.clone()));
        Self {
            registry,
            webhooks,
            stream_full,
            publish_seconds,
        }
    }

    pub fn count(&self, outcome: &str) {
        self.webhooks.with_label_values(&[outcome]).inc();
    }
}
