//! A case stream to append test events to, below the case stream's own path: the store's
//! tests check what a writer that bypassed it (or the projector after it) leaves. The
//! events come from [`deskie_testkit::case_events`].
#![allow(dead_code)]

use deskie_proto::events::{Envelope, Event};
use deskie_store::read_models::cases;
use deskie_store::{EventDraft, Store, StreamKey};
pub use deskie_testkit::TEST_CAUSE as TEST;
pub use deskie_testkit::case_events::*;
use uuid::Uuid;

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
        deskie_testkit::append_case(&self.store, self.id, events).await
    }

    /// Appends `events` and projects the case in the same transaction, the old way: no
    /// snapshot, no Chatra message ids (writers now go through `Store::open_case`).
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

pub fn drafts(events: Vec<Event>) -> Vec<EventDraft> {
    TEST.drafts(events)
}

/// The case opened the store's tests read back: from the Chatra group `chatra-sales`,
/// visitor `client-1`, shown in the `informational` panel.
pub fn opened() -> Event {
    opened_in(GROUP)
}

/// [`opened`] in `group`.
pub fn opened_in(group: Uuid) -> Event {
    deskie_testkit::case_events::opened()
        .in_group(group)
        .client("client-1")
        .chatra_group(Some("chatra-sales"))
        .panel("informational")
        .into()
}

/// The mirrored message the store's tests read back: Ann (`chatra-agent-7`), linked to
/// `agent_id`, with a 640 × 480 scan.
pub fn agent_mirrored(id: Uuid, agent_id: Option<Uuid>) -> Event {
    agent_says("typed in Chatra")
        .id(id)
        .chatra_id("chatra-agent-msg")
        .linked_to(agent_id)
        .named("Ann")
        .at(1_700_000_100)
        .attaching(image("scan.png", 640, 480))
        .into()
}

/// The version of the case's snapshot, `None` without one.
pub async fn snapshot_version(store: &Store, case_id: Uuid) -> Option<i64> {
    sqlx::query_scalar("SELECT version FROM case_snapshots WHERE case_id = $1")
        .bind(case_id)
        .fetch_optional(store.pool())
        .await
        .expect("snapshot")
}
