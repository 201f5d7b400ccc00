//! The projector against real PostgreSQL and NATS: case events appended to the event store
//! reach the case read model through the relay; redeliveries, gaps and poison are handled.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use deskie_bus::{Bus, Topology};
use deskie_projector::{Application, ProjectorConfig, ProjectorMetrics};
use deskie_proto::Message;
use deskie_proto::events::{Envelope, Event};
use deskie_store::Store;
use deskie_store::read_models::cases;
use deskie_store::relay::{Relay, RelayConfig};
use deskie_testkit::case_events::{customer_says, opened, status};
use deskie_testkit::{TestDb, TestNats, append_case};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const OUTCOMES: [&str; 5] = ["applied", "already_applied", "ignored", "retried", "poison"];

struct Harness {
    _db: TestDb,
    _nats: TestNats,
    store: Store,
    bus: Bus,
    metrics: ProjectorMetrics,
    port: u16,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Harness {
    /// A migrated database, a NATS prefix, the projector (with its HTTP port) and, when
    /// `relay` is set, the relay.
    async fn start(relay: bool) -> Self {
        let db = TestDb::create().await;
        let nats = TestNats::new();
        let store = Store::connect(db.url()).await.expect("connect");
        store.migrate().await.expect("migrate");
        let bus = Bus::connect(nats.url(), Topology::new(nats.prefix()), "projector-test")
            .await
            .expect("bus");
        let mut provisioned = false;
        for _ in 0..50 {
            if bus.provision().await.is_ok() {
                provisioned = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(provisioned, "cannot provision streams");
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        if relay {
            let relay = Relay::new(store.url(), bus.clone(), RelayConfig::default());
            tasks.push(tokio::spawn(relay.run(shutdown.clone())));
        }
        let config = ProjectorConfig {
            http_addr: "127.0.0.1:0".parse().ok(),
        };
        let app = Application::build(config, store.clone(), bus.clone())
            .await
            .expect("projector");
        let metrics = app.metrics().clone();
        let port = app.port().expect("http port");
        let token = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            app.run_until_stopped(token).await.expect("projector runs");
        }));
        Self {
            _db: db,
            _nats: nats,
            store,
            bus,
            metrics,
            port,
            shutdown,
            tasks,
        }
    }

    /// Appends `events` to case `id` without projecting them (the projector must).
    async fn append(&self, id: Uuid, events: Vec<Event>) -> Vec<Envelope> {
        append_case(&self.store, id, events).await
    }

