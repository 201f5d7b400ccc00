//! Bounded growth of the bookkeeping tables: deletes what no longer guards anything, in
//! batches of [`BATCH`] rows per statement so a large backlog never holds long locks.
//!
//! - `inbox`: rows older than the redelivery horizon (a message JetStream could still
//!   redeliver is younger than its stream's max age, which the settings keep shorter).
//! - `outbox`: settled rows (`sent`, `failed`) last changed before the retention. `queued`,
//!   `pending`, `sending` and `unknown` rows are never touched.
//! - `agent_sync_visitor_fetches`: settled rows (`done`, `failed`) likewise.
//! - `agent_sync_client_updates`: rows with nothing due and no claim, last changed before the
//!   outbox's retention (they are the same kind of ledger: calls made to Chatra).
//!
//! `events` and `consumer_cursors` are never pruned; `api_idempotency_keys` has its own
//! pruning in the api ([`crate::idempotency::prune`]). [`run`] does the four above periodically.

mod metrics;
mod task;

pub use metrics::RetentionMetrics;
pub use task::{Ages, run, run_once};

use std::time::Duration;

use sqlx::PgPool;

use crate::StoreError;

/// Rows deleted per statement.
pub const BATCH: i64 = 1000;

/// Deletes `inbox` rows processed more than `older_than` ago; how many.
pub async fn prune_inbox(pool: &PgPool, older_than: Duration) -> Result<u64, StoreError> {
    in_batches(
        pool,
        "DELETE FROM inbox WHERE (consumer, message_id) IN (
             SELECT consumer, message_id FROM inbox
              WHERE processed_at < now() - make_interval(secs => $1)
              LIMIT $2)",
        older_than,
    )
    .await
}

/// Deletes settled (`sent`, `failed`) `outbox` rows last changed more than `older_than`
/// ago; how many.
pub async fn prune_outbox(pool: &PgPool, older_than: Duration) -> Result<u64, StoreError> {
    in_batches(
        pool,
        "DELETE FROM outbox WHERE id IN (
             SELECT id FROM outbox
              WHERE status IN ('sent', 'failed')
                AND updated_at < now() - make_interval(secs => $1)
              LIMIT $2)",
        older_than,
    )
    .await
}

/// Deletes settled (`done`, `failed`) `agent_sync_visitor_fetches` rows last changed more
/// than `older_than` ago; how many.
pub async fn prune_visitor_fetches(pool: &PgPool, older_than: Duration) -> Result<u64, StoreError> {
    in_batches(
        pool,
        "DELETE FROM agent_sync_visitor_fetches WHERE id IN (
             SELECT id FROM agent_sync_visitor_fetches
              WHERE status IN ('done', 'failed')
                AND updated_at < now() - make_interval(secs => $1)
              LIMIT $2)",
        older_than,
    )
    .await
}

/// Deletes `agent_sync_client_updates` rows with nothing due (`due_up_to <= version`) and
/// no live claim, last changed more than `older_than` ago; how many. A case edited again
/// later starts a new row from version 0: its next call carries every agent edit of the
/// case again, the same values Chatra already has.
pub async fn prune_client_updates(pool: &PgPool, older_than: Duration) -> Result<u64, StoreError> {
    in_batches(
        pool,
        "DELETE FROM agent_sync_client_updates WHERE case_id IN (
             SELECT case_id FROM agent_sync_client_updates
              WHERE due_up_to <= version
                AND (lease_until IS NULL OR lease_until < now())
                AND updated_at < now() - make_interval(secs => $1)
              LIMIT $2)",
        older_than,
    )
    .await
}

/// Runs `delete` (binding the age in seconds and [`BATCH`]) until a statement deletes less
/// than a batch; each statement is its own short transaction.
async fn in_batches(
    pool: &PgPool,
    delete: &'static str,
    older_than: Duration,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(delete)
            .bind(older_than.as_secs_f64())
            .bind(BATCH)
            .execute(pool)
            .await?
            .rows_affected();
        total += deleted;
        if deleted < BATCH as u64 {
            return Ok(total);
        }
    }
}
