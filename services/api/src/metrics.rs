//! The api's Prometheus metrics, in a registry of its own (several apps may share a process).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// Counters exposed on `/metrics`.
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    registry: Registry,
    requests: IntCounterVec,
    key_checks: IntCounterVec,
    idempotency_keys_pruned: IntCounter,
}

impl ApiMetrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "api_requests_total",
                "HTTP requests, by route pattern and status",
            ),
            &["route", "status"],
        )?;
        let key_checks = IntCounterVec::new(
            Opts::new(
                "api_key_checks_total",
                "Checks of integrations' API keys against Chatra, by outcome",
            ),
            &["status"],
        )?;
        let idempotency_keys_pruned = IntCounter::new(
            "api_idempotency_keys_pruned_total",
            "Stored answers to Idempotency-Keys deleted after the retention",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(idempotency_keys_pruned.clone()))?;
        registry.register(Box::new(key_checks.clone()))?;
        Ok(Self {
            registry,
            requests,
            key_checks,
            idempotency_keys_pruned,
        })
    }

    /// The registry, for rendering.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts `pruned` expired idempotency keys.
    pub fn idempotency_keys_pruned(&self, pruned: u64) {
        self.idempotency_keys_pruned.inc_by(pruned);
    }

    /// Counts one key check that ended with `status`.
    pub fn key_checked(&self, status: &str) {
        self.key_checks.with_label_values(&[status]).inc();
    }
}

/// Middleware counting every request by route pattern (never the raw path) and status.
pub async fn count_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = request.app_data::<web::Data<ApiMetrics>>().cloned();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let outcome = next.call(request).await;
    if let Some(metrics) = metrics {
        let status = match &outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        metrics
            .requests
            .with_label_values(&[route.as_str(), status.as_str()])
            .inc();
    }
    outcome
}
