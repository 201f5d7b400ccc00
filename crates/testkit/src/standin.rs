//! What every stand-in shares: a one-worker actix server on a free loopback port, the record
//! of what it received, and the faults it can be told to inject.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;

/// A failure injected into the next request; queued faults are used one per request, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (and a wait of `secs` if given: `Retry-After`, or Telegram's
    /// `parameters.retry_after`) without processing.
    Status(u16, Option<u64>),
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Never answer (until the server stops).
    Hang,
    /// Read the request, then drop the connection without answering.
    CloseConnection,
    /// Process the request (a message is stored, and echoed by Chatra), then answer with this
    /// status: what a 500 after the message already went out looks like.
    AcceptThenStatus(u16),
    /// Process the request, then never answer: a timeout after the message went out.
    AcceptThenHang,
}

/// One request as a stand-in received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The full path, e.g. `/api/messages/`.
    pub path: String,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
    /// The body as JSON (`Null` when empty, a string when not JSON).
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// The fault it met, if any.
    pub fault: Option<Fault>,
}

impl RecordedRequest {
    /// Whether the peer did what was asked (no fault, or one that struck after the request
    /// was processed): a refused or unanswered request left no effect.
    pub fn took_effect(&self) -> bool {
        matches!(
            self.fault,
            None | Some(Fault::Delay(_) | Fault::AcceptThenStatus(_) | Fault::AcceptThenHang)
        )
    }

    /// Records `request` with its `body` as it arrived, and the fault it meets.
    pub(crate) fn of(request: &HttpRequest, body: &[u8], fault: Option<Fault>) -> Self {
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        };
        Self {
            method: request.method().to_string(),
            path: request.path().to_owned(),
            authorization: request
                .headers()
                .get("Authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body,
            at: Instant::now(),
            fault,
        }
    }
}

/// What a stand-in received and the faults it still has to inject.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    /// Faults for the next requests, in order.
    pub faults: VecDeque<Fault>,
    /// Every request so far, in arrival order.
    pub requests: Vec<RecordedRequest>,
}

impl Traffic {
    /// Records `request`; its body as JSON and the fault it is to meet, if any.
    pub(crate) fn arrive(&mut self, request: &HttpRequest, body: &[u8]) -> (Value, Option<Fault>) {
        let fault = self.faults.pop_front();
        let recorded = RecordedRequest::of(request, body, fault.clone());
        let body = recorded.body.clone();
        self.requests.push(recorded);
        (body, fault)
    }
}

/// A stand-in's state behind a lock that a panicking test thread cannot poison.
pub(crate) type Shared<S> = Arc<Mutex<S>>;

/// Locks `state`, ignoring poisoning: a panicking thread must not hide every later request.
pub(crate) fn lock<S>(state: &Shared<S>) -> MutexGuard<'_, S> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running stand-in: its state, its address, and the handle that stops it.
pub(crate) struct Server<S> {
    origin: String,
    state: Shared<S>,
    handle: ServerHandle,
}

impl<S: Send + 'static> Server<S> {
    /// Serves every request with `handler` on `127.0.0.1:0`, one worker, the state as app
    /// data (`web::Data<Shared<S>>`).
    pub(crate) fn start<F, Args>(state: S, handler: F) -> Self
    where
        F: actix_web::Handler<Args> + Send + Clone,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        let state = Arc::new(Mutex::new(state));
        let data = web::Data::new(Arc::clone(&state));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        let port = listener.local_addr().expect("stand-in address").port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .default_service(web::to(handler.clone()))
        })
        .listen(listener)
        .expect("listen")
        .workers(1)
        .disable_signals()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            origin: format!("http://127.0.0.1:{port}"),
            state,
            handle,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// The state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, S> {
        lock(&self.state)
    }

    /// Stops the server; hanging requests are dropped.
    pub(crate) async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

impl<S: AsMut<Traffic> + Send + 'static> Server<S> {
    /// Queues `fault` for the next request not already claimed by an earlier fault.
    pub(crate) fn fail_next(&self, fault: Fault) {
        self.lock().as_mut().faults.push_back(fault);
    }

    /// Every request received so far, in arrival order (including refused ones).
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().as_mut().requests.clone()
    }
}

/// Answers as `fault` says: `refuse(status, wait)` builds a refusal in the peer's own shape,
/// `process` does what the peer does with the request.
pub(crate) async fn answer_with_fault(
    fault: Option<Fault>,
    refuse: impl FnOnce(u16, Option<u64>) -> HttpResponse,
    process: impl FnOnce() -> HttpResponse,
) -> HttpResponse {
    match fault {
        None => process(),
        Some(Fault::Status(code, wait)) => refuse(code, wait),
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            process()
        }
        Some(Fault::Hang) => std::future::pending().await,
        // actix-web has no call to drop a connection, but a panicking handler does exactly
        // that: the worker's runtime catches the panic in the connection's task and closes
        // the socket with nothing written. The message lands in the test's captured stderr.
        Some(Fault::CloseConnection) => {
            panic!("stand-in: Fault::CloseConnection drops this connection on purpose")
        }
        Some(Fault::AcceptThenStatus(code)) => {
            let _processed = process();
            refuse(code, None)
        }
        Some(Fault::AcceptThenHang) => {
            let _processed = process();
            std::future::pending().await
        }
    }
}

/// `code` as a status (500 when it is not one).
pub(crate) fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
