//! Consumer cursors: how far each case-event consumer has acted on each stream, so it acts
//! on version v only after every earlier version, filling a gap from the event store.
//!
//! Call these under the streams' locks ([`crate::Store::open_cases`]) or the consumer's own
//! ([`crate::Store::open_cursors`]): the lock is what keeps two deliveries of one stream
//! from reading the same cursor.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::event_store::load;
use crate::{StoreError, StoredEvent};

/// The events of each stream that `consumer` has not acted on, up to and including the
/// highest version delivered of it, oldest first; each stream is named with the lowest and
/// the highest version delivered of it. The cursors in one statement, then each stream's
/// events; the streams with nothing to act on are left out.
pub async fn unapplied_many(
    conn: &mut PgConnection,
    consumer: &str,
    streams: &[(Uuid, u64, u64)],
) -> Result<BTreeMap<Uuid, Vec<StoredEvent>>, StoreError> {
    let ids: Vec<Uuid> = streams.iter().map(|(id, _, _)| *id).collect();
    let lowest: Vec<i64> = streams.iter().map(|(_, low, _)| as_i64(*low)).collect();
    // A stream without a cursor: one that began after the consumer took to cursors starts
    // at 0; an older one starts just before the first event this consumer sees of it since
    // (what came before was acted on without a cursor). When it took to cursors: its row
    // in `consumer_cursor_origins`, else when cursors came (`consumer_cursor_origin`).
    let cursors: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT s.id,
                COALESCE(c.version,
                         CASE WHEN (SELECT MIN(e.seq) FROM events e WHERE e.stream_id = s.id)
                                   <= COALESCE((SELECT seq FROM consumer_cursor_origins WHERE consumer = $1),
                                               (SELECT seq FROM consumer_cursor_origin))
                              THEN s.lowest - 1 ELSE 0 END)
           FROM unnest($2::uuid[], $3::bigint[]) AS s(id, lowest)
           LEFT JOIN consumer_cursors c ON c.consumer = $1 AND c.stream_id = s.id",
    )
    // Planned for its values, so the cursors are read by key, not scanned.
    .persistent(false)
    .bind(consumer)
    .bind(&ids)
    .bind(&lowest)
    .fetch_all(&mut *conn)
    .await?;
    let mut pending: BTreeMap<Uuid, Vec<StoredEvent>> = BTreeMap::new();
    for (id, cursor) in cursors {
        let Some((_, _, highest)) = streams.iter().find(|(s, _, _)| *s == id) else {
            continue;
        };
        let cursor = u64::try_from(cursor).unwrap_or(0);
        if cursor < *highest {
            // One stream's index range per statement: a join over all the streams, planned
            // on a young table's statistics, scanned `events` (5.8 ms a call under
            // `bench-greeting`, pg_stat_statements), where this takes 0.03 ms.
            let events = load(conn, id, cursor, Some(*highest)).await?;
            if !events.is_empty() {
                pending.insert(id, events);
            }
        }
    }
    Ok(pending)
}

fn as_i64(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

/// Records that `consumer` acted on each stream up to its version (never moves back), in
/// one statement (each stream named once).
pub async fn advance_many(
    conn: &mut PgConnection,
    consumer: &str,
    streams: &[(Uuid, u64)],
) -> Result<(), StoreError> {
    if streams.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = streams.iter().map(|(id, _)| *id).collect();
    let versions: Vec<i64> = streams.iter().map(|(_, v)| as_i64(*v)).collect();
    sqlx::query(
        "INSERT INTO consumer_cursors (consumer, stream_id, version)
         SELECT $1, s.id, s.version FROM unnest($2::uuid[], $3::bigint[]) AS s(id, version)
         ON CONFLICT (consumer, stream_id) DO UPDATE
            SET version = GREATEST(consumer_cursors.version, EXCLUDED.version), updated_at = now()",
    )
    .bind(consumer)
    .bind(&ids)
    .bind(&versions)
    .execute(conn)
    .await?;
    Ok(())
}
