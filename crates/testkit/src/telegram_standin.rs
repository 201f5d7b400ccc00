//! A local Telegram Bot API: `POST /bot{token}/sendMessage` with `{"chat_id", "text"}` for a
//! bot and chat it was told about is answered `{"ok": true, "result": {…}}`; an unknown token
//! gets 401 and an unknown chat 400 `chat not found`, in the Bot API's JSON. It records every
//! request and fails on demand (a 429 with `parameters.retry_after`, a 5xx, a hang).

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use std::collections::HashSet;

use crate::standin::{self, Fault, RecordedRequest, Server, Traffic, answer_with_fault, lock};

#[derive(Default)]
struct State {
    tokens: HashSet<String>,
    chats: HashSet<String>,
    traffic: Traffic,
    next_message_id: u64,
}

impl AsMut<Traffic> for State {
    fn as_mut(&mut self) -> &mut Traffic {
        &mut self.traffic
    }
}

type Shared = standin::Shared<State>;

/// The stand-in; stops when [`TelegramStandIn::stop`] is called or the test's runtime ends.
pub struct TelegramStandIn {
    server: Server<State>,
}

impl TelegramStandIn {
    /// Starts on `127.0.0.1:0` knowing no bot and no chat.
    pub async fn start() -> Self {
        Self {
            server: Server::start(State::default(), answer),
        }
    }

    /// What `DESKIE_TELEGRAM_API_URL` would be (`https://api.telegram.org` for the real one).
    pub fn api_url(&self) -> &str {
        self.server.origin()
    }

    /// Lets the bot with `token` send.
    pub fn accept_bot(&self, token: &str) -> &Self {
        self.server.lock().tokens.insert(token.to_owned());
        self
    }

    /// Makes `chat_id` (as sent: `-100…` or `@name`) a chat the bots may write to.
    pub fn add_chat(&self, chat_id: &str) -> &Self {
        self.server.lock().chats.insert(chat_id.to_owned());
        self
    }

    /// Queues `fault` for the next request not already claimed by an earlier fault;
    /// `Fault::Status(429, Some(n))` answers with `parameters.retry_after = n`.
    pub fn fail_next(&self, fault: Fault) -> &Self {
        self.server.fail_next(fault);
        self
    }

    /// Every request received so far, in arrival order (including refused ones). Their
    /// paths hold the bot token, as real Bot API URLs do.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Stops the server; hanging requests are dropped.
    pub async fn stop(&self) {
        self.server.stop().await;
    }
}

async fn answer(request: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let (body, fault) = lock(&state).traffic.arrive(&request, &body);
    answer_with_fault(fault, refuse, || process(&request, &body, &state)).await
}

/// A Bot API error: `{"ok": false, "error_code", "description"}`, with
/// `parameters.retry_after` on a 429.
fn refuse(code: u16, retry_after: Option<u64>) -> HttpResponse {
    let description = match code {
        429 => format!(
            "Too Many Requests: retry after {}",
            retry_after.unwrap_or(1)
        ),
        401 => "Unauthorized".to_owned(),
        404 => "Not Found".to_owned(),
        400 => "Bad Request: chat not found".to_owned(),
        _ => "Internal Server Error".to_owned(),
    };
    let mut error = json!({ "ok": false, "error_code": code, "description": description });
    if let Some(secs) = retry_after {
        error["parameters"] = json!({ "retry_after": secs });
    }
    HttpResponse::build(standin::status(code)).json(error)
}

/// What the Bot API does with `sendMessage`, faults aside.
fn process(request: &HttpRequest, body: &Value, state: &Shared) -> HttpResponse {
    let Some((token, method)) = request
        .path()
        .strip_prefix("/bot")
        .and_then(|rest| rest.split_once('/'))
    else {
        return refuse(404, None);
    };
    let mut state = lock(state);
    if !state.tokens.contains(token) {
        return refuse(401, None);
    }
    if request.method() != Method::POST || method != "sendMessage" {
        return refuse(404, None);
    }
    let chat_id = match &body["chat_id"] {
        Value::String(id) => id.clone(),
        Value::Number(id) => id.to_string(),
        _ => return bad_request("chat_id is empty"),
    };
    let Some(text) = body["text"].as_str().filter(|t| !t.trim().is_empty()) else {
        return bad_request("message text is empty");
    };
    if !state.chats.contains(&chat_id) {
        return refuse(400, None);
    }
    state.next_message_id += 1;
    HttpResponse::Ok().json(json!({
        "ok": true,
        "result": {
            "message_id": state.next_message_id,
            "chat": { "id": chat_id },
            "text": text,
        },
    }))
}

fn bad_request(why: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({
        "ok": false,
        "error_code": 400,
        "description": format!("Bad Request: {why}"),
    }))
}
