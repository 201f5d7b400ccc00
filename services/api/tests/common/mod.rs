//! Shared set-up: the api on port 0 over a fresh database and its own NATS prefix, and a
//! Chatra stand-in.
#![allow(dead_code, unused_imports)]

mod cases;
mod chatra;

use std::time::{Duration, Instant};

use deskie_api::{ApiConfig, Application};
use deskie_bus::{Bus, Topology};
use deskie_config::Cipher;
use deskie_store::Store;
use deskie_store::relay::{Relay, RelayConfig};
use deskie_testkit::{TestDb, TestNats};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use cases::*;
pub use chatra::{ChatraStandIn, GOOD_PUBLIC_KEY, GOOD_SECRET_KEY, closed_port_url};

/// The admin token every test app is configured with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Where test apps say webhooks go.
pub const PUBLIC_URL: &str = "https://deskie.example";

/// A running api and what a test needs around it; stops the api when dropped.
pub struct TestApp {
    pub address: String,
    pub store: Store,
    pub bus: Bus,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    // Dropped last: the database and the streams go away after the app stopped using them.
    _db: Option<TestDb>,
    _nats: TestNats,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The api with a fresh database and `chatra_api_url` as Chatra.
pub async fn spawn_app_with_chatra(chatra_api_url: &str) -> TestApp {
    let db = TestDb::create().await;
    let store = Store::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    spawn(store, Some(db), chatra_api_url, TestNats::new()).await
}

/// The api with a fresh database and a Chatra stand-in nobody looks at.
pub async fn spawn_app() -> TestApp {
    spawn_app_with_chatra(&closed_port_url()).await
}

/// The api over a database that does not answer.
pub async fn spawn_app_without_database() -> TestApp {
    let url = format!(
        "postgres://postgres@{}/nowhere",
        closed_port_url().trim_start_matches("http://")
    );
    let store = Store::connect(&url).await.expect("connect is lazy");
    spawn(store, None, &closed_port_url(), TestNats::new()).await
}

/// The api with a fresh database and NATS nowhere to be found.
pub async fn spawn_app_without_nats() -> TestApp {
    let db = TestDb::create().await;
    let store = Store::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    let nowhere = closed_port_url().replace("http://", "nats://");
    spawn(store, Some(db), &closed_port_url(), TestNats::on(nowhere)).await
}

async fn spawn(store: Store, db: Option<TestDb>, chatra_api_url: &str, nats: TestNats) -> TestApp {
    let config = ApiConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        public_url: PUBLIC_URL.into(),
        admin_token: ADMIN_TOKEN.to_owned().into(),
        cipher: Cipher::from_key_bytes(&[42; 32]),
        chatra_api_url: chatra_api_url.to_owned(),
        chatra_key_check_path: None,
        extra_metrics: Default::default(),
        idempotency_retention: deskie_config::DEFAULT_IDEMPOTENCY_RETENTION,
    };
    let bus = Bus::connect(nats.url(), Topology::new(nats.prefix()), "api-test")
        .await
        .expect("NATS");
    let app = Application::build(config, store.clone(), bus.clone())
        .await
        .expect("build");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        address,
        store,
        bus,
        client: reqwest::Client::new(),
        shutdown,
        _db: db,
        _nats: nats,
    }
}

impl TestApp {
    /// Starts a relay from the app's database to its NATS prefix, as `deskie run` does,
    /// stopping with the app.
    pub fn start_relay(&self) {
        let relay = Relay::new(self.store.url(), self.bus.clone(), RelayConfig::default());
        tokio::spawn(relay.run(self.shutdown.clone()));
    }

    /// Stops the api (and the relay), as a shutdown signal would.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    /// A request to `path` with the admin token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// A request to `path` with `token` as the bearer.
    pub fn with_token(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token)
    }

    /// Adds an agent; the 201 body (with its `token`).
    pub async fn create_agent(&self, email: &str, channel_access: &[&str]) -> Value {
        let body = json!({"email": email, "name": email, "channel_access": channel_access});
        let response = self.post("/api/v1/agents", &body).await;
        assert_eq!(response.status(), 201);
        response.json().await.expect("json")
    }

    /// `GET path` without a token (health, readiness, metrics).
    pub async fn get_anonymously(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    /// `GET path` as the admin.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.admin(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request")
    }

    /// `POST path` with a JSON body as the admin.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.admin(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// `PATCH path` with a JSON body as the admin.
    pub async fn patch(&self, path: &str, body: &Value) -> reqwest::Response {
        self.admin(reqwest::Method::PATCH, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// `DELETE path` as the admin.
    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.admin(reqwest::Method::DELETE, path)
            .send()
            .await
            .expect("request")
    }

    /// Creates a group; its id.
    pub async fn create_group(&self, name: &str) -> Uuid {
        let response = self.post("/api/v1/groups", &json!({"name": name})).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        body["id"].as_str().expect("id").parse().expect("uuid")
    }

    /// Connects a Chatra integration with `body`; the 201 body.
    pub async fn connect_chatra(&self, body: &Value) -> Value {
        let response = self.post("/api/v1/integrations/chatra", body).await;
        assert_eq!(response.status(), 201);
        response.json().await.expect("json")
    }

    /// Rows in `table` (one of ours).
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(self.store.pool())
            .await
            .expect("count")
    }

    /// Events the admin's requests caused (all but the key checker's, which land whenever
    /// a background check finishes).
    pub async fn admin_events(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE event_type <> 'integration_keys_checked'",
        )
        .fetch_one(self.store.pool())
        .await
        .expect("count")
    }

    /// `event_type` of every event the admin's requests caused, in insertion order.
    pub async fn event_types(&self) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT event_type FROM events WHERE event_type <> 'integration_keys_checked' ORDER BY seq",
        )
            .fetch_all(self.store.pool())
            .await
            .expect("events")
    }

    /// Polls the integration until its status is `expected` (up to 10 s); its last body.
    pub async fn wait_for_status(&self, id: &str, expected: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let body: Value = self
                .get(&format!("/api/v1/integrations/chatra/{id}"))
                .await
                .json()
                .await
                .expect("json");
            if body["status"] == expected || Instant::now() > deadline {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A valid body for connecting an integration to `group`.
pub fn chatra_body(group: Uuid, public_key: &str, secret_key: &str) -> Value {
    json!({
        "public_key": public_key,
        "secret_key": secret_key,
        "default_group_id": group,
    })
}
