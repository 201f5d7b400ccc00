//! agent-sync against real PostgreSQL and NATS, with the relay and a Chatra stand-in.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use deskie_agent_sync::{AgentSyncConfig, AgentSyncMetrics, VisitorFetchConfig};
use deskie_bus::Bus;
use deskie_config::Cipher;
use deskie_proto::events::{
    AgentCreated, AgentStatusChanged, ChatEnded, Envelope, Event, GroupMapping, IntegrationSettings,
};
use deskie_store::relay::{Relay, RelayConfig};
use deskie_store::startup::Backing;
use deskie_store::{Store, StreamKey};
use deskie_testkit::case_events::opened;
use deskie_testkit::{ChatraStandIn, RecordedRequest, TestDb, TestNats};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const PUBLIC_KEY: &str = "pub-key";
pub const SECRET_KEY: &str = "secret-key";
pub const CLIENT_ID: &str = "k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s";
/// The Chatra group the integration maps to [`Harness::mapped_group`].
pub const CHATRA_GROUP: &str = "chatra-sales";

pub struct Harness {
    pub store: Store,
    pub bus: Bus,
    pub chatra: ChatraStandIn,
    pub cipher: Cipher,
    pub integration: Uuid,
    /// The integration's default group (where [`Harness::open_case`] opens cases).
    pub default_group: Uuid,
    /// The Deskie group [`CHATRA_GROUP`] is mapped to.
    pub mapped_group: Uuid,
    pub metrics: AgentSyncMetrics,
    pub config: AgentSyncConfig,
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub port: u16,
    shutdown: CancellationToken,
    _db: TestDb,
    _nats: TestNats,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The relay, agent-sync pinging every `ping_interval` and serving its endpoints on a free
/// port, one connected integration; visitor cards are not fetched (so no `GET` takes a
/// fault queued for another call).
pub async fn harness(ping_interval: Duration) -> Harness {
    harness_with(ping_interval, None).await
}

/// [`harness`], fetching visitor cards with `visitors`.
pub async fn harness_with(
    ping_interval: Duration,
    visitors: Option<VisitorFetchConfig>,
) -> Harness {
    build(ping_interval, visitors, true).await
}

/// The database, the bus and the stand-in with one connected integration, but neither the
/// relay nor agent-sync running: the test hands events to the parts it starts itself.
pub async fn quiet_harness() -> Harness {
    build(Duration::from_secs(60), None, false).await
}

async fn build(
    ping_interval: Duration,
    visitors: Option<VisitorFetchConfig>,
    running: bool,
) -> Harness {
    let db = TestDb::create().await;
    let nats = TestNats::new();
    let Backing { store, bus, .. } =
        Backing::open(db.url(), nats.url(), nats.prefix(), "agent-sync-test")
            .await
            .expect("store and bus");
    bus.provision().await.expect("provision");
    let chatra = ChatraStandIn::start().await;
    chatra.accept_keys(PUBLIC_KEY, SECRET_KEY);
    let cipher = Cipher::from_key_bytes(&[7; 32]);
    let integration = Uuid::now_v7();
    let (default_group, mapped_group) = (Uuid::now_v7(), Uuid::now_v7());
    let settings = IntegrationSettings {
        public_key: PUBLIC_KEY.into(),
        secret_key_encrypted: cipher.encrypt(SECRET_KEY.as_bytes()),
        default_group_id: default_group.to_string(),
        panel: "separate".into(),
        group_mappings: vec![GroupMapping {
            chatra_group_id: CHATRA_GROUP.into(),
            group_id: mapped_group.to_string(),
        }],
        webhook_token_encrypted: vec![1],
        webhook_token_sha256: vec![2],
        ..Default::default()
    };
    deskie_testkit::connect_integration(&store, integration, settings).await;
    let config = AgentSyncConfig {
        chatra_api_url: chatra.base_url().to_owned(),
        agent_online_path: deskie_chatra::DEFAULT_AGENT_ONLINE_PATH.to_owned(),
        received_from: "deskie".into(),
        cipher: cipher.clone(),
        ping_interval,
        chatra_timeout: Duration::from_secs(3),
        chatra_idle_connection: None,
        visitors,
    };
    let metrics = AgentSyncMetrics::new().expect("metrics");
    let shutdown = CancellationToken::new();
    let mut port = 0;
    if running {
        let relay = Relay::new(store.url(), bus.clone(), RelayConfig::default());
        tokio::spawn(relay.run(shutdown.clone()));
        let (listener, bound) =
            deskie_telemetry::ops::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        port = bound;
        tokio::spawn(deskie_agent_sync::run_serving(
            config.clone(),
            store.clone(),
            bus.clone(),
            metrics.clone(),
            listener,
            shutdown.clone(),
        ));
    }
    Harness {
        store,
        bus,
        chatra,
        cipher,
        integration,
        default_group,
        mapped_group,
        metrics,
        config,
        port,
        shutdown,
        _db: db,
        _nats: nats,
    }
}

impl Harness {
    /// Appends `event` to agent `id`'s stream as the api would.
    pub async fn agent_event(&self, id: Uuid, event: Event) {
        self.store
            .record_config_event(StreamKey::new("agent", id), event, "test", "api")
            .await
            .expect("agent event");
    }

