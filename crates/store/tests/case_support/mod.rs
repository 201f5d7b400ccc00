//! Builders of case events and a case stream to append them to.
#![allow(dead_code)]

use deskie_proto::Timestamp;
use deskie_proto::events::{
    AgentMessageMirrored, Attachment, CaseOpened, CustomerMessageReceived, Envelope, Event,
    ReplyRequested,
};
use deskie_store::read_models::cases;
use deskie_store::{EventDraft, Store, StreamKey};
use uuid::Uuid;

pub const INTEGRATION: &str = "0191d2a4-6a7e-7c1b-9e2f-3b8f1c0d4e5a";
pub const GROUP: &str = "0191d2a4-6a7e-7c1b-9e2f-000000000001";

/// A case stream under test.
pub struct Case {
    pub id: Uuid,
    store: Store,
}

impl Case {
    pub fn new(store: &Store) -> Self {
        Self {
            id: Uuid::now_v7(),
            store: store.clone(),
        }
    }

    /// Appends `events` in one transaction (without projecting them); returns the envelopes.
    pub async fn append(&self, events: Vec<Event>) -> Vec<Envelope> {
        let mut tx = self
            .store
            .begin_stream(StreamKey::new("case", self.id))
            .await
            .expect("begin");
        let version = tx.version();
        let stored = tx.append(version, drafts(events)).await.expect("append");
        tx.commit().await.expect("commit");
        stored
    }

    /// Appends `events` and projects the case in the same transaction, as writers do.
    pub async fn record(&self, events: Vec<Event>) -> Vec<Envelope> {
        let mut tx = self
            .store
            .begin_stream(StreamKey::new("case", self.id))
            .await
            .expect("begin");
        let version = tx.version();
        let stored = tx.append(version, drafts(events)).await.expect("append");
        cases::catch_up(tx.connection(), self.id)
            .await
            .expect("catch up");
        tx.commit().await.expect("commit");
        stored
    }

    /// Runs `catch_up` in a transaction of its own, as the projector does.
    pub async fn catch_up(&self) -> u64 {
        let mut tx = self.store.pool().begin().await.expect("begin");
        let applied = cases::catch_up(&mut tx, self.id).await.expect("catch up");
        tx.commit().await.expect("commit");
        applied
    }

    pub async fn view(&self) -> cases::CaseView {
        cases::get(self.store.pool(), self.id)
            .await
            .expect("get")
            .expect("the case exists")
    }

    pub async fn messages(&self) -> Vec<cases::MessageView> {
        cases::messages(self.store.pool(), self.id)
            .await
            .expect("messages")
    }
}

/// The cause tests record under.
pub const TEST: deskie_store::Cause<'static> = deskie_store::Cause {
    causation_id: "test",
    correlation_id: "test",
    emitted_by: "test",
};

pub fn drafts(events: Vec<Event>) -> Vec<EventDraft> {
    TEST.drafts(events)
}

pub fn opened() -> Event {
    opened_in(GROUP)
}

pub fn opened_in(group: &str) -> Event {
    Event::CaseOpened(CaseOpened {
        integration_id: INTEGRATION.into(),
        channel: "live_chat".into(),
        chatra_client_id: "client-1".into(),
        chatra_chat_id: "chat-1".into(),
        chatra_group_id: Some("chatra-sales".into()),
        group_id: group.into(),
        panel: "informational".into(),
    })
}

pub fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

pub fn customer_says(id: Uuid, text: &str, seconds: i64) -> Event {
    Event::CustomerMessageReceived(CustomerMessageReceived {
        message_id: id.to_string(),
        chatra_message_id: format!("chatra-{text}"),
        text: text.into(),
        created_at: at(seconds),
        attachments: Vec::new(),
    })
}

pub fn agent_mirrored(id: Uuid, agent_id: Option<Uuid>) -> Event {
    Event::AgentMessageMirrored(AgentMessageMirrored {
        message_id: id.to_string(),
        chatra_message_id: "chatra-agent-msg".into(),
        chatra_agent_id: "chatra-agent-7".into(),
        agent_id: agent_id.map(|a| a.to_string()),
        agent_name: Some("Ann".into()),
        agent_email: None,
        text: "typed in Chatra".into(),
        created_at: at(1_700_000_100),
        attachments: vec![Attachment {
            filename: "scan.png".into(),
            size: Some(2048),
            is_image: true,
            url: Some("https://files.chatra.example/scan.png".into()),
            preview_url: None,
            width: Some(640),
            height: Some(480),
            ..Default::default()
        }],
    })
}

pub fn reply(id: Uuid, agent_id: Option<Uuid>, source: &str) -> Event {
    Event::ReplyRequested(ReplyRequested {
        message_id: id.to_string(),
        agent_id: agent_id.map(|a| a.to_string()),
        text: format!("reply from {source}"),
        source: source.into(),
        rule_id: None,
    })
}
