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
pub const PUBLIC_KEY: &str = "pub";

pub struct Suite {
    pub api: String,
    /// Where the suite's services connect: for a binary run next to them.
    pub env: HashMap<&'static str, String>,
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

/// How a suite is started.
pub struct Options {
    /// `DESKIE_CHATRA_API_URL` (a Chatra stand-in's base URL; default: nothing listening).
    pub chatra_url: String,
    /// outbound inside the suite, tuned for tests; `None` leaves it out.
    pub outbound: Option<deskie_outbound::OutboundConfig>,
    /// How often agent-sync pings Chatra for an online agent (`None`: no agent-sync).
    pub ping_interval: Option<Duration>,
    /// Whether agent-sync fetches visitor cards (`GET /clients/{id}`). Off by default: a
    /// fetch would take a fault a test queued on the stand-in for a reply.
    pub visitors: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            chatra_url: "http://127.0.0.1:1/api".to_owned(),
            outbound: Some(test_outbound_config()),
            ping_interval: Some(Duration::from_millis(300)),
            visitors: false,
        }
    }
}

/// outbound as the tests run it: quick polls, short leases and deadlines.
pub fn test_outbound_config() -> deskie_outbound::OutboundConfig {
    deskie_outbound::OutboundConfig {
        lease: Duration::from_secs(2),
        unknown_deadline: Duration::from_secs(30),
        poll_interval: Duration::from_millis(100),
        // Nothing listens there: a test that expects Telegram messages points this at a
        // TelegramStandIn (the real Bot API is never called).
        telegram_api_url: "http://127.0.0.1:1".to_owned(),
        ..deskie_outbound::OutboundConfig::default()
    }
}

/// Starts every service, creates two groups and an integration mapping `chatra-sales`.
pub async fn start() -> Suite {
    start_with(Options::default()).await
}

/// [`start`] with a Chatra stand-in that accepts the suite's keys and echoes every message
/// it gets back to ingest after `echo_delay` (`None`: no echoes).
pub async fn start_with_chatra(
    mut options: Options,
    echo_delay: Option<Duration>,
) -> (Suite, deskie_testkit::ChatraStandIn) {
    let chatra = deskie_testkit::ChatraStandIn::start().await;
    chatra.accept_keys(PUBLIC_KEY, SECRET_KEY);
    options.chatra_url = chatra.base_url().to_owned();
    let suite = start_with(options).await;
    if let Some(delay) = echo_delay {
        chatra.send_webhooks_to(&suite.webhook_url, delay);
    }
    (suite, chatra)
}

