//! `POST /webhooks/chatra/{integration_id}`: from request to durable message.
//!
//! The order of the checks is the contract: token present, integration known, token right
//! (constant time), then content type and size, and only then is the body parsed.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use async_nats::HeaderMap as NatsHeaders;
use bytes::{Bytes, BytesMut};
use deskie_bus::BusError;
use deskie_domain::chatra::{
    ChatraEventKind, ParsedWebhook, WebhookParseError, parse_webhook, peek_webhook,
};
use deskie_proto::Message;
use deskie_proto::webhooks::ChatraWebhookReceived;
use futures::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::credentials::Lookup;
use crate::startup::State;

/// Header that may carry the token instead of the query string.
pub const TOKEN_HEADER: &str = "X-Deskie-Token";

/// Why a webhook was not accepted; each maps to one status code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebhookError {
    #[error("missing webhook token")]
    MissingToken,
    #[error("wrong webhook token")]
    WrongToken,
    #[error("unknown integration")]
    UnknownIntegration,
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("body could not be read: {0}")]
    BodyRead(String),
    #[error(transparent)]
    Malformed(#[from] WebhookParseError),
    #[error("the event bus is unavailable; retry later")]
    BusUnavailable(#[source] BusError),
    #[error("the webhook stream is full; retry later")]
    StreamFull(String),
    #[error("the integration store is unavailable; retry later")]
    StoreUnavailable,
}

impl WebhookError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::MissingToken | Self::WrongToken => "unauthorized",
            Self::UnknownIntegration => "unknown_integration",
            Self::UnsupportedMediaType | Self::BodyRead(_) | Self::Malformed(_) => "bad_request",
            Self::TooLarge(_) => "too_large",
            Self::BusUnavailable(_) | Self::StoreUnavailable => "unavailable",
            Self::StreamFull(_) => "stream_full",
        }
    }
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::WrongToken => StatusCode::UNAUTHORIZED,
            Self::UnknownIntegration => StatusCode::NOT_FOUND,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyRead(_) | Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::BusUnavailable(_) | Self::StoreUnavailable | Self::StreamFull(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Self::StreamFull(_) = self {
            // Room comes back as old webhooks expire or an operator raises the limit.
            response.insert_header((header::RETRY_AFTER, STREAM_FULL_RETRY_AFTER_SECS));
        } else if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        response.json(serde_json::json!({ "error": self.to_string() }))
    }
}

/// `Retry-After` of a 503 because the webhook stream is full.
const STREAM_FULL_RETRY_AFTER_SECS: &str = "30";

#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// Hex SHA-256 of `integration id ‖ 0x00 ‖ body`: the `Nats-Msg-Id` of a webhook, so the
/// same body redelivered for the same integration is stored once.
pub fn dedupe_key(integration_id: &Uuid, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(integration_id.as_bytes());
    hasher.update([0u8]);
    hasher.update(body);
    hex::encode(hasher.finalize())
}

