//! The outbox: outbound's ledger of effects outside our system, one row per intent key.
//!
//! outbound writes the row when it sees the event asking for the effect (a redelivered event
//! finds the key taken), claims due rows with `FOR UPDATE SKIP LOCKED` and a lease, so two
//! workers never send the same intent at once, and settles each claim fenced by its attempt
//! number, so a worker whose lease ran out cannot overwrite what a later claim decided.
//! Rows of one stream (a case) are performed one at a time, oldest first, so a case's
//! replies reach the visitor in the order they were asked for: a row enqueued behind an open
//! row of its stream is `queued`, and settling the open row (sent, failed or unknown — not a
//! retry) promotes the next one to `pending`. Enqueue and promotion each take the stream's
//! ledger lock first ([`lock_stream_rows`], held to the commit), whatever else their caller
//! holds: an enqueue that saw an open row and a settlement that promoted before the new row
//! committed would otherwise leave it `queued` for ever. So there is never more than one
//! open row per stream, and a claim reads only due rows however long the backlog.

use std::time::Duration;

use sqlx::{PgConnection, PgPool, PgTransaction, Row};
use uuid::Uuid;

use crate::StoreError;
use crate::event_store::LOCK_STREAMS;

/// An intent to enqueue.
#[derive(Debug, Clone)]
pub struct NewIntent {
    /// Unique key, e.g. `chatra_reply:{message_id}`.
    pub intent_key: String,
    /// What kind of effect (`chatra_reply`, `slack`, `telegram`, …).
    pub kind: String,
    /// The stream it belongs to, if any: intents of one stream are performed in order.
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
    /// The stream it belongs to.
    pub stream_id: Option<Uuid>,
    /// Payload.
    pub payload: serde_json::Value,
    /// Attempts so far, this one included: the fencing token of this claim.
    pub attempts: i32,
    /// The previous claim's lease ran out before it settled after it had passed the last
    /// check before its call ([`renew_lease`]): that worker died between that check and
    /// recording, so its request may have left. A claim lost before that check never
    /// called; the row is simply claimed again.
    pub previous_claim_lost: bool,
    /// How long ago the intent's first attempt was claimed (zero for the first attempt), by
    /// the database's clock: what the retry window is measured against.
    pub tried_for: Duration,
}

/// How a claimed intent ends (for now).
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// Delivered.
    Sent,
    /// Try again after `after`.
    Retry {
        /// How long to wait.
        after: Duration,
        /// Why.
        error: String,
    },
    /// Will not be delivered.
    Failed {
        /// Why.
        error: String,
    },
    /// May or may not have been delivered; never re-sent. Settled by an echo or at `settle_by`.
    Unknown {
        /// How long to wait for the echo.
        settle_within: Duration,
        /// Why.
        error: String,
    },
}

