//! The event store, inbox and outbox against a real PostgreSQL.

mod common;

use deskie_store::{StoreError, StreamKey};
use uuid::Uuid;

#[tokio::test]
async fn appends_get_consecutive_versions_and_read_back_decoded() {
    let (_db, store) = common::store().await;
    let key = StreamKey::new("case", Uuid::new_v4());
    let mut tx = store.begin_stream(key.clone()).await.expect("begin");
    assert_eq!(tx.version(), 0);
    let stored = tx
        .append(0, vec![common::draft(1), common::draft(2)])
        .await
        .expect("append");
    assert_eq!(stored.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2]);
    tx.commit().await.expect("commit");

    let mut tx = store.begin_stream(key.clone()).await.expect("begin");
    assert_eq!(tx.version(), 2);
    tx.append(2, vec![common::draft(3)]).await.expect("append");
    tx.commit().await.expect("commit");

    let history = store.load_stream(key.stream_id).await.expect("load");
    assert_eq!(history.len(), 3);
    assert_eq!(history[2].envelope.version, 3);
    assert_eq!(history[2].envelope.causation_id, "cause-3");
    assert_eq!(history[0].envelope.stream_type, "case");
    assert!(history[0].envelope.occurred_at.is_some());
}

#[tokio::test]
async fn a_stale_expected_version_is_refused_and_writes_nothing() {
    let (_db, store) = common::store().await;
    let key = StreamKey::new("case", Uuid::new_v4());
    let mut tx = store.begin_stream(key.clone()).await.expect("begin");
    tx.append(0, vec![common::draft(1)]).await.expect("append");
    tx.commit().await.expect("commit");

    let mut tx = store.begin_stream(key.clone()).await.expect("begin");
    let refused = tx.append(0, vec![common::draft(2)]).await;
    assert!(matches!(
        refused,
        Err(StoreError::VersionConflict {
            expected: 0,
            actual: 1,
            ..
        })
    ));
    drop(tx);
    assert_eq!(
        store.load_stream(key.stream_id).await.expect("load").len(),
        1
    );
}

#[tokio::test]
async fn concurrent_writers_on_one_stream_are_serialised_without_gaps() {
    let (_db, store) = common::store().await;
    let key = StreamKey::new("case", Uuid::new_v4());
    let writers = (0..16).map(|n| {
        let store = store.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let mut tx = store.begin_stream(key).await.expect("begin");
            let version = tx.version();
            tx.append(version, vec![common::draft(n)])
                .await
                .expect("append under the lock never conflicts");
            tx.commit().await.expect("commit");
        })
    });
    for writer in writers {
        writer.await.expect("writer");
    }
    let versions: Vec<u64> = store
        .load_stream(key.stream_id)
        .await
        .expect("load")
        .iter()
        .map(|e| e.envelope.version)
        .collect();
    assert_eq!(versions, (1..=16).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_inbox_remembers_each_message_once_per_consumer() {
    let (_db, store) = common::store().await;
    let key = StreamKey::new("case", Uuid::new_v4());
    let mut tx = store.begin_stream(key.clone()).await.expect("begin");
    assert!(
        tx.record_processed("routing", "msg-1")
            .await
            .expect("inbox")
    );
    assert!(
        !tx.record_processed("routing", "msg-1")
            .await
            .expect("inbox")
    );
    assert!(tx.record_processed("rules", "msg-1").await.expect("inbox"));
    tx.commit().await.expect("commit");

    // A rolled-back transaction leaves no inbox record behind.
    let mut tx = store.begin_stream(key).await.expect("begin");
    assert!(
        tx.record_processed("routing", "msg-2")
            .await
            .expect("inbox")
    );
    drop(tx);
    let mut conn = store.pool().acquire().await.expect("conn");
    assert!(
        deskie_store::inbox::record_processed(&mut conn, "routing", "msg-2")
            .await
            .expect("inbox")
    );
}

#[tokio::test]
async fn an_event_larger_than_nats_carries_is_refused_and_nothing_is_written() {
    let (_db, store) = common::store().await;
    // A server with `max_payload` 8 KiB leaves 4 KiB for an envelope.
    let store = store.with_max_message_bytes(8 * 1024);
    assert_eq!(
        store.max_event_bytes(),
        8 * 1024 - deskie_store::event_limit::HEADER_ROOM
    );
    let key = StreamKey::new("case", Uuid::new_v4());
    let mut tx = store.begin_stream(key.clone()).await.expect("begin");
    let big = deskie_store::EventDraft {
        event: deskie_proto::events::Event::GroupCreated(deskie_proto::events::GroupCreated {
            name: "x".repeat(5000),
        }),
        causation_id: "cause".into(),
        correlation_id: "corr".into(),
        emitted_by: "test",
    };
    let refused = tx
        .append(0, vec![common::draft(1), big])
        .await
        .expect_err("refused");
    assert!(
        matches!(
            refused,
            StoreError::EventTooLarge { event_type: "group_created", size, limit: 4096, .. }
                if size > 5000
        ),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("could never be published"),
        "{refused}"
    );
    assert_eq!(tx.version(), 0);
    // The transaction is still usable, and the refused batch left nothing in it.
    tx.append(0, vec![common::draft(2)]).await.expect("append");
    tx.commit().await.expect("commit");
    let stored = store.load_stream(key.stream_id).await.expect("load");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].envelope.causation_id, "cause-2");
}
