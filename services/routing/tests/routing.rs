//! Routing against real PostgreSQL and NATS: webhooks on the bus become case events.

use std::time::{Duration, Instant};

use bytes::Bytes;
use deskie_bus::Bus;
use deskie_domain::case::case_id_for;
use deskie_proto::Message;
use deskie_proto::events::Event;
use deskie_proto::webhooks::ChatraWebhookReceived;
use deskie_routing::RoutingConfig;
use deskie_store::startup::Backing;
use deskie_store::{Store, StreamKey};
use deskie_testkit::{TestDb, TestNats, connect_integration, integration_settings};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const CLIENT: &str = "k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s";
const CHAT: &str = "Q7wErT5yUi9oPa3Sd";

struct Harness {
    store: Store,
    bus: Bus,
    integration: Uuid,
    default_group: Uuid,
    shutdown: CancellationToken,
    _db: TestDb,
    _nats: TestNats,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn harness(instances: usize) -> Harness {
    let db = TestDb::create().await;
    let nats = TestNats::new();
    let Backing { store, bus, .. } =
        Backing::open(db.url(), nats.url(), nats.prefix(), "routing-test")
            .await
            .expect("store and bus");
    bus.provision().await.expect("provision");
    let integration = Uuid::new_v4();
    let default_group = Uuid::new_v4();
    connect_integration(&store, integration, integration_settings(default_group)).await;
    let shutdown = CancellationToken::new();
    for _ in 0..instances {
        let config = RoutingConfig {
            received_from: "deskie".into(),
        };
        tokio::spawn(deskie_routing::run(
            config,
            store.clone(),
            bus.clone(),
            shutdown.clone(),
        ));
    }
    Harness {
        store,
        bus,
        integration,
        default_group,
        shutdown,
        _db: db,
        _nats: nats,
    }
}

impl Harness {
    /// Publishes a webhook as ingest would; `msg_id` defaults to the body hash.
    async fn deliver(&self, body: &[u8], msg_id: Option<&str>) {
        let json: serde_json::Value = serde_json::from_slice(body).expect("json");
        let event_name = json["eventName"].as_str().unwrap_or_default().to_owned();
        let key = msg_id.map_or_else(|| hex(body), str::to_owned);
        let message = ChatraWebhookReceived {
            integration_id: self.integration.to_string(),
            event_name: event_name.clone(),
            body: body.to_vec(),
            received_at: None,
            dedupe_key: key.clone(),
            body_encoding: String::new(),
        };
        let subject = self
            .bus
            .topology()
            .webhook_subject(&self.integration.to_string(), &event_name);
        // As ingest does: the chat's lane (its case id) keeps its webhooks in order.
        let mut headers = async_nats::HeaderMap::new();
        let lane = case_id_for(
            self.integration,
            json["client"]["id"].as_str().unwrap_or_default(),
            json["client"]["chatId"].as_str().unwrap_or_default(),
        );
        headers.insert(deskie_bus::CHAT_LANE_HEADER, lane.to_string().as_str());
        self.bus
            .publish_durable(subject, &key, headers, Bytes::from(message.encode_to_vec()))
            .await
            .expect("publish");
    }

    fn case_id(&self) -> Uuid {
        case_id_for(self.integration, CLIENT, CHAT)
    }

