//! A running ingest against its own database and NATS prefix, and helpers to poke it.
#![allow(dead_code)]

use std::time::Duration;

use deskie_bus::{Bus, StreamLimits, Topology};
use deskie_ingest::{Application, IngestConfig};
use deskie_proto::events::{
    Event, IntegrationConnected, IntegrationDisconnected, IntegrationSettings,
};
use deskie_store::{Store, StreamKey};
use deskie_testkit::{TestDb, TestNats};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const TOKEN: &str = "s3cr3t-webhook-token-0123456789abcdef";

pub struct TestIngest {
    pub base: String,
    pub store: Store,
    pub bus: Bus,
    pub integration_id: Uuid,
    pub http: reqwest::Client,
    pub nats_url: String,
    shutdown: CancellationToken,
    _db: TestDb,
    _nats: TestNats,
}

impl Drop for TestIngest {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn() -> TestIngest {
    spawn_on(TestNats::new()).await
}

pub async fn spawn_on(nats: TestNats) -> TestIngest {
    let topology = Topology::new(nats.prefix());
    spawn_with(nats, topology).await
}

/// Ingest whose streams are provisioned with `limits` (e.g. a tiny webhook stream).
pub async fn spawn_with_limits(limits: StreamLimits) -> TestIngest {
    let nats = TestNats::new();
    let topology = Topology::new(nats.prefix()).with_limits(limits);
    spawn_with(nats, topology).await
}

async fn spawn_with(nats: TestNats, topology: Topology) -> TestIngest {
    let db = TestDb::create().await;
    let store = Store::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    let bus = Bus::connect(nats.url(), topology, "ingest-test")
        .await
        .expect("bus");
    let config = IngestConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        max_body_bytes: 1024 * 1024,
    };
    let app = Application::build(config, store.clone(), bus.clone())
        .await
        .expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let integration_id = connect_integration(&store, TOKEN).await;
    let ingest = TestIngest {
        base,
        store,
        bus,
        integration_id,
        http: reqwest::Client::new(),
        nats_url: nats.url().to_owned(),
        shutdown,
        _db: db,
        _nats: nats,
    };
    ingest.wait_ready().await;
    ingest
}

/// Connects an integration straight through the store, as the API would.
pub async fn connect_integration(store: &Store, token: &str) -> Uuid {
    let id = Uuid::new_v4();
    let settings = IntegrationSettings {
        public_key: "pub".into(),
        secret_key_encrypted: vec![1, 2, 3],
        default_group_id: Uuid::new_v4().to_string(),
        panel: "separate".into(),
        group_mappings: vec![],
        webhook_token_encrypted: vec![4, 5, 6],
        webhook_token_sha256: Sha256::digest(token.as_bytes()).to_vec(),
        ..Default::default()
    };
    append(
        store,
        id,
        Event::IntegrationConnected(IntegrationConnected {
            settings: Some(settings),
        }),
    )
    .await;
    id
}

pub async fn disconnect_integration(store: &Store, id: Uuid) {
    append(
        store,
        id,
        Event::IntegrationDisconnected(IntegrationDisconnected {}),
    )
    .await;
}

async fn append(store: &Store, id: Uuid, event: Event) {
    store
        .record_config_event(StreamKey::new("integration", id), event, "test", "test")
        .await
        .expect("append");
}

impl TestIngest {
    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    pub fn url(&self) -> String {
        format!(
            "{}/webhooks/chatra/{}?token={TOKEN}",
            self.base, self.integration_id
        )
    }

    pub async fn post(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(self.url())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn wait_ready(&self) {
        for _ in 0..100 {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("ingest never became ready");
    }

    /// Messages stored in the webhooks stream.
    pub async fn stored_webhooks(&self) -> u64 {
        let mut stream = self
            .bus
            .jetstream()
            .get_stream(self.bus.topology().webhooks_stream())
            .await
            .expect("stream");
        stream.info().await.expect("info").state.messages
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    deskie_testkit::chatra_fixture(name)
}