/// Starts the suite as `options` say.
pub async fn start_with(options: Options) -> Suite {
    let db = TestDb::create().await;
    let nats = TestNats::new();
    let vars = deskie_testkit::suite_vars(&db, &nats, ADMIN, &options.chatra_url);
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");
    let env = vars.clone();
    let shutdown = CancellationToken::new();
    let agent_sync = options.ping_interval.map(|interval| {
        let mut config = deskie_agent_sync::AgentSyncConfig::from_settings(&settings)
            .expect("agent-sync settings");
        config.ping_interval = interval;
        if !options.visitors {
            config.visitors = None;
        }
        config
    });
    let suite_options = deskie::SuiteOptions {
        outbound: options.outbound,
        agent_sync,
        rules: true,
    };
    let running = deskie::start_suite_with(&settings, suite_options, shutdown.clone())
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
            "public_key": PUBLIC_KEY, "secret_key": SECRET_KEY, "default_group_id": default_group,
            "panel": "separate", "group_mappings": [{ "chatra_group_id": "chatra-sales", "group_id": sales_group }]
        }))
        .send()
        .await
        .expect("integration")
        .json()
        .await
        .expect("json");
    Suite {
        env,
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

    /// Outbound ledger rows that may still lead to a call
    /// ([`deskie_store::outbox::open_count`]).
    pub async fn open_outbox_rows(&self) -> i64 {
        deskie_store::outbox::open_count(self.store.pool())
            .await
            .expect("outbox")
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

    /// Opens the case of the pre-chat fixture (`CLIENT`, `CHAT`) and adds Julia, an agent
    /// with Live Chat access; returns the case, her id and her token.
    pub async fn case_and_agent(&self) -> (Uuid, String, String) {
        assert_eq!(
            self.webhook(fixture("chat-started-prechat-form.json"))
                .await,
            200
        );
        let case = self.case_id(CLIENT, CHAT);
        self.case_when(case, |c| c["id"].is_string()).await;
        let (agent_id, token) = self.agent("julia@example.com", &["live_chat"]).await;
        (case, agent_id, token)
    }

    /// Adds an agent; returns its id and token.
    pub async fn agent(&self, email: &str, channels: &[&str]) -> (String, String) {
        let created: Value = self
            .http
            .post(format!("{}/agents", self.api))
            .bearer_auth(ADMIN)
            .json(&json!({ "email": email, "name": email.split('@').next(), "channel_access": channels }))
            .send()
            .await
            .expect("agent")
            .json()
            .await
            .expect("json");
        let field = |k: &str| created[k].as_str().expect(k).to_owned();
        (field("id"), field("token"))
    }

    /// Posts a reply as the agent with `token`; the status and the answer.
    pub async fn reply(&self, token: &str, case: Uuid, text: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/cases/{case}/replies", self.api))
            .bearer_auth(token)
            .json(&json!({ "text": text }))
            .send()
            .await
            .expect("reply");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The message `id` of the case once its delivery is `delivery` (or whatever it is after 15 s).
    pub async fn message_when(&self, case: Uuid, id: &str, delivery: &str) -> Value {
        let ready = |c: &Value| {
            messages_of(c)
                .iter()
                .any(|m| m["id"] == id && m["delivery"] == delivery)
        };
        let case = self.case_when(case, ready).await;
        messages_of(&case)
            .into_iter()
            .find(|m| m["id"] == id)
            .unwrap_or(Value::Null)
    }

    /// Waits until routing has handled `count` webhooks in all (its inbox), up to 15 s.
    pub async fn routed(&self, count: i64) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let routed: i64 =
                sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = 'routing'")
                    .fetch_one(self.store.pool())
                    .await
                    .expect("inbox");
            if routed >= count || Instant::now() > deadline {
                return routed;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A barrier: sends a new customer message `text` (id `id`) in the test chat and waits
    /// until routing stored it and rules evaluated it (the rules cursor of the case reached
    /// its version). Routing takes a chat's webhooks in order and rules a case's triggers in
    /// order, so whatever was sent before has then been routed and evaluated: a check for
    /// "nothing more happened" after it cannot pass merely because it looked too early.
    pub async fn barrier(&self, case: Uuid, id: &str, text: &str) {
        let body = serde_json::json!({
            "eventName": "chatFragment",
            "client": { "id": CLIENT, "chatId": CHAT },
            "messages": [{ "id": id, "type": "client", "text": text }],
        });
        assert_eq!(
            self.webhook(body.to_string()).await,
            200,
            "barrier accepted"
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let version: Option<i64> = sqlx::query_scalar(
                "SELECT e.version FROM events e, case_messages m
                  WHERE m.case_id = $1 AND m.chatra_message_id = $2
                    AND e.stream_id = m.case_id AND e.event_type = 'customer_message_received'
                  ORDER BY e.version DESC LIMIT 1",
            )
            .bind(case)
            .bind(id)
            .fetch_optional(self.store.pool())
            .await
            .expect("barrier version");
            let evaluated: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM consumer_cursors WHERE consumer = 'rules' AND stream_id = $1",
            )
            .bind(case)
            .fetch_optional(self.store.pool())
            .await
            .expect("rules cursor");
            if let (Some(version), Some(evaluated)) = (version, evaluated)
                && evaluated >= version
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "barrier {id} not routed and evaluated in time"
            );
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
    deskie_testkit::chatra_fixture(name)
}

pub const CLIENT: &str = "k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s";
pub const CHAT: &str = "Q7wErT5yUi9oPa3Sd";

pub fn messages_of(case: &Value) -> Vec<Value> {
    case["messages"].as_array().cloned().unwrap_or_default()
}

/// The path of a workspace binary next to this test's executable (`target/<profile>/`),
/// built first when missing. Cargo puts a package's binary there when that package has
/// integration tests (as `deskie-outbound` does), so a workspace test run finds it built.
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = dir.join(name);
    if !path.exists() {
        let profile_release = dir.ends_with("release");
        let mut build = std::process::Command::new(env!("CARGO"));
        build.args(["build", "--bin", name, "-p", name]);
        if profile_release {
            build.arg("--release");
        }
        let status = build.status().expect("cargo build");
        assert!(status.success(), "building {name} failed");
    }
    path
}

/// The agent-online pings the Chatra stand-in received (on the default path).
pub fn pings(chatra: &deskie_testkit::ChatraStandIn) -> Vec<deskie_testkit::RecordedRequest> {
    chatra
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/api/agentOnlinePing")
        .collect()
}
