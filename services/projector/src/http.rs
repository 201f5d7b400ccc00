//! `/healthz`, `/readyz` and `/metrics` of the projector.

use actix_web::{HttpResponse, web};
use deskie_bus::Bus;
use deskie_store::Store;

use crate::ProjectorMetrics;

/// What the endpoints read.
pub(crate) struct HttpState {
    pub bus: Bus,
    pub store: Store,
    pub metrics: ProjectorMetrics,
}

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// The process is up.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Events can be projected: NATS connected and PostgreSQL answering.
async fn readyz(state: web::Data<HttpState>) -> HttpResponse {
    let nats = state.bus.is_connected();
    let database = state.store.ping().await;
    let ready = nats && database;
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": { "nats": nats, "database": database },
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(state: web::Data<HttpState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
