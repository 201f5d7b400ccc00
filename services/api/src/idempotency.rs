//! `Idempotency-Key` on the creating POSTs: a retried request gets the first answer instead
//! of acting twice (the semantics of Stripe and of the IETF httpapi idempotency-key draft).
//!
//! [`idempotent`] wraps those resources. Without the header, or on another method, it does
//! nothing. With it, it reads the body (at most [`MAX_BODY_BYTES`]) and puts it back for the
//! handler, then claims the key in PostgreSQL ([`deskie_store::idempotency`]), so the first
//! request wins on any number of api instances:
//!
//! - the first request acts; its answer (status, headers, body) is stored with the body's
//!   SHA-256, unless it says "try again" ([`keeps`]);
//! - the same key and body again: the stored answer, byte for byte, plus
//!   `Idempotent-Replayed: true`; nothing acts;
//! - the same key with another body: 422; while the first is still running: 409.
//!
//! [`Pruner`] deletes answers older than the retention.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody, to_bytes_limited};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use deskie_store::Store;
use deskie_store::idempotency::{self, Claim, KeyScope, StoredAnswer};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::ApiError;
use crate::auth::Principal;
use crate::metrics::ApiMetrics;
use crate::routes::{AppState, MAX_BODY_BYTES};

/// The request header carrying the key.
pub const KEY_HEADER: &str = "Idempotency-Key";

/// The answer header marking a replayed answer.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// The longest key accepted, in characters.
pub const MAX_KEY_LEN: usize = 255;

/// What a 409 for a key in flight asks the client to wait, in seconds (`Retry-After`).
pub const RETRY_AFTER_SECS: &str = "1";

/// How long a claim is exclusive to the request holding it. A request lasts seconds at
/// most (the graceful stop gives it 10 s); a claim whose holder died (a crash mid-request)
/// is taken over by the same request after this.
pub const IN_FLIGHT_LEASE: Duration = Duration::from_secs(60);

/// The largest answer stored; the wrapped routes answer with a few KiB of JSON.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// How often [`prune_periodically`] deletes expired answers.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Headers of an answer that are not replayed: they describe the connection or the moment,
/// not the answer.
const UNREPLAYED_HEADERS: [header::HeaderName; 4] = [
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::DATE,
];

/// Middleware for the creating POSTs (see the module's doc). Runs after authentication
/// and [`crate::auth::admin_only`], before the handler.
pub async fn idempotent(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if request.method() != Method::POST {
        return Ok(next.call(request).await?.map_into_boxed_body());
    }
    let Some(key) = key_of(request.headers())? else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    let caller = match request.extensions().get::<Principal>() {
        Some(Principal::Admin) => "admin".to_owned(),
        Some(Principal::Agent(agent)) => format!("agent:{}", agent.id),
        None => return Err(ApiError::Unauthorized.into()),
    };
    let state = request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or(ApiError::Idempotency("idempotency keys are not set up"))?;
    let body = read_body(&mut request).await?;
    let request_sha256: [u8; 32] = Sha256::digest(&body).into();
    request.set_payload(Payload::from(body));
    let scope = KeyScope {
        caller,
        method: request.method().to_string(),
        path: request.path().to_owned(),
        key,
    };
    let claim = idempotency::claim(
        state.store.pool(),
        &scope,
        &request_sha256,
        IN_FLIGHT_LEASE,
        state.idempotency_retention,
    )
    .await
    .map_err(ApiError::from)?;
    let claim_id = match claim {
        Claim::Acquired(claim_id) => claim_id,
        Claim::Completed {
            request_sha256: first,
            answer,
        } => {
            if first != request_sha256 {
                return Err(ApiError::IdempotencyKeyReused.into());
            }
            let replay = replay(&state, &answer)?;
            return Ok(request.into_response(replay));
        }
        Claim::InFlight {
            request_sha256: first,
        } => {
            return Err(if first != request_sha256 {
                ApiError::IdempotencyKeyReused
            } else {
                ApiError::IdempotencyKeyInFlight
            }
            .into());
        }
    };
    let response = match next.call(request).await {
        Ok(response) => response,
        Err(error) => {
            release(&state.store, &scope, claim_id).await;
            return Err(error);
        }
    };
    let error = response
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>());
    if !keeps(response.status(), error) {
        release(&state.store, &scope, claim_id).await;
        return Ok(response.map_into_boxed_body());
    }
    record(&state, &scope, claim_id, response).await
}

