//! Cases for api tests, built the way routing builds them: case events appended to the
//! event store and projected with `cases::catch_up` in the same transaction.

use deskie_proto::Timestamp;
use deskie_proto::events::{
    AgentMessageMirrored, Attachment, CaseAssigned, CaseOpened, CaseStatusChanged,
    CustomerDataChanged, CustomerDetails, CustomerField, CustomerMessageReceived, Event,
    OptionalText,
};
use deskie_store::read_models::cases;
use deskie_store::{EventDraft, StreamKey};
use uuid::Uuid;

use super::TestApp;

/// The integration every test case comes through (it need not exist for the read model).
pub const INTEGRATION: &str = "0191d2a4-6a7e-7c1b-9e2f-3b8f1c0d4e5a";

impl TestApp {
    /// Appends `events` to case `id` as routing would, and projects them.
    pub async fn record_case(&self, id: Uuid, events: Vec<Event>) {
        let mut tx = self
            .store
            .begin_stream(StreamKey::new("case", id))
            .await
            .expect("begin");
        let drafts = events
            .into_iter()
            .map(|event| EventDraft {
                event,
                causation_id: "webhook-1".into(),
                correlation_id: "webhook-1".into(),
                emitted_by: "routing",
            })
            .collect();
        let version = tx.version();
        tx.append(version, drafts).await.expect("append");
        cases::catch_up(tx.connection(), id)
            .await
            .expect("catch up");
        tx.commit().await.expect("commit");
    }

    /// Opens a Live Chat case in `group` for Chatra chat `chat`; its id.
    pub async fn open_case(&self, group: Uuid, chat: &str) -> Uuid {
        let id = Uuid::now_v7();
        self.record_case(id, vec![opened(group, chat)]).await;
        id
    }

    /// Events of the case `id` in the store.
    pub async fn case_event_count(&self, id: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1")
            .bind(id)
            .fetch_one(self.store.pool())
            .await
            .expect("count")
    }
}

/// `CaseOpened` for a Live Chat chat.
pub fn opened(group: Uuid, chat: &str) -> Event {
    Event::CaseOpened(CaseOpened {
        integration_id: INTEGRATION.into(),
        channel: "live_chat".into(),
        chatra_client_id: format!("client-{chat}"),
        chatra_chat_id: chat.into(),
        chatra_group_id: None,
        group_id: group.to_string(),
        panel: "separate".into(),
    })
}

/// A protobuf timestamp.
pub fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// The visitor wrote `text` at `seconds`.
pub fn customer_says(text: &str, seconds: i64) -> Event {
    Event::CustomerMessageReceived(CustomerMessageReceived {
        message_id: Uuid::now_v7().to_string(),
        chatra_message_id: format!("chatra-{seconds}"),
        text: text.into(),
        created_at: at(seconds),
        attachments: Vec::new(),
    })
}

/// A Chatra agent (not linked to a Deskie agent) answered from Chatra's UI, with a file.
pub fn chatra_agent_says(text: &str, seconds: i64) -> Event {
    Event::AgentMessageMirrored(AgentMessageMirrored {
        message_id: Uuid::now_v7().to_string(),
        chatra_message_id: format!("chatra-{seconds}"),
        chatra_agent_id: "Zx8Cv2Bn4Mq6Lk1Jh".into(),
        agent_id: None,
        agent_name: Some("Julia".into()),
        agent_email: None,
        text: text.into(),
        created_at: at(seconds),
        attachments: vec![Attachment {
            filename: "label.pdf".into(),
            size: Some(2048),
            is_image: false,
            url: Some("https://files.chatra.example/label.pdf".into()),
            preview_url: None,
            width: None,
            height: None,
            ..Default::default()
        }],
    })
}

/// Chatra told us the visitor's name, a form field and some details (no email, no phone).
pub fn chatra_customer_data() -> Event {
    Event::CustomerDataChanged(CustomerDataChanged {
        name: Some(OptionalText {
            value: Some("Visitor Anna".into()),
        }),
        email: None,
        phone: None,
        fields: vec![CustomerField {
            key: "order".into(),
            value: "A-17".into(),
        }],
        fields_changed: true,
        details: Some(CustomerDetails {
            ip: Some("203.0.113.7".into()),
            browser: Some("Firefox 133".into()),
            os: None,
            language: Some("de".into()),
            location: None,
            last_visit: at(1_732_608_000),
        }),
        source: "chatra".into(),
        agent_id: None,
    })
}

/// The case's status changed from `from` to `to` by a rule or someone unknown.
pub fn status(from: &str, to: &str) -> Event {
    Event::CaseStatusChanged(CaseStatusChanged {
        from: from.into(),
        to: to.into(),
        by_agent_id: None,
        by_rule_id: None,
    })
}

/// The case was assigned to `agent`.
pub fn assigned(agent: Uuid) -> Event {
    Event::CaseAssigned(CaseAssigned {
        assignee_id: Some(agent.to_string()),
        by_agent_id: None,
        by_rule_id: None,
    })
}
