//! `read_models::integration_changes`: the projection announces a change of an integration's
//! credentials when, and only when, it commits.
//!
//! Negative checks need no waiting: notifications arrive in commit order, so a marker
//! notified after the write that must stay silent is the next thing heard if it did.

mod common;

use deskie_proto::Timestamp;
use deskie_proto::events::{
    Event, IntegrationConnected, IntegrationDisconnected, IntegrationKeysChecked,
    IntegrationSettings, IntegrationUpdated,
};
use deskie_store::read_models::integration_changes::{CHANNEL, Heard, IntegrationChanges};
use deskie_store::{Store, StreamKey};
use uuid::Uuid;

const LISTENER: &str = "deskie-test-integration-changes";

fn settings(token_sha256: u8) -> IntegrationSettings {
    IntegrationSettings {
        public_key: "pub".into(),
        secret_key_encrypted: vec![1, 2, 3],
        default_group_id: Uuid::new_v4().to_string(),
        panel: "separate".into(),
        webhook_token_encrypted: vec![4, 5, 6],
        webhook_token_sha256: vec![token_sha256; 32],
        ..Default::default()
    }
}

async fn record(store: &Store, id: Uuid, event: Event) {
    store
        .record_config_event(StreamKey::new("integration", id), event, "test", "test")
        .await
        .expect("append");
}

/// Notifies a payload that is no integration id, as anyone may on the channel.
async fn marker(store: &Store) {
    sqlx::query("SELECT pg_notify($1, 'marker')")
        .bind(CHANNEL)
        .execute(store.pool())
        .await
        .expect("notify");
}

async fn listening(store: &Store) -> IntegrationChanges {
    IntegrationChanges::listen(store, LISTENER)
        .await
        .expect("listen")
}

/// The next thing heard, or `Err` for a session error.
async fn next(changes: &mut IntegrationChanges) -> Result<Heard, deskie_store::StoreError> {
    let next = tokio::time::timeout(deskie_testkit::LIVENESS_BOUND, changes.next());
    next.await.expect("an answer within the liveness bound")
}

async fn heard(changes: &mut IntegrationChanges) -> Heard {
    next(changes).await.expect("the session")
}

#[tokio::test]
async fn connect_update_and_disconnect_are_announced_when_they_commit() {
    let (_db, store) = common::store().await;
    let mut changes = listening(&store).await;
    let id = Uuid::now_v7();

    // Rolled back: nothing announced.
    let mut tx = store
        .begin_stream(StreamKey::new("integration", id))
        .await
        .expect("begin");
    let connected = Event::IntegrationConnected(IntegrationConnected {
        settings: Some(settings(1)),
    });
    tx.append_config_event(connected.clone(), "test", "test")
        .await
        .expect("append");
    drop(tx);
    marker(&store).await;
    assert_eq!(heard(&mut changes).await, Heard::Unreadable);

    record(&store, id, connected).await;
    assert_eq!(heard(&mut changes).await, Heard::Changed(id));
    let rotated = Event::IntegrationUpdated(IntegrationUpdated {
        settings: Some(settings(2)),
    });
    record(&store, id, rotated).await;
    assert_eq!(heard(&mut changes).await, Heard::Changed(id));

    // A key check leaves the credentials alone: not announced.
    let checked = Event::IntegrationKeysChecked(IntegrationKeysChecked {
        status: "connected".into(),
        checked_at: Some(Timestamp::default()),
        settings_version: 2,
        detail: None,
    });
    record(&store, id, checked).await;
    marker(&store).await;
    assert_eq!(heard(&mut changes).await, Heard::Unreadable);

    record(
        &store,
        id,
        Event::IntegrationDisconnected(IntegrationDisconnected {}),
    )
    .await;
    assert_eq!(heard(&mut changes).await, Heard::Changed(id));
}

#[tokio::test]
async fn a_listening_session_that_ends_is_reported_lost() {
    let (_db, store) = common::store().await;
    let mut changes = listening(&store).await;
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = $1",
    )
    .bind(LISTENER)
    .fetch_all(store.pool())
    .await
    .expect("terminate");
    assert_eq!(ended, vec![true], "one session listens, named as asked");
    let next = next(&mut changes).await;
    assert!(
        matches!(next, Ok(Heard::Lost) | Err(_)),
        "a lost session is no notification: {next:?}"
    );
}
