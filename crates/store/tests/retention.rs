//! The retention job deletes exactly the old settled rows, in batches, and keeps pending,
//! unknown and recent ones; events and cursors are never touched.

mod common;

use std::time::Duration;

use deskie_store::retention::{self, Ages, RetentionMetrics};
use sqlx::PgPool;
use uuid::Uuid;

const DAY: Duration = Duration::from_secs(86_400);

async fn keys(pool: &PgPool, query: &'static str) -> Vec<String> {
    let mut keys: Vec<String> = sqlx::query_scalar(query)
        .fetch_all(pool)
        .await
        .expect("select");
    keys.sort();
    keys
}

#[tokio::test]
async fn inbox_rows_older_than_the_horizon_are_deleted_in_batches() {
    let (_db, store) = common::store().await;
    let pool = store.pool();
    // More than two batches of old rows, and a few recent ones.
    sqlx::query(
        "INSERT INTO inbox (consumer, message_id, processed_at)
         SELECT 'routing', 'old-' || n, now() - interval '15 days' FROM generate_series(1, 2500) n",
    )
    .execute(pool)
    .await
    .expect("old rows");
    sqlx::query(
        "INSERT INTO inbox (consumer, message_id, processed_at) VALUES
            ('routing', 'recent', now()), ('rules', 'thirteen-days', now() - interval '13 days')",
    )
    .execute(pool)
    .await
    .expect("recent rows");

    let deleted = retention::prune_inbox(pool, 14 * DAY).await.expect("prune");
    assert_eq!(deleted, 2500);
    assert_eq!(
        keys(pool, "SELECT message_id FROM inbox").await,
        ["recent", "thirteen-days"]
    );
    assert_eq!(
        retention::prune_inbox(pool, 14 * DAY).await.expect("again"),
        0
    );
}

#[tokio::test]
async fn only_settled_outbox_rows_past_the_retention_are_deleted() {
    let (_db, store) = common::store().await;
    let pool = store.pool();
    for (key, status, age_days) in [
        ("sent-old", "sent", 31),
        ("failed-old", "failed", 31),
        ("sent-recent", "sent", 29),
        ("unknown-old", "unknown", 31),
        ("pending-old", "pending", 31),
        ("queued-old", "queued", 31),
        ("sending-old", "sending", 31),
    ] {
        sqlx::query(
            "INSERT INTO outbox (intent_key, kind, payload, status, updated_at)
             VALUES ($1, 'chatra_reply', '{}', $2, now() - make_interval(days => $3))",
        )
        .bind(key)
        .bind(status)
        .bind(age_days)
        .execute(pool)
        .await
        .expect("insert");
    }
    let deleted = retention::prune_outbox(pool, 30 * DAY)
        .await
        .expect("prune");
    assert_eq!(deleted, 2);
    assert_eq!(
        keys(pool, "SELECT intent_key FROM outbox").await,
        [
            "pending-old",
            "queued-old",
            "sending-old",
            "sent-recent",
            "unknown-old"
        ]
    );
}

#[tokio::test]
async fn only_settled_visitor_fetches_past_the_retention_are_deleted() {
    let (_db, store) = common::store().await;
    let pool = store.pool();
    for (round, status, age_days) in [
        ("done-old", "done", 31),
        ("failed-old", "failed", 31),
        ("done-recent", "done", 1),
        ("pending-old", "pending", 31),
        ("fetching-old", "fetching", 31),
    ] {
        sqlx::query(
            "INSERT INTO agent_sync_visitor_fetches
                    (case_id, round, causation_id, correlation_id, status, updated_at)
             VALUES ($1, $2, 'c', 'c', $3, now() - make_interval(days => $4))",
        )
        .bind(Uuid::new_v4())
        .bind(round)
        .bind(status)
        .bind(age_days)
        .execute(pool)
        .await
        .expect("insert");
    }
    let deleted = retention::prune_visitor_fetches(pool, 30 * DAY)
        .await
        .expect("prune");
    assert_eq!(deleted, 2);
    assert_eq!(
        keys(pool, "SELECT round FROM agent_sync_visitor_fetches").await,
        ["done-recent", "fetching-old", "pending-old"]
    );
}

#[tokio::test]
async fn settled_client_updates_go_and_due_or_claimed_ones_stay() {
    let (_db, store) = common::store().await;
    let pool = store.pool();
    let mut expected = Vec::new();
    // (version sent up to, due up to, a live claim, days since last change, pruned)
    for (sent, due, claimed, age_days, pruned) in [
        (3, 3, false, 31, true),
        (3, 3, false, 1, false),
        (3, 5, false, 31, false),
        (3, 3, true, 31, false),
    ] {
        let case = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO agent_sync_client_updates (case_id, version, due_up_to, lease_until, updated_at)
             VALUES ($1, $2, $3, CASE WHEN $4 THEN now() + interval '1 minute' END,
                     now() - make_interval(days => $5))",
        )
        .bind(case)
        .bind(sent)
        .bind(due)
        .bind(claimed)
        .bind(age_days)
        .execute(pool)
        .await
        .expect("insert");
        if !pruned {
            expected.push(case.to_string());
        }
    }
    let deleted = retention::prune_client_updates(pool, 30 * DAY)
        .await
        .expect("prune");
    assert_eq!(deleted, 1);
    expected.sort();
    assert_eq!(
        keys(pool, "SELECT case_id::text FROM agent_sync_client_updates").await,
        expected,
        "only the settled, unclaimed, old row went"
    );
}

#[tokio::test]
async fn a_pass_counts_per_table_and_leaves_events_and_cursors_alone() {
    let (_db, store) = common::store().await;
    let pool = store.pool();
    let mut tx = store
        .begin_stream(deskie_store::StreamKey::new("case", Uuid::new_v4()))
        .await
        .expect("begin");
    tx.append(0, vec![common::draft(1)]).await.expect("append");
    tx.commit().await.expect("commit");
    sqlx::query(
        "INSERT INTO inbox (consumer, message_id, processed_at)
         VALUES ('routing', 'old', now() - interval '20 days')",
    )
    .execute(pool)
    .await
    .expect("inbox");
    let cursors_before: i64 = sqlx::query_scalar("SELECT count(*) FROM consumer_cursors")
        .fetch_one(pool)
        .await
        .expect("cursors");

    let metrics = RetentionMetrics::new().expect("metrics");
    let ages = Ages {
        inbox: 14 * DAY,
        outbox: 30 * DAY,
        visitor_fetches: 30 * DAY,
    };
    let counts = retention::run_once(&store, &ages, Some(&metrics))
        .await
        .expect("pass");
    assert_eq!(
        counts,
        [
            ("inbox", 1),
            ("outbox", 0),
            ("agent_sync_visitor_fetches", 0),
            ("agent_sync_client_updates", 0)
        ]
    );
    assert_eq!(metrics.pruned("inbox"), 1);
    assert!(
        metrics
            .render()
            .contains(r#"retention_pruned_rows_total{table="inbox"} 1"#)
    );
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .expect("events");
    assert_eq!(events, 1);
    let cursors_after: i64 = sqlx::query_scalar("SELECT count(*) FROM consumer_cursors")
        .fetch_one(pool)
        .await
        .expect("cursors");
    assert_eq!(cursors_after, cursors_before);
}
