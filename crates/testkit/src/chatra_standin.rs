//! A local HTTP server that speaks Chatra's REST protocol as documented in
//! `chatra-api.md` §2–3, records every request and fails on demand.
//!
//! Routes (under `/api`, so [`ChatraStandIn::base_url`] is what `DESKIE_CHATRA_API_URL`
//! would be): `POST /messages/` (400 without an agent identity, §8.3), `PUT /clients/{id}`,
//! `GET /clients/{id}` (the card given to [`ChatraStandIn::set_visitor`], else 404), `POST` on
//! the agent-online path (default `/agentOnlinePing`, the same guess as
//! `deskie_chatra::DEFAULT_AGENT_ONLINE_PATH`).
//! Only `Authorization: Chatra.Simple {public}:{secret}` for keys given to
//! [`ChatraStandIn::accept_keys`] is let through; anything else gets 401.
//!
//! Like Chatra, it can post webhooks: once [`ChatraStandIn::send_webhooks_to`] names an
//! ingest URL, every message sent through it is echoed back as a `chatFragment` carrying the
//! `receivedFrom` tag, and [`ChatraStandIn::post_webhook`] posts any body there.

use std::collections::HashMap;
use std::sync::MutexGuard;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::standin::{self, Fault, RecordedRequest, Server, Traffic, answer_with_fault, lock};

#[derive(Default)]
struct State {
    keys: Vec<String>,
    traffic: Traffic,
    messages: HashMap<String, Value>,
    chat_ids: HashMap<String, String>,
    agent_online_path: String,
    webhook_url: Option<String>,
    echo_delay: Duration,
    visitors: HashMap<String, Value>,
}

impl AsMut<Traffic> for State {
    fn as_mut(&mut self) -> &mut Traffic {
        &mut self.traffic
    }
}

type Shared = standin::Shared<State>;

/// The stand-in; stops when [`ChatraStandIn::stop`] is called or the test's runtime ends.
pub struct ChatraStandIn {
    base_url: String,
    server: Server<State>,
}

impl ChatraStandIn {
    /// Starts on `127.0.0.1:0` with no accepted keys (every call gets 401 until
    /// [`accept_keys`](Self::accept_keys)).
    pub async fn start() -> Self {
        let state = State {
            agent_online_path: "/agentOnlinePing".into(),
            ..State::default()
        };
        let server = Server::start(state, answer);
        Self {
            base_url: format!("{}/api", server.origin()),
            server,
        }
    }

    /// The API base URL, e.g. `http://127.0.0.1:PORT/api`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Lets `Chatra.Simple {public}:{secret}` through.
    pub fn accept_keys(&self, public: &str, secret: &str) -> &Self {
        self.lock()
            .keys
            .push(format!("Chatra.Simple {public}:{secret}"));
        self
    }

    /// Answers agent-online pings on `path` (relative to the base URL) instead of `/agentOnlinePing`.
    pub fn set_agent_online_path(&self, path: &str) -> &Self {
        self.lock().agent_online_path = format!("/{}", path.trim_start_matches('/'));
        self
    }

    /// Answers `GET /clients/{client_id}` with `card` from now on.
    pub fn set_visitor(&self, client_id: &str, card: Value) -> &Self {
        self.lock().visitors.insert(client_id.to_owned(), card);
        self
    }

    /// Requests to `GET /clients/{client_id}` received so far (including refused ones).
    pub fn visitor_requests(&self, client_id: &str) -> Vec<RecordedRequest> {
        let path = format!("/api/clients/{client_id}");
        self.requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path == path)
            .collect()
    }

    /// Queues `fault` for the next request not already claimed by an earlier fault.
    pub fn fail_next(&self, fault: Fault) -> &Self {
        self.server.fail_next(fault);
        self
    }

    /// Uses `chat_id` as `client.chatId` in echo webhooks for `client_id`
    /// (default `chat-{client_id}`).
    pub fn chat_id_for(&self, client_id: &str, chat_id: &str) -> &Self {
        self.lock()
            .chat_ids
            .insert(client_id.to_owned(), chat_id.to_owned());
        self
    }

    /// Posts an echo of every message sent from now on to `webhook_url` (ingest's URL for
    /// the integration, token included), after `delay`, as Chatra does.
    pub fn send_webhooks_to(&self, webhook_url: &str, delay: Duration) -> &Self {
        let mut state = self.lock();
        state.webhook_url = Some(webhook_url.to_owned());
        state.echo_delay = delay;
        self
    }

    /// Posts `body` to the webhook URL given to [`send_webhooks_to`](Self::send_webhooks_to);
    /// returns ingest's status code.
    pub async fn post_webhook(&self, body: &Value) -> Option<u16> {
        let url = self.lock().webhook_url.clone()?;
        post_json(&url, body).await
    }

    /// Requests to `POST /messages/` received so far.
    pub fn sent_messages(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.trim_end_matches('/') == "/api/messages")
            .collect()
    }

    /// The ids of the messages it stored (sent through it, including those answered with an
    /// injected status after processing), oldest first: what Chatra would echo.
    pub fn stored_message_ids(&self) -> Vec<String> {
        let state = self.lock();
        let mut stored: Vec<(u64, String)> = state
            .messages
            .iter()
            .map(|(id, m)| (m["createdAt"].as_u64().unwrap_or(0), id.clone()))
            .collect();
        stored.sort();
        stored.into_iter().map(|(_, id)| id).collect()
    }

    /// Every request received so far, in arrival order (including refused ones).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// The `chatFragment` webhook Chatra would send for a message sent through the stand-in,
    /// carrying its `receivedFrom`; `None` for an id the stand-in never issued.
    pub fn echo_webhook_for(&self, message_id: &str) -> Option<Value> {
        echo_webhook(&self.lock(), message_id)
    }

    /// Stops the server; hanging requests are dropped.
    pub async fn stop(&self) {
        self.server.stop().await;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.server.lock()
    }
}

