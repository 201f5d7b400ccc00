//! Liveness, readiness and metrics.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;
use crate::config::ExtraMetrics;
use crate::metrics::ApiMetrics;

/// 200 while the process serves requests.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when PostgreSQL answers and NATS is connected (live updates need it), else 503
/// naming what is missing.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = state.store.ping().await;
    let nats = state.bus.is_connected();
    if database && nats {
        return HttpResponse::Ok().json(json!({"status": "ok"}));
    }
    let error = match (database, nats) {
        (false, false) => "neither the database nor NATS answers",
        (false, true) => "the database does not answer",
        _ => "NATS is not connected",
    };
    HttpResponse::ServiceUnavailable().json(json!({
        "status": "unavailable",
        "error": error,
        "checks": {"database": database, "nats": nats},
    }))
}

/// The Prometheus text exposition: the api's metrics, then any [`ExtraMetrics`] pages.
pub async fn metrics(
    metrics: web::Data<ApiMetrics>,
    extra: web::Data<ExtraMetrics>,
) -> HttpResponse {
    let mut page = deskie_telemetry::metrics::render(metrics.registry());
    page.push_str(&extra.render());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(page)
}
