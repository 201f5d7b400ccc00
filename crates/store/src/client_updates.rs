//! agent-sync's queue of customer edits for Chatra's client card (`PUT /clients/{id}`),
//! one row per case (`agent_sync_client_updates`).
//!
//! The case-event consumer records, in the case's transaction, that the case's agent edits
//! are due up to a version ([`mark_due`]); no call to Chatra waits under the case's lock. A
//! worker claims due rows with `FOR UPDATE SKIP LOCKED` and a lease ([`claim_due`]), calls
//! Chatra, and settles its claim fenced by the claim number ([`settle`]), so a worker whose
//! lease ran out cannot overwrite what a later claim decided. One row per case means one
//! call per case at a time: a case's edits reach Chatra in order.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::StoreError;

/// A claimed case: send what Chatra is missing after `sent_up_to`, up to `due_up_to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedUpdate {
    /// The case.
    pub case_id: Uuid,
    /// The case version whose agent edits Chatra already has.
    pub sent_up_to: u64,
    /// The newest agent edit to send.
    pub due_up_to: u64,
    /// Failed attempts since the last success (before this one).
    pub failures: i32,
    /// The fencing token of this claim.
    pub claim: i64,
}

/// How a claimed update ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateSettlement {
    /// Everything up to the claim's `due_up_to` is done with (sent, or given up).
    Settled,
    /// Try again after `after`.
    Retry {
        /// How long to wait.
        after: Duration,
        /// Why this attempt failed.
        error: String,
    },
}

/// A case's row, as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientUpdate {
    /// The case version whose agent edits Chatra has (or that were given up).
    pub sent_up_to: u64,
    /// The newest agent edit to send.
    pub due_up_to: u64,
    /// Failed attempts since the last success.
    pub failures: i32,
    /// When it is due (again).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed, until one succeeds.
    pub last_error: Option<String>,
}

#[derive(FromRow)]
struct Claimed {
    case_id: Uuid,
    version: i64,
    due_up_to: i64,
    failures: i32,
    claims: i64,
}

#[derive(FromRow)]
struct Row {
    version: i64,
    due_up_to: i64,
    failures: i32,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
}

fn version(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn column(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Records, inside the case's transaction, that its agent edits are due up to `version`.
/// A row that was settled is due at once; one waiting for a retry keeps its wait (Chatra
/// may have asked for it), and its next attempt carries this edit too.
pub async fn mark_due(
    conn: &mut PgConnection,
    case_id: Uuid,
    version: u64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO agent_sync_client_updates AS u (case_id, version, due_up_to)
         VALUES ($1, 0, $2)
         ON CONFLICT (case_id) DO UPDATE
            SET due_up_to = GREATEST(u.due_up_to, EXCLUDED.due_up_to),
                next_attempt_at = CASE WHEN u.due_up_to > u.version
                                       THEN u.next_attempt_at ELSE now() END,
                failures = CASE WHEN u.due_up_to > u.version THEN u.failures ELSE 0 END,
                updated_at = now()",
    )
    .bind(case_id)
    .bind(column(version))
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims up to `limit` due cases for `lease`: those whose time has come and that no live
/// claim holds; longest waiting first.
pub async fn claim_due(
    pool: &PgPool,
    limit: i64,
    lease: Duration,
) -> Result<Vec<ClaimedUpdate>, StoreError> {
    let claimed: Vec<Claimed> = sqlx::query_as(
        "WITH due AS (
             SELECT case_id FROM agent_sync_client_updates
              WHERE due_up_to > version AND next_attempt_at <= now()
                AND (lease_until IS NULL OR lease_until < now())
              ORDER BY next_attempt_at
              LIMIT $1
              FOR UPDATE SKIP LOCKED)
         UPDATE agent_sync_client_updates u
            SET claims = u.claims + 1, updated_at = now(),
                lease_until = now() + make_interval(secs => $2)
           FROM due
          WHERE u.case_id = due.case_id
      RETURNING u.case_id, u.version, u.due_up_to, u.failures, u.claims",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    Ok(claimed
        .into_iter()
        .map(|c| ClaimedUpdate {
            case_id: c.case_id,
            sent_up_to: version(c.version),
            due_up_to: version(c.due_up_to),
            failures: c.failures,
            claim: c.claims,
        })
        .collect())
}

/// Settles `claim`; `false` when it is no longer the current claim (its lease ran out and
/// another worker claimed the row). An edit recorded meanwhile stays due.
pub async fn settle(
    pool: &PgPool,
    claim: &ClaimedUpdate,
    settlement: &UpdateSettlement,
) -> Result<bool, StoreError> {
    let updated = match settlement {
        UpdateSettlement::Settled => {
            sqlx::query(
                "UPDATE agent_sync_client_updates
                    SET version = GREATEST(version, $3), failures = 0, lease_until = NULL,
                        last_error = NULL, next_attempt_at = now(), updated_at = now()
                  WHERE case_id = $1 AND claims = $2",
            )
            .bind(claim.case_id)
            .bind(claim.claim)
            .bind(column(claim.due_up_to))
            .execute(pool)
            .await?
        }
        UpdateSettlement::Retry { after, error } => {
            sqlx::query(
                "UPDATE agent_sync_client_updates
                    SET failures = failures + 1, lease_until = NULL, last_error = $4,
                        next_attempt_at = now() + make_interval(secs => $3), updated_at = now()
                  WHERE case_id = $1 AND claims = $2",
            )
            .bind(claim.case_id)
            .bind(claim.claim)
            .bind(after.as_secs_f64())
            .bind(error)
            .execute(pool)
            .await?
        }
    };
    Ok(updated.rows_affected() == 1)
}

/// The case's row, if it has one.
pub async fn get(
    executor: impl PgExecutor<'_>,
    case_id: Uuid,
) -> Result<Option<ClientUpdate>, StoreError> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT version, due_up_to, failures, next_attempt_at, last_error
           FROM agent_sync_client_updates WHERE case_id = $1",
    )
    .bind(case_id)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|r| ClientUpdate {
        sent_up_to: version(r.version),
        due_up_to: version(r.due_up_to),
        failures: r.failures,
        next_attempt_at: r.next_attempt_at,
        last_error: r.last_error,
    }))
}
