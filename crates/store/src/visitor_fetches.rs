//! agent-sync's ledger of visitor-card fetches (`GET /clients/{id}`), one row per case and
//! round (`agent_sync_visitor_fetches`).
//!
//! The pattern is the outbox's ([`crate::outbox`]): a case event enqueues the row (a
//! redelivered event finds the key taken), a worker claims due rows with
//! `FOR UPDATE SKIP LOCKED` and a lease, and settles its claim fenced by the attempt
//! number, so a worker whose lease ran out cannot overwrite what a later claim decided.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::StoreError;

/// A claimed fetch.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ClaimedFetch {
    /// Row id.
    pub id: i64,
    /// The case.
    pub case_id: Uuid,
    /// Why it is fetched (`case_opened`, `chat_ended:{version}`).
    pub round: String,
    /// The case event that asked for it.
    pub causation_id: String,
    /// That event's correlation id.
    pub correlation_id: String,
    /// Attempts so far, this one included: the fencing token of this claim.
    pub attempts: i32,
}

/// How a claimed fetch ends (for now).
#[derive(Debug, Clone, PartialEq)]
pub enum FetchSettlement {
    /// Fetched and recorded on the case.
    Done,
    /// Try again after `after`.
    Retry {
        /// How long to wait.
        after: Duration,
        /// Why this attempt failed.
        error: String,
    },
    /// Given up.
    Failed {
        /// Why.
        error: String,
    },
}

/// A row of the ledger, as it stands.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct VisitorFetch {
    /// The case.
    pub case_id: Uuid,
    /// The round.
    pub round: String,
    /// `pending`, `fetching`, `done` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// When it is due (again).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// A fetch to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFetch {
    /// The case.
    pub case_id: Uuid,
    /// Why (`case_opened`, `chat_ended:{version}`): one fetch per case and round.
    pub round: String,
    /// The case event asking for it.
    pub causation_id: String,
    /// That event's correlation id.
    pub correlation_id: String,
}

/// Enqueues `fetch`, due now (in the caller's transaction, if it passes one); `false` when
/// its case and round already have a row.
pub async fn enqueue(executor: impl PgExecutor<'_>, fetch: &NewFetch) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO agent_sync_visitor_fetches (case_id, round, causation_id, correlation_id)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (case_id, round) DO NOTHING",
    )
    .bind(fetch.case_id)
    .bind(&fetch.round)
    .bind(&fetch.causation_id)
    .bind(&fetch.correlation_id)
    .execute(executor)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Claims up to `limit` due fetches for `lease`: pending ones whose time has come, and ones
/// whose previous claim's lease ran out; oldest due first.
pub async fn claim_due(
    pool: &PgPool,
    limit: i64,
    lease: Duration,
) -> Result<Vec<ClaimedFetch>, StoreError> {
    let mut claimed: Vec<ClaimedFetch> = sqlx::query_as(
        "WITH due AS (
             SELECT id FROM agent_sync_visitor_fetches
              WHERE (status = 'pending' AND next_attempt_at <= now())
                 OR (status = 'fetching' AND lease_until < now())
              ORDER BY next_attempt_at, id
              LIMIT $1
              FOR UPDATE SKIP LOCKED)
         UPDATE agent_sync_visitor_fetches f
            SET status = 'fetching', attempts = f.attempts + 1,
                lease_until = now() + make_interval(secs => $2), updated_at = now()
           FROM due
          WHERE f.id = due.id
      RETURNING f.id, f.case_id, f.round, f.causation_id, f.correlation_id, f.attempts",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// Settles `claim` inside the caller's transaction; `false` when the claim is no longer the
/// current one (its lease ran out and another worker claimed the row).
pub async fn settle(
    conn: &mut PgConnection,
    claim: &ClaimedFetch,
    settlement: &FetchSettlement,
) -> Result<bool, StoreError> {
    let (status, after, error) = match settlement {
        FetchSettlement::Done => ("done", Duration::ZERO, None),
        FetchSettlement::Retry { after, error } => ("pending", *after, Some(error)),
        FetchSettlement::Failed { error } => ("failed", Duration::ZERO, Some(error)),
    };
    let updated = sqlx::query(
        "UPDATE agent_sync_visitor_fetches
            SET status = $3, lease_until = NULL, updated_at = now(),
                next_attempt_at = now() + make_interval(secs => $4),
                last_error = COALESCE($5, last_error)
          WHERE id = $1 AND attempts = $2 AND status = 'fetching'",
    )
    .bind(claim.id)
    .bind(claim.attempts)
    .bind(status)
    .bind(after.as_secs_f64())
    .bind(error)
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Gives `claim` back untried, due again after `after`, this attempt not counted (the
/// integration's rate limit held it back); `false` when the claim is no longer current.
pub async fn release(
    conn: &mut PgConnection,
    claim: &ClaimedFetch,
    after: Duration,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE agent_sync_visitor_fetches
            SET status = 'pending', attempts = attempts - 1, lease_until = NULL,
                next_attempt_at = now() + make_interval(secs => $3), updated_at = now()
          WHERE id = $1 AND attempts = $2 AND status = 'fetching'",
    )
    .bind(claim.id)
    .bind(claim.attempts)
    .bind(after.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Every fetch of `case_id`, oldest first (for tests and operators).
pub async fn for_case(pool: &PgPool, case_id: Uuid) -> Result<Vec<VisitorFetch>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT case_id, round, status, attempts, next_attempt_at, last_error
           FROM agent_sync_visitor_fetches WHERE case_id = $1 ORDER BY id",
    )
    .bind(case_id)
    .fetch_all(pool)
    .await?)
}
