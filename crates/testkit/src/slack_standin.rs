//! A local Slack that takes incoming-webhook posts: `POST /services/{team}/{bot}/{secret}`
//! with `{"text": …}` is answered `200 ok` as Slack does; it records every request and fails
//! on demand (a 429 with `Retry-After`, a 5xx, a hang).

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use crate::standin::{self, Fault, RecordedRequest, Server, Traffic, answer_with_fault, lock};

#[derive(Default)]
struct State {
    traffic: Traffic,
}

impl AsMut<Traffic> for State {
    fn as_mut(&mut self) -> &mut Traffic {
        &mut self.traffic
    }
}

type Shared = standin::Shared<State>;

/// The stand-in; stops when [`SlackStandIn::stop`] is called or the test's runtime ends.
pub struct SlackStandIn {
    server: Server<State>,
}

impl SlackStandIn {
    /// Starts on `127.0.0.1:0`.
    pub async fn start() -> Self {
        Self {
            server: Server::start(State::default(), answer),
        }
    }

    /// An incoming-webhook URL on this stand-in, like Slack's
    /// `https://hooks.slack.com/services/T000/B000/XXXX`; `secret` is its last segment.
    pub fn webhook_url(&self, secret: &str) -> String {
        format!("{}/services/T000/B000/{secret}", self.server.origin())
    }

    /// Queues `fault` for the next request not already claimed by an earlier fault.
    pub fn fail_next(&self, fault: Fault) -> &Self {
        self.server.fail_next(fault);
        self
    }

    /// Every request received so far, in arrival order (including refused ones).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Requests to the webhook whose last segment is `secret`, in arrival order.
    pub fn requests_to(&self, secret: &str) -> Vec<RecordedRequest> {
        let path = format!("/services/T000/B000/{secret}");
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Stops the server; hanging requests are dropped.
    pub async fn stop(&self) {
        self.server.stop().await;
    }
}

async fn answer(request: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let (body, fault) = lock(&state).traffic.arrive(&request, &body);
    answer_with_fault(fault, refuse, || process(&request, &body)).await
}

/// What Slack answers to a refused post: a short plain-text reason.
fn refuse(code: u16, retry_after: Option<u64>) -> HttpResponse {
    let mut response = HttpResponse::build(standin::status(code));
    if let Some(secs) = retry_after {
        response.insert_header(("Retry-After", secs.to_string()));
    }
    let reason = match code {
        429 => "rate_limited",
        404 => "no_service",
        410 => "channel_is_archived",
        403 => "action_prohibited",
        400 => "invalid_payload",
        _ => "rollup_error",
    };
    response.content_type("text/plain").body(reason)
}

/// Slack's answers, as documented for incoming webhooks.
fn process(request: &HttpRequest, body: &Value) -> HttpResponse {
    let segments: Vec<&str> = request.path().split('/').skip(1).collect();
    let is_webhook = matches!(segments.as_slice(), ["services", t, b, s]
        if !t.is_empty() && !b.is_empty() && !s.is_empty());
    if request.method() != Method::POST || !is_webhook {
        return refuse(404, None);
    }
    match body["text"].as_str() {
        Some(text) if !text.is_empty() => HttpResponse::Ok().content_type("text/plain").body("ok"),
        _ => HttpResponse::BadRequest()
            .content_type("text/plain")
            .body("no_text"),
    }
}
