//! A stand-in for Chatra's REST API that accepts exactly one pair of keys.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// A request the stand-in received: its path and its Authorization header.
pub type SeenRequest = (String, Option<String>);

type Seen = Arc<Mutex<Vec<SeenRequest>>>;

/// The keys the stand-in accepts.
pub const GOOD_PUBLIC_KEY: &str = "good-pub";
/// The keys the stand-in accepts.
pub const GOOD_SECRET_KEY: &str = "good-secret";

/// Answers 404 to `Chatra.Simple good-pub:good-secret`, 401 to anything else, after `delay`.
pub struct ChatraStandIn {
    /// Base URL (what `DESKIE_CHATRA_API_URL` would be).
    pub url: String,
    seen: Seen,
}

#[derive(Clone)]
struct StandInState {
    delay: Duration,
    seen: Seen,
}

async fn answer(request: HttpRequest, state: web::Data<StandInState>) -> HttpResponse {
    let authorization = request
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Ok(mut seen) = state.seen.lock() {
        seen.push((request.path().to_owned(), authorization.clone()));
    }
    tokio::time::sleep(state.delay).await;
    let good = format!("Chatra.Simple {GOOD_PUBLIC_KEY}:{GOOD_SECRET_KEY}");
    if authorization.as_deref() == Some(good.as_str()) {
        HttpResponse::NotFound().json(serde_json::json!({"error": "not found"}))
    } else {
        HttpResponse::Unauthorized().json(serde_json::json!({"error": "unauthorized"}))
    }
}

impl ChatraStandIn {
    /// Starts answering at once.
    pub fn start() -> Self {
        Self::start_with_delay(Duration::ZERO)
    }

    /// Starts answering each request after `delay`.
    pub fn start_with_delay(delay: Duration) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = web::Data::new(StandInState {
            delay,
            seen: Arc::clone(&seen),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .default_service(web::to(answer))
        })
        .listen(listener)
        .expect("listen")
        .workers(1)
        .disable_signals()
        .run();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/api"),
            seen,
        }
    }

    /// Every request received: (path, Authorization header).
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The URL of a port nothing listens on.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