/// Takes the ledger lock of `stream_id`'s rows, held until the caller's transaction ends: the
/// one that enqueueing and promoting take turns on. Not the case's own lock, so the intake
/// does not queue behind the case's writers; taken after any other lock, never before one.
async fn lock_stream_rows(tx: &mut PgTransaction<'_>, stream_id: Uuid) -> Result<(), StoreError> {
    sqlx::query(LOCK_STREAMS)
        .bind([format!("outbox/{stream_id}")])
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Enqueues `intent` inside the caller's transaction, `queued` behind an open intent of its
/// stream, else `pending`; `false` when the key already exists.
pub async fn enqueue(tx: &mut PgTransaction<'_>, intent: &NewIntent) -> Result<bool, StoreError> {
    // Its own statement: a lock taken inside the insert would come after the insert's view
    // of the open rows was fixed.
    if let Some(stream_id) = intent.stream_id {
        lock_stream_rows(tx, stream_id).await?;
    }
    let inserted = sqlx::query(
        "INSERT INTO outbox (intent_key, kind, stream_id, payload, status)
         VALUES ($1, $2, $3, $4,
                 CASE WHEN $3::uuid IS NOT NULL AND EXISTS (
                          SELECT 1 FROM outbox WHERE stream_id = $3
                             AND status IN ('queued', 'pending', 'sending'))
                      THEN 'queued' ELSE 'pending' END)
         ON CONFLICT (intent_key) DO NOTHING",
    )
    .bind(&intent.intent_key)
    .bind(&intent.kind)
    .bind(intent.stream_id)
    .bind(&intent.payload)
    .execute(&mut **tx)
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
        "WITH due AS (
             SELECT id, status AS previous, call_started AS previous_called FROM outbox
              WHERE kind = $1
                AND ((status = 'pending' AND not_before <= now())
                  OR (status = 'sending' AND lease_until < now()))
              ORDER BY id
              LIMIT $2
              FOR UPDATE SKIP LOCKED)
         UPDATE outbox SET status = 'sending', attempts = outbox.attempts + 1, call_started = false,
                first_attempt_at = COALESCE(outbox.first_attempt_at, now()),
                lease_until = now() + make_interval(secs => $3), updated_at = now()
           FROM due
          WHERE outbox.id = due.id
      RETURNING outbox.id, outbox.intent_key, outbox.kind, outbox.stream_id, outbox.payload,
                outbox.attempts, due.previous, due.previous_called,
                EXTRACT(EPOCH FROM now() - outbox.first_attempt_at)::float8 AS tried_for",
    )
    .bind(kind)
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    let mut claimed = rows
        .into_iter()
        .map(|row| {
            let previous: String = row.try_get("previous")?;
            let previous_called: bool = row.try_get("previous_called")?;
            let tried_for: f64 = row.try_get("tried_for")?;
            Ok(ClaimedIntent {
                id: row.try_get("id")?,
                intent_key: row.try_get("intent_key")?,
                kind: row.try_get("kind")?,
                stream_id: row.try_get("stream_id")?,
                payload: row.try_get("payload")?,
                attempts: row.try_get("attempts")?,
                previous_claim_lost: previous == "sending" && previous_called,
                tried_for: Duration::try_from_secs_f64(tried_for).unwrap_or(Duration::ZERO),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// Settles `claim` inside the caller's transaction; `false` when
/// the claim is no longer the current one (its lease ran out and another worker claimed the
/// row). A settlement that closes the row promotes the stream's next `queued` row.
pub async fn settle(
    tx: &mut PgTransaction<'_>,
    claim: &ClaimedIntent,
    settlement: &Settlement,
) -> Result<bool, StoreError> {
    let (status, after, settle_within, error) = match settlement {
        Settlement::Sent => ("sent", Duration::ZERO, None, None),
        Settlement::Retry { after, error } => ("pending", *after, None, Some(error)),
        Settlement::Failed { error } => ("failed", Duration::ZERO, None, Some(error)),
        Settlement::Unknown {
            settle_within,
            error,
        } => ("unknown", Duration::ZERO, Some(*settle_within), Some(error)),
    };
    let updated = sqlx::query(
        "UPDATE outbox SET status = $3, lease_until = NULL, last_error = $5, updated_at = now(),
                not_before = now() + make_interval(secs => $4),
                settle_by = now() + make_interval(secs => $6)
          WHERE id = $1 AND attempts = $2 AND status = 'sending'",
    )
    .bind(claim.id)
    .bind(claim.attempts)
    .bind(status)
    .bind(after.as_secs_f64())
    .bind(error)
    .bind(settle_within.map(|d| d.as_secs_f64()))
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    if let (Some(stream_id), false) = (claim.stream_id, status == "pending") {
        promote_next(tx, stream_id).await?;
    }
    Ok(true)
}

/// Gives `claim` back untried, `pending` again after `after` with this attempt not counted
/// (nor its time, when it was the first): for a worker that never called out (a rate limit
/// or a peer's pause would have held it past its lease, or its lease ran out before the
/// call). `false` when the claim is no longer the current one. The row stays open, so its
/// stream's next row is not promoted.
pub async fn release(
    conn: &mut PgConnection,
    claim: &ClaimedIntent,
    after: Duration,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE outbox SET status = 'pending', attempts = attempts - 1, lease_until = NULL,
                first_attempt_at = CASE WHEN attempts = 1 THEN NULL ELSE first_attempt_at END,
                not_before = now() + make_interval(secs => $3), updated_at = now()
          WHERE id = $1 AND attempts = $2 AND status = 'sending'",
    )
    .bind(claim.id)
    .bind(claim.attempts)
    .bind(after.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// The check right before a call leaves: renews `claim`'s lease to a whole `lease` from now
/// if the claim is still current and its lease has not run out, so the call has the full
/// lease to finish in, and records that the call is about to leave (a later claim of a lost
/// one then knows it may have arrived: [`ClaimedIntent::previous_claim_lost`]). `false`,
/// changing nothing, otherwise: the caller must not call (once a lease has run out, another
/// claim may treat the row as sent and lost).
pub async fn renew_lease(
    conn: &mut PgConnection,
    claim: &ClaimedIntent,
    lease: Duration,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE outbox SET lease_until = now() + make_interval(secs => $3), call_started = true,
                updated_at = now()
          WHERE id = $1 AND attempts = $2 AND status = 'sending' AND lease_until > now()",
    )
    .bind(claim.id)
    .bind(claim.attempts)
    .bind(lease.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Rows that may still lead to a call (`queued`, `pending`, `sending`); none means nothing
/// more will be sent, however long one waits: settled rows are never claimed again.
pub async fn open_count(executor: impl sqlx::PgExecutor<'_>) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE status IN ('queued', 'pending', 'sending')",
    )
    .fetch_one(executor)
    .await?)
}

/// Makes the oldest `queued` row of `stream_id` `pending`, unless a row of it is still open.
async fn promote_next(tx: &mut PgTransaction<'_>, stream_id: Uuid) -> Result<(), StoreError> {
    lock_stream_rows(tx, stream_id).await?;
    sqlx::query(
        "UPDATE outbox SET status = 'pending', updated_at = now()
          WHERE id = (SELECT id FROM outbox WHERE stream_id = $1 AND status = 'queued'
                       ORDER BY id LIMIT 1)
            AND NOT EXISTS (SELECT 1 FROM outbox WHERE stream_id = $1
                               AND status IN ('pending', 'sending'))",
    )
    .bind(stream_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An intent whose outcome is unknown and whose time to wait for the echo is over.
#[derive(Debug, Clone)]
pub struct OverdueIntent {
    /// Row id.
    pub id: i64,
    /// Unique key.
    pub intent_key: String,
    /// The stream it belongs to.
    pub stream_id: Option<Uuid>,
    /// Payload.
    pub payload: serde_json::Value,
}

/// Up to `limit` intents of `kind` still `unknown` past their `settle_by`, oldest first.
pub async fn overdue_unknown(
    pool: &PgPool,
    kind: &str,
    limit: i64,
) -> Result<Vec<OverdueIntent>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, intent_key, stream_id, payload FROM outbox
          WHERE status = 'unknown' AND kind = $1 AND settle_by <= now()
          ORDER BY settle_by LIMIT $2",
    )
    .bind(kind)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(OverdueIntent {
                id: row.try_get("id")?,
                intent_key: row.try_get("intent_key")?,
                stream_id: row.try_get("stream_id")?,
                payload: row.try_get("payload")?,
            })
        })
        .collect()
}

/// Ends an `unknown` (or `failed`) intent found settled elsewhere — `sent` when the echo
/// proved delivery, `failed` at the deadline; `false` when it was not in either state.
pub async fn resolve(
    conn: &mut PgConnection,
    intent_key: &str,
    delivered: bool,
    error: Option<&str>,
) -> Result<bool, StoreError> {
    let (status, from): (&str, &[&str]) = if delivered {
        ("sent", &["unknown", "failed"])
    } else {
        ("failed", &["unknown"])
    };
    let from: Vec<String> = from.iter().map(|s| (*s).to_owned()).collect();
    let updated = sqlx::query(
        "UPDATE outbox SET status = $2, last_error = COALESCE($3, last_error), updated_at = now()
          WHERE intent_key = $1 AND status = ANY($4)",
    )
    .bind(intent_key)
    .bind(status)
    .bind(error)
    .bind(&from)
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// The status of the intent `intent_key` (`queued`, `pending`, `sending`, `sent`, `failed`,
/// `unknown`), if there is one.
pub async fn status_of(pool: &PgPool, intent_key: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT status FROM outbox WHERE intent_key = $1")
            .bind(intent_key)
            .fetch_optional(pool)
            .await?,
    )
}
