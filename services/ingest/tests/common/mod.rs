//! A running ingest against its own database and NATS prefix, and helpers to poke it.
#![allow(dead_code)]

use std::time::Duration;

use deskie_bus::{Bus, StreamLimits, Topology};
use deskie_ingest::{Application, IngestConfig};
use deskie_proto::events::{
    Event, IntegrationConnected, IntegrationDisconnected, IntegrationSettings, IntegrationUpdated,
};
use deskie_store::read_models::integrations;
use deskie_store::{Store, StreamKey};
use deskie_testkit::{FaultProxy, TestDb, TestNats};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const TOKEN: &str = "s3cr3t-webhook-token-0123456789abcdef";

pub struct TestIngest {
    pub base: String,
    /// The test's own store.
    pub store: Store,
    /// The store ingest was built with (its pool, apart from the test's).
    pub ingest_store: Store,
    pub bus: Bus,
    pub integration_id: Uuid,
    pub http: reqwest::Client,
    pub nats_url: String,
    shutdown: CancellationToken,
    pub db: TestDb,
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
    spawn_with(nats, topology, None).await
}

/// Ingest whose streams are provisioned with `limits` (e.g. a tiny webhook stream).
pub async fn spawn_with_limits(limits: StreamLimits) -> TestIngest {
    let nats = TestNats::new();
    let topology = Topology::new(nats.prefix()).with_limits(limits);
    spawn_with(nats, topology, None).await
}

/// Ingest whose PostgreSQL sessions all pass through a [`FaultProxy`] (the test's own
/// `store` does not), so a test can cut ingest off from the database.
pub async fn spawn_behind_pg_proxy() -> (TestIngest, FaultProxy) {
    let nats = TestNats::new();
    let topology = Topology::new(nats.prefix());
    let db = TestDb::create().await;
    let mut url = reqwest::Url::parse(db.url()).expect("database URL");
    let upstream = format!(
        "{}:{}",
        url.host_str().expect("database host"),
        url.port().unwrap_or(5432)
    );
    let proxy = FaultProxy::start(upstream.parse().expect("database address")).await;
    url.set_port(Some(proxy.port())).expect("port");
    let ingest = spawn_with(nats, topology, Some((db, url.to_string()))).await;
    (ingest, proxy)
}

/// `db`: a database (and the URL ingest reaches it by) instead of a fresh one.
async fn spawn_with(
    nats: TestNats,
    topology: Topology,
    db: Option<(TestDb, String)>,
) -> TestIngest {
    let (db, ingest_url) = match db {
        Some(given) => given,
        None => {
            let db = TestDb::create().await;
            let url = db.url().to_owned();
            (db, url)
        }
    };
    let store = Store::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    // Connected before ingest listens: its announcement is never heard, so a test counts
    // only the invalidations it causes.
    let integration_id = connect_integration(&store, TOKEN).await;
    let ingest_store = Store::connect(&ingest_url).await.expect("connect");
    let bus = Bus::connect(nats.url(), topology, "ingest-test")
        .await
        .expect("bus");
    let config = IngestConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        max_body_bytes: 1024 * 1024,
    };
    let app = Application::build(config, ingest_store.clone(), bus.clone())
        .await
        .expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let ingest = TestIngest {
        base,
        store,
        ingest_store,
        bus,
        integration_id,
        http: reqwest::Client::new(),
        nats_url: nats.url().to_owned(),
        shutdown,
        db,
        _nats: nats,
    };
    ingest.wait_ready().await;
    ingest
}

/// Connects an integration straight through the store, as the API would.
pub async fn connect_integration(store: &Store, token: &str) -> Uuid {
    let id = Uuid::new_v4();
    connect_integration_as(store, id, token).await;
    id
}

/// Connects integration `id` expecting `token`.
pub async fn connect_integration_as(store: &Store, id: Uuid, token: &str) {
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
}

/// Gives integration `id` a new webhook token, as the api's `PATCH … {rotate_webhook_token}`
/// does: its read-model settings with a new token, appended as `IntegrationUpdated` through
/// the same store path (`append_config_event`, which projects it in the same transaction).
pub async fn rotate_token(store: &Store, id: Uuid, token: &str) {
    let current = integrations::get(store.pool(), id)
        .await
        .expect("read")
        .expect("a connected integration");
    let settings = IntegrationSettings {
        public_key: current.public_key,
        secret_key_encrypted: current.secret_key_encrypted,
        default_group_id: current.default_group_id.to_string(),
        panel: current.panel,
        group_mappings: vec![],
        webhook_token_encrypted: vec![7, 8, 9],
        webhook_token_sha256: Sha256::digest(token.as_bytes()).to_vec(),
        sender_name: current.sender_name,
        sender_email: current.sender_email,
    };
    append(
        store,
        id,
        Event::IntegrationUpdated(IntegrationUpdated {
            settings: Some(settings),
        }),
    )
    .await;
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

    /// The value of a metric without labels, or of one series (`name{label="value"}`); 0 when
    /// not exported yet.
    pub async fn metric(&self, series: &str) -> u64 {
        let text = self.metrics().await;
        text.lines()
            .filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .find_map(|value| value.trim().parse::<f64>().ok())
            .map_or(0, |value| value as u64)
    }

    /// Lookups answered from the cache and from the database so far.
    pub async fn lookups(&self) -> (u64, u64) {
        let series = |source| format!(r#"ingest_credential_lookups_total{{source="{source}"}}"#);
        (
            self.metric(&series("cache")).await,
            self.metric(&series("database")).await,
        )
    }

    /// Waits until `series` reads `value`.
    pub async fn wait_metric(&self, series: &str, value: u64) {
        let what = format!("{series} to read {value}");
        deskie_testkit::eventually(&what, || async {
            (self.metric(series).await == value).then_some(())
        })
        .await;
    }

    /// Waits until ingest hears integration changes (its cache may serve), or until it
    /// does not.
    pub async fn wait_listening(&self, listening: bool) {
        self.wait_metric("ingest_credential_cache_listening", u64::from(listening))
            .await;
    }

    /// Posts webhooks to `integration_id` with `token` until one is answered `status`.
    pub async fn wait_answer(&self, integration_id: Uuid, token: &str, status: u16) {
        let what = format!("{integration_id} to answer {status}");
        deskie_testkit::eventually(&what, || async {
            (self.post_to(integration_id, token).await == status).then_some(())
        })
        .await;
    }

    pub fn url(&self) -> String {
        self.url_for(self.integration_id, TOKEN)
    }

    pub fn url_for(&self, integration_id: Uuid, token: &str) -> String {
        format!(
            "{}/webhooks/chatra/{integration_id}?token={token}",
            self.base
        )
    }

    /// Posts a webhook to `integration_id` with `token`; the status.
    pub async fn post_to(&self, integration_id: Uuid, token: &str) -> u16 {
        self.http
            .post(self.url_for(integration_id, token))
            .header("content-type", "application/json")
            .body(fixture("chat-transcript.json"))
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
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
