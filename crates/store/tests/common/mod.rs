//! Shared set-up for the store's integration tests.
#![allow(dead_code)]

use deskie_proto::events::{ChatEnded, Event, GroupCreated};
use deskie_store::{EventDraft, Store};
use deskie_testkit::TestDb;

/// A migrated store on a fresh database.
pub async fn store() -> (TestDb, Store) {
    let db = TestDb::create().await;
    let store = Store::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    (db, store)
}

/// A draft of a small event.
pub fn draft(n: usize) -> EventDraft {
    let event = if n.is_multiple_of(2) {
        Event::ChatEnded(ChatEnded {})
    } else {
        Event::GroupCreated(GroupCreated {
            name: format!("g{n}"),
        })
    };
    EventDraft {
        event,
        causation_id: format!("cause-{n}"),
        correlation_id: "corr".into(),
        emitted_by: "test",
    }
}

/// How many advisory locks of this database a transaction is waiting for.
pub async fn advisory_lock_waits(store: &Store) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks
          WHERE locktype = 'advisory' AND NOT granted
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(store.pool())
    .await
    .expect("pg_locks")
}
