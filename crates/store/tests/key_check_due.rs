//! `integrations::due_for_key_check`: which integrations the api's key checker picks up.

mod common;

use chrono::{Duration, Utc};
use deskie_proto::Timestamp;
use deskie_proto::events::{
    Event, IntegrationConnected, IntegrationDisconnected, IntegrationKeysChecked,
    IntegrationSettings,
};
use deskie_store::read_models::integrations;
use deskie_store::{Store, StreamKey};
use uuid::Uuid;

async fn append(store: &Store, id: Uuid, event: Event) {
    store
        .record_config_event(StreamKey::new("integration", id), event, "test", "test")
        .await
        .expect("append");
}

async fn connected(store: &Store) -> Uuid {
    let id = Uuid::now_v7();
    let settings = IntegrationSettings {
        public_key: "pub".into(),
        secret_key_encrypted: vec![1, 2, 3],
        default_group_id: Uuid::new_v4().to_string(),
        panel: "separate".into(),
        group_mappings: vec![],
        webhook_token_encrypted: vec![4, 5, 6],
        webhook_token_sha256: vec![7; 32],
        ..Default::default()
    };
    append(
        store,
        id,
        Event::IntegrationConnected(IntegrationConnected {
            settings: Some(settings),
        }),
    )
    .await;
    id
}

async fn checked(store: &Store, id: Uuid, status: &str, minutes_ago: i64) {
    let at = Utc::now() - Duration::minutes(minutes_ago);
    append(
        store,
        id,
        Event::IntegrationKeysChecked(IntegrationKeysChecked {
            status: status.into(),
            checked_at: Some(Timestamp {
                seconds: at.timestamp(),
                nanos: 0,
            }),
            settings_version: 1,
            detail: None,
        }),
    )
    .await;
}

#[tokio::test]
async fn pending_and_stale_unreachable_integrations_are_due_and_nothing_else() {
    let (_db, store) = common::store().await;
    let pending = connected(&store).await;
    let stale_unreachable = connected(&store).await;
    checked(&store, stale_unreachable, "unreachable", 11).await;
    let fresh_unreachable = connected(&store).await;
    checked(&store, fresh_unreachable, "unreachable", 1).await;
    let ok = connected(&store).await;
    checked(&store, ok, "connected", 60).await;
    let refused = connected(&store).await;
    checked(&store, refused, "invalid_keys", 60).await;
    let gone = connected(&store).await;
    append(
        &store,
        gone,
        Event::IntegrationDisconnected(IntegrationDisconnected {}),
    )
    .await;

    let mut due =
        integrations::due_for_key_check(store.pool(), Utc::now() - Duration::minutes(10), 10)
            .await
            .expect("due");
    due.sort();
    let mut expected = vec![pending, stale_unreachable];
    expected.sort();
    assert_eq!(due, expected);

    let limited =
        integrations::due_for_key_check(store.pool(), Utc::now() - Duration::minutes(10), 1)
            .await
            .expect("due");
    assert_eq!(limited, vec![stale_unreachable], "longest waiting first");
}