pub(crate) async fn receive(
    state: web::Data<State>,
    path: web::Path<String>,
    query: web::Query<TokenQuery>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, WebhookError> {
    let result = accept(&state, &path, query.into_inner(), &request, payload).await;
    match &result {
        Ok((_, outcome)) => state.metrics.count(outcome),
        Err(error @ WebhookError::StreamFull(reason)) => {
            // Logged once per burst, not per webhook.
            state.metrics.count(error.outcome());
            state.full_burst.refused(reason);
            state.metrics.stream_full.set(1);
        }
        Err(error) => {
            state.metrics.count(error.outcome());
            if error.status_code().is_server_error() {
                tracing::warn!(%error, "webhook not accepted");
            } else {
                tracing::info!(%error, "webhook refused");
            }
        }
    }
    result.map(|(response, _)| response)
}

async fn accept(
    state: &State,
    integration: &str,
    query: TokenQuery,
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<(HttpResponse, &'static str), WebhookError> {
    let presented = query
        .token
        .or_else(|| header_text(request.headers(), TOKEN_HEADER))
        .ok_or(WebhookError::MissingToken)?;
    let integration_id: Uuid = integration
        .parse()
        .map_err(|_| WebhookError::UnknownIntegration)?;
    let credentials = match state.credentials.lookup(integration_id).await {
        Lookup::Known(credentials) => credentials,
        Lookup::Unknown => return Err(WebhookError::UnknownIntegration),
        Lookup::Unavailable => return Err(WebhookError::StoreUnavailable),
    };
    // Both sides are SHA-256 digests of equal length, compared in constant time.
    let presented_digest = Sha256::digest(presented.as_bytes());
    if !bool::from(presented_digest.as_slice().ct_eq(&credentials.token_sha256)) {
        return Err(WebhookError::WrongToken);
    }
    check_content_type(request.headers())?;
    let body = read_body(request.headers(), payload, state.max_body_bytes).await?;
    let kept = kept_as(integration_id, &body)?;
    let event_name = kept.event_name.as_str();
    let key = dedupe_key(&integration_id, &body);
    let (body_encoding, encoded_body) = deskie_proto::webhook_body::encode(&body);
    let message = ChatraWebhookReceived {
        integration_id: integration_id.to_string(),
        event_name: event_name.to_owned(),
        body: encoded_body,
        body_encoding: body_encoding.to_owned(),
        received_at: Some(deskie_proto::timestamp_from_millis(
            chrono::Utc::now().timestamp_millis(),
        )),
        dedupe_key: key.clone(),
    };
    let mut headers = NatsHeaders::new();
    deskie_telemetry::nats::inject_current_context(&mut headers);
    headers.insert(deskie_bus::CHAT_LANE_HEADER, kept.lane.to_string().as_str());
    let subject = state
        .bus
        .topology()
        .webhook_subject(&integration_id.to_string(), kept.subject_token);
    let started = Instant::now();
    let outcome = state
        .bus
        .publish_durable(subject, &key, headers, Bytes::from(message.encode_to_vec()))
        .await
        .map_err(|error| match error {
            BusError::StreamFull(reason) => WebhookError::StreamFull(reason),
            other => WebhookError::BusUnavailable(other),
        })?;
    if state.full_burst.is_full() {
        state.full_burst.stored();
        state.metrics.stream_full.set(0);
    }
    state
        .metrics
        .publish_seconds
        .observe(started.elapsed().as_secs_f64());
    tracing::info!(
        integration_id = %integration_id,
        event_name,
        messages = kept.messages,
        duplicate = outcome.duplicate,
        sequence = outcome.sequence,
        "webhook accepted"
    );
    let label = if outcome.duplicate {
        "duplicate"
    } else {
        kept.outcome
    };
    Ok((
        HttpResponse::Ok()
            .json(serde_json::json!({ "status": kept.status, "duplicate": outcome.duplicate })),
        label,
    ))
}

/// Subject token of a webhook whose `eventName` we do not route (the name itself may hold
/// anything; it travels in `ChatraWebhookReceived.event_name`).
pub const UNKNOWN_EVENT_TOKEN: &str = "unknown";

/// How a parsed body is kept in the webhook stream.
struct Kept {
    /// The last subject token: a known event name, or [`UNKNOWN_EVENT_TOKEN`].
    subject_token: &'static str,
    /// The `eventName` as sent (shortened when unknown).
    event_name: String,
    /// The lane routing keeps in order: the chat's case id, else the integration id.
    lane: Uuid,
    /// Messages carried, for the log.
    messages: usize,
    /// The answer's `status`.
    status: &'static str,
    /// The metric outcome.
    outcome: &'static str,
}

/// Whatever Chatra sends is kept, so nothing is lost to a shape we did not foresee: a body
/// that is no Chatra webhook at all (not JSON, not an object, no `eventName`) is refused
/// with 400; an `eventName` we do not know is kept and not routed (`"ignored"`); a known
/// event without its case key (`client.id`, `client.chatId`) is kept, and routing sets it
/// aside as a dead letter naming what is missing, to be redriven once the parser knows
/// the shape.
///
/// The usual webhook is read by [`peek_webhook`] (its event and case key, nothing else built);
/// anything else by the whole parse.
fn kept_as(integration_id: Uuid, body: &[u8]) -> Result<Kept, WebhookError> {
    if let Some(peeked) = peek_webhook(body) {
        return Ok(Kept {
            subject_token: peeked.kind.event_name(),
            event_name: peeked.kind.event_name().to_owned(),
            lane: deskie_domain::case::case_id_for(
                integration_id,
                &peeked.client_id,
                &peeked.chat_id,
            ),
            messages: peeked.messages,
            status: "accepted",
            outcome: "accepted",
        });
    }
    match parse_webhook(body) {
        Ok(ParsedWebhook::Known(webhook)) => Ok(Kept {
            subject_token: webhook.kind.event_name(),
            event_name: webhook.kind.event_name().to_owned(),
            // The chat's lane is its case id: routing keeps each chat's webhooks in order.
            lane: deskie_domain::case::case_id_for(
                integration_id,
                &webhook.client.id,
                &webhook.client.chat_id,
            ),
            messages: webhook.messages.len(),
            status: "accepted",
            outcome: "accepted",
        }),
        Ok(ParsedWebhook::UnknownEvent { event_name }) => {
            let event_name: String = event_name.chars().take(64).collect();
            tracing::warn!(%event_name, %integration_id, "webhook with an eventName we do not route; kept in the webhook stream");
            Ok(Kept {
                subject_token: UNKNOWN_EVENT_TOKEN,
                event_name,
                lane: integration_id,
                messages: 0,
                status: "ignored",
                outcome: "ignored",
            })
        }
        Err(WebhookParseError::MissingField(field)) => {
            let kind = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v["eventName"]
                        .as_str()
                        .and_then(ChatraEventKind::from_event_name)
                })
                .ok_or(WebhookError::Malformed(WebhookParseError::MissingField(
                    field,
                )))?;
            tracing::warn!(%integration_id, event_name = kind.event_name(), missing = field, "webhook without its case key; kept, routing sets it aside as a dead letter");
            Ok(Kept {
                subject_token: kind.event_name(),
                event_name: kind.event_name().to_owned(),
                lane: integration_id,
                messages: 0,
                status: "accepted",
                outcome: "unroutable",
            })
        }
        Err(error) => Err(error.into()),
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// No content type is tolerated (Chatra's is undocumented); any other than JSON is refused.
fn check_content_type(headers: &HeaderMap) -> Result<(), WebhookError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(WebhookError::UnsupportedMediaType)
    }
}

/// Reads the body, refusing it as soon as it is known to exceed `limit`: from
/// `Content-Length` before reading anything, else while streaming (chunked bodies).
async fn read_body(
    headers: &HeaderMap,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, WebhookError> {
    let declared =
        header_text(headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(WebhookError::TooLarge(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| WebhookError::BodyRead(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(WebhookError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
