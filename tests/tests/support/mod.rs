//! A whole deskie suite in this process, driven like its users drive it: webhooks into
//! ingest, the admin and agents through the API.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use deskie_config::Settings;
use deskie_testkit::{TestDb, TestNats};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const ADMIN: &str = "admin-token-for-the-e2e-suite";
pub const SECRET_KEY: &str = "chatra-secret-key-e2e-0123456789";

pub struct Suite {
    pub api: String,
    pub http: reqwest::Client,
    pub webhook_url: String,
    pub integration_id: Uuid,
    pub default_group: String,
    pub sales_group: String,
    pub store: deskie_store::Store,
    pub bus: deskie_bus::Bus,
    running: Option<deskie::RunningSuite>,
    shutdown: CancellationToken,
    _db: TestDb,
    _nats: TestNats,
}

impl Drop for Suite {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts every service, creates two groups and an integration mapping `chatra-sales`.
pub async fn start() -> Suite {
    let db = TestDb::create().await;
    let nats = TestNats::new();
    let ingest_port = free_port();
    let vars: HashMap<&str, String> = HashMap::from([
        ("DESKIE_DATABASE_URL", db.url().to_owned()),
        ("DESKIE_NATS_URL", nats.url().to_owned()),
        ("DESKIE_NATS_PREFIX", nats.prefix().to_owned()),
        ("DESKIE_INGEST_ADDR", format!("127.0.0.1:{ingest_port}")),
        ("DESKIE_API_ADDR", "127.0.0.1:0".to_owned()),
        (
            "DESKIE_PUBLIC_URL",
            format!("http://127.0.0.1:{ingest_port}"),
        ),
        ("DESKIE_ADMIN_TOKEN", ADMIN.to_owned()),
        ("DESKIE_ENCRYPTION_KEY", "ab".repeat(32)),
        ("DESKIE_CHATRA_API_URL", "http://127.0.0.1:1/api".to_owned()),
    ]);
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");
    let shutdown = CancellationToken::new();
    let running = deskie::start_suite(&settings, shutdown.clone())
        .await
        .expect("suite");
    let api = format!("http://127.0.0.1:{}/api/v1", running.api_port);
    let store = running.store.clone();
    let bus = running.bus.clone();
    let http = reqwest::Client::new();
    let group = |name: &str| {
        let (http, api) = (http.clone(), api.clone());
        let name = name.to_owned();
        async move {
            let created: Value = http
                .post(format!("{api}/groups"))
                .bearer_auth(ADMIN)
                .json(&json!({ "name": name }))
                .send()
                .await
                .expect("group")
                .json()
                .await
                .expect("json");
            created["id"].as_str().expect("id").to_owned()
        }
    };
    let default_group = group("Support").await;
    let sales_group = group("Sales").await;
    let integration: Value = http
        .post(format!("{api}/integrations/chatra"))
        .bearer_auth(ADMIN)
        .json(&json!({
            "public_key": "pub", "secret_key": SECRET_KEY, "default_group_id": default_group,
            "panel": "separate", "group_mappings": [{ "chatra_group_id": "chatra-sales", "group_id": sales_group }]
        }))
        .send()
        .await
        .expect("integration")
        .json()
        .await
        .expect("json");
    Suite {
        webhook_url: integration["webhook_url"]
            .as_str()
            .expect("webhook_url")
            .to_owned(),
        integration_id: integration["id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("uuid"),
        api,
        http,
        default_group,
        sales_group,
        store,
        bus,
        running: Some(running),
        shutdown,
        _db: db,
        _nats: nats,
    }
}

impl Suite {
    /// Stops every service and waits for them (a graceful stop must not hang).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            tokio::time::timeout(Duration::from_secs(15), running.wait())
                .await
                .expect("the suite stops within 15 s");
        }
    }

    /// Posts a webhook body to ingest; returns the status.
    pub async fn webhook(&self, body: impl Into<reqwest::Body>) -> u16 {
        self.http
            .post(&self.webhook_url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("webhook")
            .status()
            .as_u16()
    }

    pub fn case_id(&self, client: &str, chat: &str) -> Uuid {
        deskie_domain::case::case_id_for(self.integration_id, client, chat)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.api))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("get");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The case once `ready` holds for it (or the last answer after 15 s).
    pub async fn case_when(&self, id: Uuid, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, case) = self.get(&format!("/cases/{id}")).await;
            if (status == 200 && ready(&case)) || Instant::now() > deadline {
                return case;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Event types of the case, oldest first.
    pub async fn event_types(&self, id: Uuid) -> Vec<String> {
        let (_, events) = self.get(&format!("/cases/{id}/events")).await;
        events
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["type"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    deskie_testkit::chatra_fixture(env!("CARGO_MANIFEST_DIR"), name)
}

pub const CLIENT: &str = "k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s";
pub const CHAT: &str = "Q7wErT5yUi9oPa3Sd";

pub fn messages_of(case: &Value) -> Vec<Value> {
    case["messages"].as_array().cloned().unwrap_or_default()
}
