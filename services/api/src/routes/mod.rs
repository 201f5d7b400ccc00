//! HTTP routes: health and metrics, then `/api/v1` for the admin and agents.

pub mod agents;
mod body;
pub mod cases;
pub mod groups;
pub mod health;
pub mod integrations;
pub mod live;
pub mod rules;

use std::time::Duration;

use actix_web::error::JsonPayloadError;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use deskie_bus::Bus;
use deskie_config::Cipher;
use deskie_store::Store;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::ApiError;
use crate::auth::{admin_only, agent_only, authenticate};
use crate::idempotency::idempotent;
use crate::key_check::KeyCheckRequests;

/// The largest JSON body accepted (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What handlers share.
#[derive(Debug)]
pub struct AppState {
    /// The system of record.
    pub store: Store,
    /// Where live updates come from (the relayed case events).
    pub bus: Bus,
    /// Encrypts and decrypts secrets at rest.
    pub cipher: Cipher,
    /// Base of webhook URLs.
    pub public_url: String,
    /// Where connects and updates request a key check.
    pub key_checks: KeyCheckRequests,
    /// Cancelled when the server stops: every live-update stream ends then.
    pub live_streams: CancellationToken,
    /// How long answers to requests with an `Idempotency-Key` are replayed.
    pub idempotency_retention: Duration,
}

/// Mounts every route. `/api/v1` identifies the caller first ([`authenticate`]); the admin's
/// resources are wrapped in [`admin_only`]; the resources with a creating POST in
/// [`idempotent`], inside `admin_only` (the last `wrap` runs first), so an agent on an admin
/// resource is refused before its key is looked at.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(authenticate))
                .service(
                    web::resource("/groups")
                        .wrap(from_fn(idempotent))
                        .wrap(from_fn(admin_only))
                        .get(groups::list)
                        .post(groups::create),
                )
                .service(
                    web::resource("/groups/{id}")
                        .wrap(from_fn(admin_only))
                        .get(groups::get)
                        .patch(groups::rename),
                )
                .service(
                    web::resource("/integrations/chatra")
                        .wrap(from_fn(idempotent))
                        .wrap(from_fn(admin_only))
                        .get(integrations::list)
                        .post(integrations::connect),
                )
                .service(
                    web::resource("/integrations/chatra/{id}")
                        .wrap(from_fn(admin_only))
                        .get(integrations::get)
                        .patch(integrations::update)
                        .delete(integrations::disconnect),
                )
                .service(
                    web::resource("/agents")
                        .wrap(from_fn(idempotent))
                        .wrap(from_fn(admin_only))
                        .get(agents::list)
                        .post(agents::create),
                )
                .service(
                    web::resource("/agents/me/status")
                        .wrap(from_fn(agent_only))
                        .put(agents::set_my_status),
                )
                .service(
                    web::resource("/agents/{id}")
                        .wrap(from_fn(admin_only))
                        .get(agents::get)
                        .patch(agents::update),
                )
                .service(
                    web::resource("/agents/{id}/token")
                        .wrap(from_fn(idempotent))
                        .wrap(from_fn(admin_only))
                        .post(agents::rotate_token),
                )
                .service(
                    web::resource("/rules")
                        .wrap(from_fn(idempotent))
                        .wrap(from_fn(admin_only))
                        .get(rules::list)
                        .post(rules::create),
                )
                .service(
                    web::resource("/rules/{id}")
                        .wrap(from_fn(admin_only))
                        .get(rules::get)
                        .patch(rules::update)
                        .delete(rules::delete),
                )
                .service(
                    web::resource("/rules/{id}/dry-run")
                        .wrap(from_fn(admin_only))
                        .post(rules::dry_run),
                )
                .service(web::resource("/stream").get(live::stream))
                .service(web::resource("/cases").get(cases::list))
                .service(
                    web::resource("/cases/{id}")
                        .get(cases::get)
                        .patch(cases::change),
                )
                .service(web::resource("/cases/{id}/events").get(cases::events))
                .service(web::resource("/cases/{id}/customer").put(cases::edit_customer))
                .service(
                    web::resource("/cases/{id}/replies")
                        .wrap(from_fn(idempotent))
                        .post(cases::reply),
                ),
        );
}

/// JSON bodies: at most [`MAX_BODY_BYTES`], and every refusal in the api's error shape.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(json_error)
}

fn json_error(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let refusal = match &error {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::TooLarge { limit: *limit }
        }
        JsonPayloadError::ContentType => ApiError::invalid(
            "body",
            "the body must be JSON (Content-Type: application/json)",
        ),
        JsonPayloadError::Deserialize(e) => {
            ApiError::invalid("body", format!("the body is not valid JSON: {e}"))
        }
        other => ApiError::invalid("body", format!("the body cannot be read: {other}")),
    };
    refusal.into()
}

/// Unknown routes.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// An id from the path; anything that is not a UUID names no resource.
pub(crate) fn path_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}