async fn post_json(url: &str, body: &Value) -> Option<u16> {
    let response = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .ok()?;
    Some(response.status().as_u16())
}

fn echo_webhook(state: &State, message_id: &str) -> Option<Value> {
    let message = state.messages.get(message_id)?;
    let client_id = message["clientId"].as_str().unwrap_or_default().to_owned();
    let chat_id = state
        .chat_ids
        .get(&client_id)
        .cloned()
        .unwrap_or_else(|| format!("chat-{client_id}"));
    Some(json!({
        "eventName": "chatFragment",
        "client": { "id": client_id, "chatId": chat_id },
        "agents": [ { "id": message["agentId"] } ],
        "messages": [ {
            "id": message["id"],
            "type": "agent",
            "text": message["text"],
            "agentId": message["agentId"],
            "agentName": message["agentName"],
            "receivedFrom": message["receivedFrom"],
            "createdAt": message["createdAt"],
        } ],
    }))
}

async fn answer(request: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let (body, fault) = lock(&state).traffic.arrive(&request, &body);
    answer_with_fault(fault, refuse, || process(&request, &body, &state)).await
}

/// A refusal as Chatra words it, with `Retry-After` when a wait is given.
fn refuse(code: u16, retry_after: Option<u64>) -> HttpResponse {
    let mut response = HttpResponse::build(standin::status(code));
    if let Some(secs) = retry_after {
        response.insert_header(("Retry-After", secs.to_string()));
    }
    response.json(json!({ "error": format!("injected {code}") }))
}

/// What Chatra does with a request, faults aside.
fn process(request: &HttpRequest, body: &Value, state: &Shared) -> HttpResponse {
    let authorization = request
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok());
    let authorized = authorization.is_some_and(|a| lock(state).keys.iter().any(|k| k == a));
    if !authorized {
        return HttpResponse::Unauthorized().json(json!({ "error": "unauthorized" }));
    }
    let path = request
        .path()
        .strip_prefix("/api")
        .unwrap_or(request.path());
    let method = request.method();
    let online_path = lock(state).agent_online_path.clone();
    if method == Method::POST && (path == "/messages/" || path == "/messages") {
        send_message(state, body)
    } else if method == Method::PUT && path.starts_with("/clients/") {
        let id = path.trim_start_matches("/clients/");
        let mut echo = body.clone();
        if let Value::Object(fields) = &mut echo {
            fields.insert("id".into(), Value::String(id.to_owned()));
        }
        HttpResponse::Ok().json(echo)
    } else if method == Method::GET && path.starts_with("/clients/") {
        let id = path.trim_start_matches("/clients/");
        match lock(state).visitors.get(id) {
            Some(card) => HttpResponse::Ok().json(card),
            None => HttpResponse::NotFound().json(json!({ "error": "no such client" })),
        }
    } else if method == Method::POST && path == online_path {
        HttpResponse::Ok().json(json!({ "ok": true }))
    } else {
        HttpResponse::NotFound().json(json!({ "error": "not found" }))
    }
}

fn send_message(state: &Shared, body: &Value) -> HttpResponse {
    let (Some(client_id), Some(text)) = (body["clientId"].as_str(), body["text"].as_str()) else {
        return HttpResponse::BadRequest()
            .json(json!({ "error": "clientId and text are required" }));
    };
    // An agent identity is required (`chatra-api.md` §8.3): an `agentId`, or all three of
    // `agentEmail`, `agentName` and `receivedFrom`.
    let by_email = ["agentEmail", "agentName", "receivedFrom"]
        .iter()
        .all(|k| body[*k].as_str().is_some_and(|v| !v.trim().is_empty()));
    if body["agentId"].as_str().is_none() && !by_email {
        return HttpResponse::BadRequest().json(json!({
            "error": "agent not found: send agentId, or agentEmail with agentName and receivedFrom"
        }));
    }
    let agent_email = body["agentEmail"].as_str().unwrap_or_default();
    let id = uuid::Uuid::new_v4().simple().to_string()[..17].to_owned();
    let agent_id = body["agentId"].as_str().map_or_else(
        || {
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, agent_email.as_bytes())
                .simple()
                .to_string()[..17]
                .to_owned()
        },
        str::to_owned,
    );
    let created_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let message = json!({
        "id": id,
        "clientId": client_id,
        "text": text,
        "agentId": agent_id,
        "agentName": body["agentName"],
        "receivedFrom": body["receivedFrom"],
        "type": "agent",
        "createdAt": created_at,
    });
    let echo = {
        let mut state = lock(state);
        state.messages.insert(id.clone(), message.clone());
        let echo = echo_webhook(&state, &id);
        state
            .webhook_url
            .clone()
            .zip(echo)
            .map(|(url, echo)| (url, echo, state.echo_delay))
    };
    if let Some((url, echo, delay)) = echo {
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // Chatra retries are unknown; one attempt is what the tests need.
            let _status = post_json(&url, &echo).await;
        });
    }
    HttpResponse::Ok().json(message)
}