    /// A new agent with `channels`; offline.
    pub async fn agent(&self, email: &str, channels: &[&str]) -> Uuid {
        let id = Uuid::now_v7();
        self.agent_event(
            id,
            Event::AgentCreated(AgentCreated {
                email: email.into(),
                name: format!("Agent {email}"),
                channel_access: channels.iter().map(|c| (*c).to_owned()).collect(),
                token_sha256: id.as_bytes().repeat(2),
                group_ids: Vec::new(),
            }),
        )
        .await;
        id
    }

    /// The agent sets its status, as `PUT /api/v1/agents/me/status` does.
    pub async fn set_status(&self, id: Uuid, status: &str) {
        self.agent_event(
            id,
            Event::AgentStatusChanged(AgentStatusChanged {
                status: status.into(),
            }),
        )
        .await;
    }

    /// Opens a case for [`CLIENT_ID`] on the integration; its id.
    pub async fn open_case(&self) -> Uuid {
        self.open_case_in(None).await
    }

    /// Opens a case for [`CLIENT_ID`] in the default group, as a webhook carrying
    /// `chatra_group_id` (unmapped) would; its id.
    pub async fn open_case_in(&self, chatra_group_id: Option<&str>) -> Uuid {
        let case_id = Uuid::now_v7();
        let opened = opened()
            .integration(self.integration)
            .client(CLIENT_ID)
            .chatra_group(chatra_group_id)
            .in_group(self.default_group);
        self.case_events(case_id, vec![opened.into()]).await;
        case_id
    }

    /// Cancelled when the harness is dropped: for the parts a test starts itself.
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Appends case events and projects them, as a writer of case events does; the stored
    /// envelopes.
    pub async fn case_events(&self, case_id: Uuid, events: Vec<Event>) -> Vec<Envelope> {
        deskie_testkit::record_case(&self.store, case_id, events).await
    }

    /// A barrier: appends a `ChatEnded` (wanted by agent-sync, and a no-op without visitor
    /// fetching) and waits until agent-sync's cursor of the case reached it. agent-sync takes
    /// a case's events in version order, each in the transaction that moves the cursor, so
    /// every event appended before has been acted on then: a check for "nothing more
    /// happened" after it cannot pass merely because it looked too early.
    pub async fn barrier(&self, case_id: Uuid) {
        let stored = self
            .case_events(case_id, vec![Event::ChatEnded(ChatEnded::default())])
            .await;
        let version = i64::try_from(stored.last().expect("appended").version).expect("version");
        eventually("agent-sync to reach the barrier", || async {
            let cursor: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM consumer_cursors WHERE consumer = $1 AND stream_id = $2",
            )
            .bind(deskie_agent_sync::CASE_CONSUMER)
            .bind(case_id)
            .fetch_optional(self.store.pool())
            .await
            .expect("cursor");
            cursor.filter(|c| *c >= version).map(|_| ())
        })
        .await;
    }

    /// Requests Chatra received on `path` (under `/api`), oldest first.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.chatra
            .requests()
            .into_iter()
            .filter(|r| r.path == format!("/api{path}"))
            .collect()
    }

    /// Pings Chatra received for `email`.
    pub fn pings_for(&self, email: &str) -> Vec<RecordedRequest> {
        self.requests_to(deskie_chatra::DEFAULT_AGENT_ONLINE_PATH)
            .into_iter()
            .filter(|r| r.body["agentEmail"] == email)
            .collect()
    }

    /// Waits until `count()` reaches `at_least` (up to `wait`); its last value.
    pub async fn wait_for(
        &self,
        at_least: usize,
        wait: Duration,
        count: impl Fn() -> usize,
    ) -> usize {
        let deadline = Instant::now() + wait;
        loop {
            let n = count();
            if n >= at_least || Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `event_type`s of a stream, oldest first.
    pub async fn stream_types(&self, id: Uuid) -> Vec<String> {
        self.store
            .load_stream(id)
            .await
            .expect("load")
            .into_iter()
            .filter_map(|e| e.envelope.event.map(|ev| ev.type_name().to_owned()))
            .collect()
    }
}

pub use deskie_testkit::eventually;
