//! Consumer cursors: how far each case-event consumer has acted on each stream, so it acts
//! on version v only after every earlier version, filling a gap from the event store.
//!
//! Call these under the stream's lock ([`crate::Store::begin_stream`]): the lock is what
//! keeps two deliveries of one stream from reading the same cursor.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::event_store::load;
use crate::{StoreError, StoredEvent};

/// The events of `stream_id` that `consumer` has not acted on, up to and including
/// `version`, oldest first; empty when `version` is already behind its cursor.
pub async fn unapplied(
    conn: &mut PgConnection,
    consumer: &str,
    stream_id: Uuid,
    version: u64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let cursor = position(conn, consumer, stream_id, version).await?;
    if cursor >= version {
        return Ok(Vec::new());
    }
    load(conn, stream_id, cursor, Some(version)).await
}

/// Records that `consumer` acted on `stream_id` up to `version` (never moves back).
pub async fn advance(
    conn: &mut PgConnection,
    consumer: &str,
    stream_id: Uuid,
    version: u64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO consumer_cursors (consumer, stream_id, version) VALUES ($1, $2, $3)
         ON CONFLICT (consumer, stream_id) DO UPDATE
            SET version = GREATEST(consumer_cursors.version, EXCLUDED.version), updated_at = now()",
    )
    .bind(consumer)
    .bind(stream_id)
    .bind(i64::try_from(version).unwrap_or(i64::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

/// The consumer's cursor on the stream. Without one, a stream that began after the
/// consumer took to cursors starts at 0; an older one starts just before `version`, the
/// first event this consumer sees of it since (what came before was acted on without a
/// cursor). When it took to cursors: its row in `consumer_cursor_origins`, else when
/// cursors came (`consumer_cursor_origin`).
async fn position(
    conn: &mut PgConnection,
    consumer: &str,
    stream_id: Uuid,
    version: u64,
) -> Result<u64, StoreError> {
    let stored: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM consumer_cursors WHERE consumer = $1 AND stream_id = $2",
    )
    .bind(consumer)
    .bind(stream_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(stored) = stored {
        return Ok(u64::try_from(stored).unwrap_or(0));
    }
    let older: Option<bool> = sqlx::query_scalar(
        "SELECT MIN(e.seq) <= COALESCE(
                (SELECT seq FROM consumer_cursor_origins WHERE consumer = $2),
                (SELECT seq FROM consumer_cursor_origin))
           FROM events e WHERE e.stream_id = $1",
    )
    .bind(stream_id)
    .bind(consumer)
    .fetch_one(&mut *conn)
    .await?;
    Ok(if older == Some(true) {
        version.saturating_sub(1)
    } else {
        0
    })
}