    /// Waits (up to 10 s) until routing has handled every webhook the stream holds: its
    /// inbox has a row for each, written in the transaction that appended its events.
    async fn all_routed(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut stream = self
                .bus
                .jetstream()
                .get_stream(self.bus.topology().webhooks_stream())
                .await
                .expect("webhook stream");
            let stored = stream.info().await.expect("stream info").state.messages;
            let handled: i64 =
                sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = 'routing'")
                    .fetch_one(self.store.pool())
                    .await
                    .expect("inbox");
            if u64::try_from(handled).unwrap_or(0) >= stored {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "routing handled {handled} of {stored} webhooks"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Event types of the case once the stream has at least `count` events (or after 10 s).
    async fn case_events(&self, case_id: Uuid, count: usize) -> Vec<Event> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.store.load_stream(case_id).await.expect("load");
            if events.len() >= count || Instant::now() > deadline {
                // Every webhook handled: nothing more can land, so "no more than" is checked too.
                self.all_routed().await;
                return self
                    .store
                    .load_stream(case_id)
                    .await
                    .expect("load")
                    .into_iter()
                    .filter_map(|e| e.envelope.event)
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn hex(body: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(body);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::type_name).collect()
}

fn fixture(name: &str) -> Vec<u8> {
    deskie_testkit::chatra_fixture(name)
}

#[tokio::test]
async fn a_chat_becomes_one_case_with_every_message_once() {
    let h = harness(1).await;
    h.deliver(&fixture("chat-started-prechat-form.json"), None)
        .await;
    h.deliver(&fixture("chat-fragment-agent-from-chatra-ui.json"), None)
        .await;
    h.deliver(&fixture("chat-transcript.json"), None).await;
    let events = h.case_events(h.case_id(), 8).await;
    assert_eq!(
        types(&events),
        [
            "case_opened",
            "customer_data_changed",
            "customer_message_received",
            "agent_message_mirrored",
            "agent_message_mirrored",
            "customer_message_received",
            "customer_message_received",
            "chat_ended"
        ],
        "the transcript adds only the image message it was missing"
    );
    let Event::CaseOpened(opened) = &events[0] else {
        unreachable!()
    };
    assert_eq!(opened.group_id, h.default_group.to_string());
    assert_eq!(opened.panel, "informational");
}

#[tokio::test]
async fn the_same_webhook_redelivered_under_another_id_adds_nothing() {
    let h = harness(1).await;
    let body = fixture("chat-fragment-agent-from-chatra-ui.json");
    h.deliver(&body, Some("first")).await;
    h.deliver(&body, Some("second")).await;
    h.deliver(&body, Some("first")).await;
    let events = h.case_events(h.case_id(), 5).await;
    assert_eq!(types(&events).len(), 5, "{:?}", types(&events));
}

#[tokio::test]
async fn a_burst_of_first_messages_on_two_routing_instances_opens_one_case() {
    let h = harness(2).await;
    let bodies: Vec<Vec<u8>> = (0..5)
        .map(|n| {
            format!(
                r#"{{"eventName":"chatFragment","client":{{"id":"{CLIENT}","chatId":"{CHAT}"}},
                "messages":[{{"id":"burst-{n}","type":"client","text":"message {n}","createdAt":{}}}]}}"#,
                1_732_608_000_000u64 + n
            )
            .into_bytes()
        })
        .collect();
    futures::future::join_all(bodies.iter().map(|b| h.deliver(b, None))).await;
    let events = h.case_events(h.case_id(), 6).await;
    let opened = types(&events)
        .iter()
        .filter(|t| **t == "case_opened")
        .count();
    let messages = types(&events)
        .iter()
        .filter(|t| **t == "customer_message_received")
        .count();
    assert_eq!((opened, messages), (1, 5), "{:?}", types(&events));
}

#[tokio::test]
async fn a_mirrored_message_names_the_deskie_agent_once_the_chatra_agent_is_linked() {
    use deskie_proto::events::{AgentChatraLinked, AgentCreated};
    let h = harness(1).await;
    let ann = Uuid::now_v7();
    let agent = |event| {
        h.store
            .record_config_event(StreamKey::new("agent", ann), event, "test", "test")
    };
    agent(Event::AgentCreated(AgentCreated {
        email: "ann@example.com".into(),
        name: "Ann".into(),
        channel_access: vec!["live_chat".into()],
        token_sha256: vec![7; 32],
        group_ids: Vec::new(),
    }))
    .await
    .expect("agent");
    let typed = |n: u32| {
        format!(
            r#"{{"eventName":"chatFragment","client":{{"id":"{CLIENT}","chatId":"{CHAT}"}},
            "agents":[{{"id":"A1","email":"ann@example.com"}}],
            "messages":[{{"id":"typed-{n}","type":"agent","agentId":"A1","text":"typed {n}"}}]}}"#
        )
        .into_bytes()
    };
    h.deliver(&typed(1), None).await;
    h.case_events(h.case_id(), 2).await;
    agent(Event::AgentChatraLinked(AgentChatraLinked {
        integration_id: h.integration.to_string(),
        chatra_agent_id: "A1".into(),
        learnt_from: "mirrored_message".into(),
        case_id: h.case_id().to_string(),
    }))
    .await
    .expect("link");
    h.deliver(&typed(2), None).await;
    let events = h.case_events(h.case_id(), 3).await;
    let mirrored: Vec<(Option<String>, Option<String>)> = events
        .iter()
        .filter_map(|e| match e {
            Event::AgentMessageMirrored(m) => Some((m.agent_id.clone(), m.agent_email.clone())),
            _ => None,
        })
        .collect();
    let email = Some("ann@example.com".to_owned());
    assert_eq!(
        mirrored,
        [(None, email.clone()), (Some(ann.to_string()), email)],
        "the first message came before the link"
    );
    let messages = deskie_store::read_models::cases::messages(h.store.pool(), h.case_id())
        .await
        .expect("messages");
    assert_eq!(messages.last().and_then(|m| m.agent_id), Some(ann));
}