/// The key of `headers`, if any; a key that is not 1–255 printable ASCII characters, or a
/// repeated header, is refused.
fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(KEY_HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::invalid(
            KEY_HEADER,
            "Idempotency-Key must be sent once",
        ));
    }
    let bytes = value.as_bytes();
    let printable = bytes.iter().all(|b| (0x20..=0x7e).contains(b));
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !printable {
        return Err(ApiError::invalid(
            KEY_HEADER,
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters"),
        ));
    }
    // Printable ASCII is UTF-8.
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The whole request body, refused past [`MAX_BODY_BYTES`] as the JSON extractor would.
async fn read_body(request: &mut ServiceRequest) -> Result<Bytes, ApiError> {
    let mut payload = request.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::invalid("body", format!("the body cannot be read: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::TooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Whether an answer is stored for replay. Not a 5xx (the request may not have acted; the
/// client retries with the same key and it acts then) nor a 409 for a concurrent write
/// ("changed concurrently, please retry"); every other answer, 4xx included, is.
pub fn keeps(status: StatusCode, error: Option<&ApiError>) -> bool {
    !status.is_server_error() && !matches!(error, Some(ApiError::Conflict(_)))
}

/// Collects the answer, stores it on the claimed row and passes it on.
async fn record(
    state: &AppState,
    scope: &KeyScope,
    claim_id: Uuid,
    response: ServiceResponse<impl MessageBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let (request, response) = response.into_parts();
    let (head, body) = response.into_parts();
    let Ok(Ok(body)) = to_bytes_limited(body, MAX_ANSWER_BYTES).await else {
        // The request acted, but its answer is lost: nothing can be replayed.
        tracing::error!(
            "the answer to a request with an Idempotency-Key is too large or unreadable"
        );
        release(&state.store, scope, claim_id).await;
        return Err(ApiError::Idempotency("the answer could not be recorded").into());
    };
    let answer = StoredAnswer {
        status: head.status().as_u16(),
        headers: replayable_headers(head.headers()),
        body_encrypted: state.cipher.encrypt(&body),
    };
    match idempotency::complete(state.store.pool(), scope, claim_id, &answer).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("an idempotency key's claim was taken over before its answer"),
        // The request acted: its answer still goes out. The row stays claimed until its lease
        // runs out; a retry meanwhile gets 409.
        Err(e) => tracing::error!(error = %e, "the answer to an Idempotency-Key was not stored"),
    }
    let response = head.set_body(body).map_into_boxed_body();
    Ok(ServiceResponse::new(request, response))
}

/// The headers of an answer worth replaying, in order.
fn replayable_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !UNREPLAYED_HEADERS.contains(name))
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
        .collect()
}

/// The stored answer again, marked as a replay.
fn replay(state: &AppState, answer: &StoredAnswer) -> Result<HttpResponse, ApiError> {
    let status = StatusCode::from_u16(answer.status)
        .map_err(|_| ApiError::Idempotency("the stored answer is unreadable"))?;
    let body = state.cipher.decrypt(&answer.body_encrypted)?;
    let mut replay = HttpResponse::build(status);
    for (name, value) in &answer.headers {
        replay.append_header((name.as_str(), value.as_str()));
    }
    replay.insert_header((REPLAYED_HEADER, "true"));
    Ok(replay.body(body))
}

/// Frees the key after an answer that is not kept. A failure only delays a retry: the row
/// stays claimed until its lease runs out.
async fn release(store: &Store, scope: &KeyScope, claim_id: Uuid) {
    if let Err(e) = idempotency::release(store.pool(), scope, claim_id).await {
        tracing::warn!(error = %e, "an Idempotency-Key could not be released");
    }
}

