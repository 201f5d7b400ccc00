//! `/healthz`, `/readyz` and `/metrics` of outbound.

use actix_web::{HttpResponse, web};
use deskie_bus::Bus;
use deskie_store::Store;

use crate::OutboundMetrics;

/// What the endpoints read.
pub(crate) struct HttpState {
    pub bus: Bus,
    pub store: Store,
    pub metrics: OutboundMetrics,
}

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route(
            "/healthz",
            web::get()
                .to(|| async { HttpResponse::Ok().json(serde_json::json!({ "status": "ok" })) }),
        )
        .route("/readyz", web::get().to(readyz))
        .route(
            "/metrics",
            web::get().to(|state: web::Data<HttpState>| async move {
                HttpResponse::Ok()
                    .content_type("text/plain; version=0.0.4")
                    .body(state.metrics.render())
            }),
        );
}

/// Replies can be taken in and delivered: NATS connected and PostgreSQL answering.
async fn readyz(state: web::Data<HttpState>) -> HttpResponse {
    let nats = state.bus.is_connected();
    let database = state.store.ping().await;
    let body = serde_json::json!({
        "status": if nats && database { "ready" } else { "not_ready" },
        "checks": { "nats": nats, "database": database },
    });
    if nats && database {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