    /// Waits until case `id` is projected at `version`.
    async fn projected(&self, id: Uuid, version: i64) -> cases::CaseView {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let view = cases::get(self.store.pool(), id).await.expect("get");
            match view {
                Some(view) if view.version >= version => return view,
                _ if Instant::now() > deadline => {
                    panic!("case {id} not projected at version {version}: {view:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }

    /// Deliveries the projector has settled, whatever the outcome.
    fn handled(&self) -> u64 {
        OUTCOMES.iter().map(|o| self.metrics.total(o)).sum()
    }

    async fn wait_handled(&self, at_least: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.handled() < at_least {
            assert!(
                Instant::now() < deadline,
                "handled {} of {at_least}",
                self.handled()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Publishes `payload` on the subject of `envelope` under a fresh `Nats-Msg-Id`.
    async fn publish_raw(&self, envelope: &Envelope, payload: Vec<u8>) {
        let subject = self.bus.topology().event_subject(
            "case",
            &envelope.stream_id,
            envelope.event.as_ref().map_or("unknown", |e| e.type_name()),
        );
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
        self.bus
            .jetstream()
            .publish_with_headers(subject, headers, payload.into())
            .await
            .expect("publish")
            .await
            .expect("puback");
    }

    async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("stops in time")
                .expect("task");
        }
    }
}

#[tokio::test]
async fn case_events_in_the_event_store_reach_the_read_model_through_the_relay() {
    let harness = Harness::start(true).await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    harness
        .append(a, vec![opened().into(), customer_says("hello").into()])
        .await;
    harness.append(b, vec![opened().into()]).await;
    harness
        .append(
            a,
            vec![
                customer_says("are you there?").into(),
                status("pending").from("open").into(),
            ],
        )
        .await;
    harness
        .append(
            b,
            vec![
                customer_says("hi").into(),
                status("closed").from("open").into(),
            ],
        )
        .await;

    let case_a = harness.projected(a, 4).await;
    assert_eq!(case_a.status, "pending");
    let texts: Vec<String> = cases::messages(harness.store.pool(), a)
        .await
        .expect("messages")
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["hello", "are you there?"]);
    assert_eq!(harness.projected(b, 3).await.status, "closed");

    // Every event was settled; those the first catch-up already covered count as such.
    harness.wait_handled(7).await;
    assert_eq!(
        harness.metrics.total("applied") + harness.metrics.total("already_applied"),
        7
    );
    assert_eq!(harness.metrics.total("poison"), 0);
    harness.stop().await;
}

#[tokio::test]
async fn a_burst_over_many_cases_catches_up_only_the_cases_behind() {
    let harness = Harness::start(true).await;
    let behind: Vec<Uuid> = (0..30).map(|_| Uuid::now_v7()).collect();
    let projected: Vec<Uuid> = (0..30).map(|_| Uuid::now_v7()).collect();
    for (b, p) in behind.iter().zip(&projected) {
        harness
            .append(*b, vec![opened().into(), customer_says("hello").into()])
            .await;
        deskie_testkit::record_case(
            &harness.store,
            *p,
            vec![opened().into(), customer_says("hi").into()],
        )
        .await;
    }
    for id in behind.iter().chain(&projected) {
        harness.projected(*id, 2).await;
    }
    harness.wait_handled(120).await;
    let (applied, already) = (
        harness.metrics.total("applied"),
        harness.metrics.total("already_applied"),
    );
    assert_eq!(applied + already, 120);
    // Each case behind is caught up by at least one of its events (both, when they came
    // in one batch); a case its writer projected never is.
    assert!((30..=60).contains(&applied), "applied {applied}");
    assert!(already >= 60, "already applied {already}");
    harness.stop().await;
}

#[tokio::test]
async fn a_redelivered_event_changes_nothing() {
    let harness = Harness::start(true).await;
    let id = Uuid::now_v7();
    let stored = harness
        .append(
            id,
            vec![
                opened().into(),
                customer_says("one").into(),
                status("closed").from("open").into(),
            ],
        )
        .await;
    harness.projected(id, 3).await;
    harness.wait_handled(3).await;
    let before = (
        harness.projected(id, 3).await,
        cases::messages(harness.store.pool(), id)
            .await
            .expect("messages"),
    );

    // The same envelopes again, as a republish under new message ids would deliver them.
    for envelope in &stored {
        harness
            .publish_raw(envelope, envelope.encode_to_vec())
            .await;
    }
    harness.wait_handled(6).await;
    assert_eq!(
        harness.metrics.total("already_applied") + harness.metrics.total("applied"),
        6
    );
    let after = (
        harness.projected(id, 3).await,
        cases::messages(harness.store.pool(), id)
            .await
            .expect("messages"),
    );
    assert_eq!(after, before);
    harness.stop().await;
}

#[tokio::test]
async fn an_event_after_a_gap_brings_the_missing_versions_from_the_event_store() {
    // No relay: only the last event reaches the bus, as if the others were still on their way.
    let harness = Harness::start(false).await;
    let id = Uuid::now_v7();
    let stored = harness
        .append(
            id,
            vec![
                opened().into(),
                customer_says("first").into(),
                customer_says("second").into(),
                status("pending").from("open").into(),
            ],
        )
        .await;
    let last = stored.last().expect("events");
    harness.publish_raw(last, last.encode_to_vec()).await;

    let view = harness.projected(id, 4).await;
    assert_eq!(view.status, "pending");
    assert_eq!(
        cases::messages(harness.store.pool(), id)
            .await
            .expect("messages")
            .len(),
        2
    );
    assert_eq!(harness.metrics.total("applied"), 1);
    harness.stop().await;
}

#[tokio::test]
async fn an_undecodable_event_is_dead_lettered_and_the_next_one_is_projected() {
    let harness = Harness::start(false).await;
    let id = Uuid::now_v7();
    let stored = harness.append(id, vec![opened().into()]).await;
    harness
        .publish_raw(&stored[0], b"\xff\xff not protobuf".to_vec())
        .await;
    harness
        .publish_raw(&stored[0], stored[0].encode_to_vec())
        .await;
    harness.projected(id, 1).await;
    harness.wait_handled(2).await;
    assert_eq!(harness.metrics.total("poison"), 1);

    let dead = deskie_testkit::read_stream(
        harness.bus.jetstream(),
        &harness.bus.topology().dead_letter_stream(),
        1,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        deskie_testkit::header(&dead[0], deskie_bus::dead_letter::headers::CONSUMER),
        harness.bus.topology().consumer_name("projector")
    );
    harness.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let harness = Harness::start(false).await;
    let base = format!("http://127.0.0.1:{}", harness.port);
    let http = reqwest::Client::new();
    for path in ["/healthz", "/readyz"] {
        let response = http.get(format!("{base}{path}")).send().await.expect(path);
        assert_eq!(response.status(), 200, "{path}");
    }
    let id = Uuid::now_v7();
    let stored = harness.append(id, vec![opened().into()]).await;
    harness
        .publish_raw(&stored[0], stored[0].encode_to_vec())
        .await;
    harness.projected(id, 1).await;
    harness.wait_handled(1).await;
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"projector_events_total{outcome="applied"} 1"#),
        "{metrics}"
    );
    harness.stop().await;
}
