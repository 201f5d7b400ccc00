//! The outbox: intents of effects outside our system, unique per intent key.
//!
//! The row is written in the same transaction as the decision, so a redelivered decision
//! cannot create a second intent; a worker claims due rows with `FOR UPDATE SKIP LOCKED`
//! and a lease, so two workers never send the same intent at once.

use std::time::Duration;

use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::StoreError;

/// Where an intent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Waiting to be sent (again).
    Pending,
    /// Claimed by a worker until its lease ends.
    Sending,
    /// Delivered.
    Sent,
    /// Will not be delivered.
    Failed,
    /// May or may not have been delivered; never re-sent blindly.
    Unknown,
}

impl OutboxStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }
}

/// An intent to enqueue.
#[derive(Debug, Clone)]
pub struct NewIntent {
    /// Unique key, e.g. `reply:{message_id}`.
    pub intent_key: String,
    /// What kind of effect (`chatra_reply`, `slack`, `telegram`, …).
    pub kind: String,
    /// The stream it belongs to, if any.
    pub stream_id: Option<Uuid>,
    /// Everything the worker needs to perform it.
    pub payload: serde_json::Value,
}

/// A claimed intent.
#[derive(Debug, Clone)]
pub struct ClaimedIntent {
    /// Row id.
    pub id: i64,
    /// Unique key.
    pub intent_key: String,
    /// Kind.
    pub kind: String,
    /// Payload.
    pub payload: serde_json::Value,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// Enqueues `intent` inside the caller's transaction; `false` when the key already exists.
pub async fn enqueue(conn: &mut PgConnection, intent: &NewIntent) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO outbox (intent_key, kind, stream_id, payload) VALUES ($1, $2, $3, $4) ON CONFLICT (intent_key) DO NOTHING",
    )
    .bind(&intent.intent_key)
    .bind(&intent.kind)
    .bind(intent.stream_id)
    .bind(&intent.payload)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Claims up to `limit` due intents of `kind` for `lease`: pending ones whose time has come,
/// and ones whose previous claim's lease ran out.
pub async fn claim_due(
    pool: &PgPool,
    kind: &str,
    limit: i64,
    lease: Duration,
) -> Result<Vec<ClaimedIntent>, StoreError> {
    let rows = sqlx::query(
        "UPDATE outbox SET status = 'sending', attempts = attempts + 1,
                lease_until = now() + make_interval(secs => $3), updated_at = now()
          WHERE id IN (SELECT id FROM outbox
                        WHERE kind = $1
                          AND ((status = 'pending' AND not_before <= now())
                            OR (status = 'sending' AND lease_until < now()))
                        ORDER BY id
                        LIMIT $2
                        FOR UPDATE SKIP LOCKED)
      RETURNING id, intent_key, kind, payload, attempts",
    )
    .bind(kind)
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(ClaimedIntent {
                id: row.try_get("id")?,
                intent_key: row.try_get("intent_key")?,
                kind: row.try_get("kind")?,
                payload: row.try_get("payload")?,
                attempts: row.try_get("attempts")?,
            })
        })
        .collect()
}

/// Settles a claimed intent: `Pending` with `retry_after` reschedules it.
pub async fn settle(
    pool: &PgPool,
    id: i64,
    status: OutboxStatus,
    retry_after: Option<Duration>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET status = $2, lease_until = NULL, last_error = $4, updated_at = now(),
                not_before = now() + make_interval(secs => $3)
          WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(retry_after.unwrap_or_default().as_secs_f64())
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}
