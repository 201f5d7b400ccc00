//! `GET /api/v1/stream`: live updates as server-sent events (see [`crate::live`]).

use std::convert::Infallible;

use actix_web::http::header::{CACHE_CONTROL, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use crate::ApiError;
use crate::auth::{Principal, token_sha256};
use crate::channels;
use crate::live::{Audience, CaseEventTail, LiveSession, TailError, TailStart};

/// The request header a reconnecting `EventSource` sends: the `id` of the last event it got.
pub const LAST_EVENT_ID: &str = "Last-Event-ID";

/// `GET /api/v1/stream`: the caller's live updates. 403 for an agent without `live_chat`
/// access, 400 for a `Last-Event-ID` that is no event id of this stream, 503 when NATS is
/// unavailable; then `200 text/event-stream` until the client leaves, the server stops, or
/// the agent is disabled.
pub async fn stream(
    state: web::Data<AppState>,
    principal: Principal,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !principal.may_access(channels::LIVE_CHAT) {
        return Err(ApiError::Forbidden("no access to Live Chat cases"));
    }
    let audience = match &principal {
        Principal::Admin => Audience::Admin,
        Principal::Agent(agent) => Audience::Agent {
            id: agent.id,
            token_sha256: token_sha256(request.headers()).ok_or(ApiError::Unauthorized)?,
        },
    };
    let start = resume_point(request.headers())?;
    // The consumer exists before the answer starts: whatever is relayed after the client
    // sees the 200 reaches it.
    let tail = CaseEventTail::open(&state.bus, start)
        .await
        .map_err(|error| match error {
            TailError::Bus(error) => ApiError::BusUnavailable(error),
            TailError::Ahead { last, .. } => ApiError::invalid(
                LAST_EVENT_ID,
                format!("{LAST_EVENT_ID} is beyond the last event id ({last})"),
            ),
        })?;
    let session = LiveSession::new(
        state.store.clone(),
        tail,
        audience,
        state.live_streams.clone(),
    );
    let body = futures::stream::unfold(session, |mut session| async move {
        let frame = session.next_frame().await?;
        Some((Ok::<_, Infallible>(frame), session))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((CACHE_CONTROL, "no-cache"))
        // Tells nginx-style proxies not to hold events back in a buffer.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// Where the stream starts: after the client's `Last-Event-ID` (a stream sequence this
/// endpoint sent), or with new events when the header is absent or empty.
fn resume_point(headers: &HeaderMap) -> Result<TailStart, ApiError> {
    let Some(value) = headers.get(LAST_EVENT_ID) else {
        return Ok(TailStart::New);
    };
    let bad = || {
        ApiError::invalid(
            LAST_EVENT_ID,
            format!("{LAST_EVENT_ID} must be the id of an event of this stream (a whole number)"),
        )
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text.is_empty() {
        return Ok(TailStart::New);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse().map(TailStart::After).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("last-event-id"),
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[test]
    fn last_event_id_is_a_sequence_or_absent() {
        assert_eq!(resume_point(&HeaderMap::new()).ok(), Some(TailStart::New));
        assert_eq!(resume_point(&with("  ")).ok(), Some(TailStart::New));
        assert_eq!(resume_point(&with("42")).ok(), Some(TailStart::After(42)));
        for bad in ["-1", "+3", "4.0", "abc", "99999999999999999999999"] {
            let Err(ApiError::Invalid { field, .. }) = resume_point(&with(bad)) else {
                panic!("{bad} accepted");
            };
            assert_eq!(field, LAST_EVENT_ID);
        }
    }
}
