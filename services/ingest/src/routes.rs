//! The routes of ingest.

use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, web};

use crate::startup::State;
use crate::webhook;

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/webhooks/chatra/{integration_id}")
                .route(web::post().to(webhook::receive)),
        )
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// The process is up.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Webhooks can be accepted: NATS connected, streams provisioned, PostgreSQL answering.
async fn readyz(state: web::Data<State>) -> HttpResponse {
    let nats = state.bus.is_connected();
    let streams = state.streams_ready.load(Ordering::Acquire);
    let database = state.store.ping().await;
    let body = serde_json::json!({
        "status": if nats && streams && database { "ready" } else { "not_ready" },
        "checks": { "nats": nats, "streams": streams, "database": database },
    });
    if nats && streams && database {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(deskie_telemetry::metrics::render(&state.metrics.registry))
}
