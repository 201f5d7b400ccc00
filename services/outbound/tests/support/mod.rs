//! outbound against real PostgreSQL and NATS, with the relay and Slack and Telegram
//! stand-ins; case events recorded through the case stream, as the rules service records them.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deskie_chatra::{ChatraClient, default_http_client};
use deskie_config::Cipher;
use deskie_outbound::{Application, OutboundConfig, RetryPolicy};
use deskie_proto::events::{Envelope, Event, NotificationRequested};
use deskie_store::relay::{Relay, RelayConfig};
use deskie_store::startup::Backing;
use deskie_store::{Cause, Store};
use deskie_testkit::case_events::opened;
use deskie_testkit::{SlackStandIn, TelegramStandIn, TestDb, TestNats};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const BOT_TOKEN: &str = "123456:bot-token-that-must-stay-secret";
pub const CHAT_ID: &str = "-100200300";
pub const HOOK: &str = "hook-secret-XXXX";

/// A ledger row as outbound left it.
#[derive(Debug)]
pub struct Row {
    pub status: String,
    pub payload: String,
    pub last_error: Option<String>,
    pub attempts: i32,
}

pub struct Harness {
    pub store: Store,
    pub slack: SlackStandIn,
    pub telegram: TelegramStandIn,
    pub cipher: Cipher,
    shutdown: CancellationToken,
    _db: TestDb,
    _nats: TestNats,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The relay and outbound (quick polls, retries 200 ms apart at first, for a minute), a
/// Telegram bot [`BOT_TOKEN`] that may write to [`CHAT_ID`].
pub async fn harness() -> Harness {
    harness_with(|_| {}).await
}

/// [`harness`], with outbound's configuration changed by `tune` first.
pub async fn harness_with(tune: impl FnOnce(&mut OutboundConfig)) -> Harness {
    let db = TestDb::create().await;
    let nats = TestNats::new();
    let Backing { store, bus, .. } =
        Backing::open(db.url(), nats.url(), nats.prefix(), "outbound-test")
            .await
            .expect("store and bus");
    bus.provision().await.expect("provision");
    let slack = SlackStandIn::start().await;
    let telegram = TelegramStandIn::start().await;
    telegram.accept_bot(BOT_TOKEN).add_chat(CHAT_ID);
    let cipher = Cipher::from_key_bytes(&[9; 32]);
    let mut config = OutboundConfig {
        http_addr: None,
        telegram_api_url: telegram.api_url().to_owned(),
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(100),
        notification_retry: RetryPolicy {
            window: Duration::from_secs(60),
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(1),
        },
        ..OutboundConfig::default()
    };
    tune(&mut config);
    let chatra = ChatraClient::new("http://127.0.0.1:1/api", default_http_client());
    let app = Application::build(config, store.clone(), bus.clone(), chatra, cipher.clone())
        .expect("outbound");
    let shutdown = CancellationToken::new();
    tokio::spawn(Relay::new(store.url(), bus, RelayConfig::default()).run(shutdown.clone()));
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    Harness {
        store,
        slack,
        telegram,
        cipher,
        shutdown,
        _db: db,
        _nats: nats,
    }
}

impl Harness {
    /// A new case whose rule asks for `notifications`, recorded as the rules service records
    /// them (through the case stream, destination encrypted); its id.
    pub async fn case_with(&self, notifications: Vec<NotificationRequested>) -> Uuid {
        let case_id = Uuid::now_v7();
        let events = std::iter::once(opened().into())
            .chain(notifications.into_iter().map(Event::NotificationRequested))
            .collect();
        let rules = Cause::new_chain("test", "rules");
        deskie_testkit::record_case_as(&self.store, case_id, &rules, events).await;
        case_id
    }

    /// A Slack notification to the stand-in's webhook `hook`.
    pub fn slack_notification(&self, hook: &str, text: &str) -> NotificationRequested {
        NotificationRequested {
            notification_id: Uuid::now_v7().to_string(),
            kind: "slack".into(),
            text: text.into(),
            destination_secret: self.cipher.encrypt(self.slack.webhook_url(hook).as_bytes()),
            telegram_chat_id: None,
            sound: None,
            rule_id: Some("rule-1".into()),
        }
    }

    /// A Telegram notification from bot `token` to `chat_id`.
    pub fn telegram_notification(
        &self,
        token: &str,
        chat_id: &str,
        text: &str,
    ) -> NotificationRequested {
        NotificationRequested {
            notification_id: Uuid::now_v7().to_string(),
            kind: "telegram".into(),
            text: text.into(),
            destination_secret: self.cipher.encrypt(token.as_bytes()),
            telegram_chat_id: Some(chat_id.into()),
            sound: None,
            rule_id: Some("rule-2".into()),
        }
    }

    /// The ledger row of `notification`.
    pub async fn row(&self, notification: &NotificationRequested) -> Option<Row> {
        let kind = match notification.kind.as_str() {
            "slack" => deskie_outbound::SLACK_NOTIFICATION,
            _ => deskie_outbound::TELEGRAM_NOTIFICATION,
        };
        let key = deskie_outbound::notification_intent_key(kind, &notification.notification_id);
        let row: Option<(String, String, Option<String>, i32)> = sqlx::query_as(
            "SELECT status, payload::text, last_error, attempts FROM outbox WHERE intent_key = $1",
        )
        .bind(key)
        .fetch_optional(self.store.pool())
        .await
        .expect("ledger");
        row.map(|(status, payload, last_error, attempts)| Row {
            status,
            payload,
            last_error,
            attempts,
        })
    }

    /// Ledger rows that may still lead to a call ([`deskie_store::outbox::open_count`]).
    pub async fn open_rows(&self) -> i64 {
        deskie_store::outbox::open_count(self.store.pool())
            .await
            .expect("ledger")
    }

    /// The case's events, oldest first, as the event store holds them.
    pub async fn case_events(&self, case_id: Uuid) -> Vec<Envelope> {
        self.store
            .load_stream(case_id)
            .await
            .expect("the case's stream")
            .into_iter()
            .map(|stored| stored.envelope)
            .collect()
    }

    /// The version of the case's read-model row (0 when there is none).
    pub async fn projected_version(&self, case_id: Uuid) -> i64 {
        sqlx::query_scalar("SELECT version FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_optional(self.store.pool())
            .await
            .expect("cases")
            .unwrap_or(0)
    }

    /// Waits until the row of `notification` is `status`; the row.
    pub async fn settled(&self, notification: &NotificationRequested, status: &str) -> Row {
        let what = format!("{} {status}", notification.notification_id);
        deskie_testkit::eventually(&what, || async {
            self.row(notification)
                .await
                .filter(|row| row.status == status)
        })
        .await
    }
}

/// Everything logged at any level on this thread while the guard lives.
pub struct CapturedLogs {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl CapturedLogs {
    /// Starts capturing (use with a current-thread runtime, so every task logs here).
    pub fn start() -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buffer);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Writer(Arc::clone(&writer)))
            .finish();
        Self {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        let bytes = self.buffer.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
