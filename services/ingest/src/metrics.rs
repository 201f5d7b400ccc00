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
    /// Where the integrations' token hashes came from.
    pub credentials: CredentialMetrics,
}

/// How the credential lookup answered, and the state of its change listener.
#[derive(Clone)]
pub(crate) struct CredentialMetrics {
    /// Lookups by source: cache, database, last_known (PostgreSQL unreachable, the last
    /// credentials read stood in), unavailable (unreachable, nothing to stand in).
    pub lookups: IntCounterVec,
    /// Evictions by announced changes, by scope: integration, all.
    pub invalidations: IntCounterVec,
    /// 1 while the change listener is connected (the cache may serve), else 0.
    pub listening: IntGauge,
}

impl CredentialMetrics {
    fn new() -> Self {
        let lookups = IntCounterVec::new(
            Opts::new(
                "ingest_credential_lookups_total",
                "Webhook token hash lookups, by where the answer came from",
            ),
            &["source"],
        )
        .expect("constant metric definition is valid");
        let invalidations = IntCounterVec::new(
            Opts::new(
                "ingest_credential_invalidations_total",
                "Cached token hashes dropped because an integration change was announced",
            ),
            &["scope"],
        )
        .expect("constant metric definition is valid");
        let listening = IntGauge::new(
            "ingest_credential_cache_listening",
            "1 while ingest hears integration changes, so its token hash cache may serve",
        )
        .expect("constant metric definition is valid");
        Self {
            lookups,
            invalidations,
            listening,
        }
    }

    fn register(&self, registry: &Registry) {
        let _ = registry.register(Box::new(self.lookups.clone()));
        let _ = registry.register(Box::new(self.invalidations.clone()));
        let _ = registry.register(Box::new(self.listening.clone()));
    }

    pub fn looked_up(&self, source: &str) {
        self.lookups.with_label_values(&[source]).inc();
    }

    pub fn invalidated(&self, scope: &str) {
        self.invalidations.with_label_values(&[scope]).inc();
    }
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
        let credentials = CredentialMetrics::new();
        credentials.register(&registry);
        Self {
            registry,
            webhooks,
            stream_full,
            publish_seconds,
            credentials,
        }
    }

    pub fn count(&self, outcome: &str) {
        self.webhooks.with_label_values(&[outcome]).inc();
    }
}