/// The api's periodic job deleting answers older than the retention.
#[derive(Debug)]
pub struct Pruner {
    /// Where the answers are.
    pub store: Store,
    /// How long an answer is kept.
    pub retention: Duration,
    /// Counts what is deleted.
    pub metrics: ApiMetrics,
}

impl Pruner {
    /// Prunes at start and then every [`PRUNE_INTERVAL`] until `stop`, counting the deleted
    /// answers in `api_idempotency_keys_pruned_total`. Every api instance prunes: deleting
    /// twice is harmless.
    pub async fn run(self, stop: CancellationToken) {
        let Self {
            store,
            retention,
            metrics,
        } = self;
        let mut ticks = tokio::time::interval(PRUNE_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            // A database that does not answer must not hold up the stop.
            let pruned = tokio::select! {
                () = stop.cancelled() => return,
                pruned = idempotency::prune(store.pool(), retention) => pruned,
            };
            match pruned {
                Ok(0) => {}
                Ok(pruned) => {
                    metrics.idempotency_keys_pruned(pruned);
                    tracing::info!(pruned, "expired idempotency keys pruned");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning idempotency keys failed; retried later")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            let value = HeaderValue::from_bytes(value).expect("a header value");
            headers.append(header::HeaderName::from_static("idempotency-key"), value);
        }
        headers
    }

    #[test]
    fn a_key_is_one_to_255_printable_ascii_characters() {
        assert!(matches!(key_of(&headers(&[])), Ok(None)));
        let ok = key_of(&headers(&[b"order 42/retry-1"])).ok().flatten();
        assert_eq!(ok.as_deref(), Some("order 42/retry-1"));
        let longest = "k".repeat(MAX_KEY_LEN);
        assert!(matches!(
            key_of(&headers(&[longest.as_bytes()])),
            Ok(Some(_))
        ));
        let too_long = "k".repeat(MAX_KEY_LEN + 1);
        for bad in [&b""[..], too_long.as_bytes(), "clé".as_bytes(), b"a\tb"] {
            let refused = key_of(&headers(&[bad]));
            assert!(
                matches!(&refused, Err(ApiError::Invalid { field, .. }) if field == KEY_HEADER),
                "{bad:?}"
            );
        }
        assert!(key_of(&headers(&[b"a", b"b"])).is_err());
    }

    #[test]
    fn server_errors_and_concurrent_write_conflicts_are_not_kept() {
        assert!(keeps(StatusCode::CREATED, None));
        assert!(keeps(StatusCode::ACCEPTED, None));
        assert!(keeps(
            StatusCode::BAD_REQUEST,
            Some(&ApiError::invalid("name", "name must not be empty"))
        ));
        assert!(keeps(StatusCode::NOT_FOUND, Some(&ApiError::NotFound)));
        assert!(keeps(
            StatusCode::CONFLICT,
            Some(&ApiError::WrongState("the agent is disabled"))
        ));
        assert!(!keeps(StatusCode::INTERNAL_SERVER_ERROR, None));
        assert!(!keeps(StatusCode::SERVICE_UNAVAILABLE, None));
        let conflict = ApiError::Conflict(deskie_store::StoreError::VersionConflict {
            stream_id: Uuid::nil(),
            expected: 1,
            actual: 2,
        });
        assert!(!keeps(StatusCode::CONFLICT, Some(&conflict)));
    }

    #[test]
    fn framing_headers_are_not_replayed() {
        let mut answer = HeaderMap::new();
        answer.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        answer.insert(
            header::LOCATION,
            HeaderValue::from_static("/api/v1/groups/1"),
        );
        answer.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        answer.insert(
            header::DATE,
            HeaderValue::from_static("Thu, 01 Jan 2026 00:00:00 GMT"),
        );
        let mut kept = replayable_headers(&answer);
        kept.sort();
        assert_eq!(
            kept,
            [
                ("content-type".to_owned(), "application/json".to_owned()),
                ("location".to_owned(), "/api/v1/groups/1".to_owned()),
            ]
        );
    }
}
