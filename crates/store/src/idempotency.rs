//! The api's ledger of `Idempotency-Key`s (`api_idempotency_keys`): one row per caller,
//! method, path and key, holding the hash of the first request's body and, once it was
//! answered, that answer.
//!
//! A request [`claim`]s its key before acting. The claim is an upsert, so of two requests
//! racing with the same key exactly one gets [`Claim::Acquired`], on any number of api
//! instances; the other sees the row [`Claim::InFlight`] or [`Claim::Completed`]. The holder
//! then [`complete`]s the row with the answer or [`release`]s it (an answer not worth
//! keeping), both fenced by the claim's id, so a holder whose lease ran out cannot overwrite
//! what a later claim decided.

use std::time::Duration;

use sqlx::types::Json;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::StoreError;

/// Where a key counts: the same key from another caller, or on another method or path, is
/// another key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScope {
    /// Who asked: `admin` or `agent:{uuid}`.
    pub caller: String,
    /// The HTTP method.
    pub method: String,
    /// The request path, without the query.
    pub path: String,
    /// The `Idempotency-Key` header's value.
    pub key: String,
}

/// An answer as stored. The body is kept encrypted by the caller: some answers show a
/// secret once (an agent's new token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The headers to replay (name, value), in order.
    pub headers: Vec<(String, String)>,
    /// The body, encrypted.
    pub body_encrypted: Vec<u8>,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: act, then [`complete`] or [`release`] with this claim id.
    /// Also when an earlier row had expired, or its holder's lease ran out (same body).
    Acquired(Uuid),
    /// An earlier request with this key was answered.
    Completed {
        /// SHA-256 of that request's body.
        request_sha256: Vec<u8>,
        /// Its answer.
        answer: StoredAnswer,
    },
    /// An earlier request with this key is still being answered.
    InFlight {
        /// SHA-256 of that request's body.
        request_sha256: Vec<u8>,
    },
}

#[derive(FromRow)]
struct Row {
    request_sha256: Vec<u8>,
    response_status: Option<i16>,
    response_headers: Option<Json<Vec<(String, String)>>>,
    response_body_encrypted: Option<Vec<u8>>,
}

/// How often [`claim`] looks again when the row it collided with vanished meanwhile
/// (released or pruned) before giving up with [`Claim::InFlight`].
const CLAIM_ATTEMPTS: usize = 3;

/// Claims `scope` for a request whose body hashes to `request_sha256`, for `lease`. A row
/// older than `retention` counts as absent.
pub async fn claim(
    pool: &PgPool,
    scope: &KeyScope,
    request_sha256: &[u8; 32],
    lease: Duration,
    retention: Duration,
) -> Result<Claim, StoreError> {
    for _ in 0..CLAIM_ATTEMPTS {
        let claim_id = Uuid::now_v7();
        // Taken over: an expired row, or an abandoned claim (its holder died) of the same
        // body; any other existing row is left as it is and read below.
        let acquired: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO api_idempotency_keys
                    (caller, method, path, idempotency_key, request_sha256, claim_id, locked_until)
             VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))
             ON CONFLICT (caller, method, path, idempotency_key) DO UPDATE
                SET request_sha256 = EXCLUDED.request_sha256, claim_id = EXCLUDED.claim_id,
                    locked_until = EXCLUDED.locked_until, created_at = now(),
                    response_status = NULL, response_headers = NULL,
                    response_body_encrypted = NULL, completed_at = NULL
              WHERE api_idempotency_keys.created_at < now() - make_interval(secs => $8)
                 OR (api_idempotency_keys.completed_at IS NULL
                     AND api_idempotency_keys.locked_until < now()
                     AND api_idempotency_keys.request_sha256 = EXCLUDED.request_sha256)
             RETURNING claim_id",
        )
        .bind(&scope.caller)
        .bind(&scope.method)
        .bind(&scope.path)
        .bind(&scope.key)
        .bind(request_sha256.as_slice())
        .bind(claim_id)
        .bind(lease.as_secs_f64())
        .bind(retention.as_secs_f64())
        .fetch_optional(pool)
        .await?;
        if let Some(claim_id) = acquired {
            return Ok(Claim::Acquired(claim_id));
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT request_sha256, response_status, response_headers, response_body_encrypted
               FROM api_idempotency_keys
              WHERE caller = $1 AND method = $2 AND path = $3 AND idempotency_key = $4",
        )
        .bind(&scope.caller)
        .bind(&scope.method)
        .bind(&scope.path)
        .bind(&scope.key)
        .fetch_optional(pool)
        .await?;
        let Some(row) = row else {
            continue;
        };
        return Ok(match (row.response_status, row.response_body_encrypted) {
            (Some(status), Some(body_encrypted)) => Claim::Completed {
                request_sha256: row.request_sha256,
                answer: StoredAnswer {
                    status: u16::try_from(status).unwrap_or_default(),
                    headers: row.response_headers.map(|h| h.0).unwrap_or_default(),
                    body_encrypted,
                },
            },
            _ => Claim::InFlight {
                request_sha256: row.request_sha256,
            },
        });
    }
    Ok(Claim::InFlight {
        request_sha256: request_sha256.to_vec(),
    })
}

/// Stores `answer` on the row claimed with `claim_id`; `false` when the claim is no longer
/// the current one.
pub async fn complete(
    pool: &PgPool,
    scope: &KeyScope,
    claim_id: Uuid,
    answer: &StoredAnswer,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE api_idempotency_keys
            SET response_status = $6, response_headers = $7, response_body_encrypted = $8,
                completed_at = now(), locked_until = NULL
          WHERE caller = $1 AND method = $2 AND path = $3 AND idempotency_key = $4
            AND claim_id = $5 AND completed_at IS NULL",
    )
    .bind(&scope.caller)
    .bind(&scope.method)
    .bind(&scope.path)
    .bind(&scope.key)
    .bind(claim_id)
    .bind(i16::try_from(answer.status).unwrap_or(i16::MAX))
    .bind(Json(&answer.headers))
    .bind(&answer.body_encrypted)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Deletes the row claimed with `claim_id` (its answer is not kept, so the key may be used
/// again); `false` when the claim is no longer the current one.
pub async fn release(pool: &PgPool, scope: &KeyScope, claim_id: Uuid) -> Result<bool, StoreError> {
    let deleted = sqlx::query(
        "DELETE FROM api_idempotency_keys
          WHERE caller = $1 AND method = $2 AND path = $3 AND idempotency_key = $4
            AND claim_id = $5 AND completed_at IS NULL",
    )
    .bind(&scope.caller)
    .bind(&scope.method)
    .bind(&scope.path)
    .bind(&scope.key)
    .bind(claim_id)
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Deletes every row older than `retention`; how many.
pub async fn prune(pool: &PgPool, retention: Duration) -> Result<u64, StoreError> {
    let deleted = sqlx::query(
        "DELETE FROM api_idempotency_keys
          WHERE created_at < now() - make_interval(secs => $1)",
    )
    .bind(retention.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}
