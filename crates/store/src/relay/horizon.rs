//! The horizon: how far the relay may read without ever skipping a row that commits late.
//!
//! Each `events` row stores its writer's top-level transaction id (`tx_id =
//! pg_current_xact_id()`, an `xid8`), and the relay reads in `(tx_id, seq)` order. A row may
//! be published only once no transaction with a *smaller* id can still commit a row; the
//! horizon is the smallest id that might.
//!
//! **Why not `pg_snapshot_xmin(pg_current_snapshot())`.** That is the oldest transaction in
//! progress anywhere in the PostgreSQL *cluster*: an open writing transaction in any other
//! database (another deployment, a test's database, a `CREATE DATABASE`, an `ANALYZE`) held
//! every relay back, though it can never insert into this database's `events`.
//!
//! **The horizon scoped to this database.** In one statement, so everything below uses the
//! statement's single snapshot S (the one `events` is scanned with):
//!
//! ```text
//! horizon = least( xmax(S),
//!                  min { x in xip(S) : x is not known to belong to another database } )
//! ```
//!
//! - A transaction with an id below `xmax(S)` that is not in `xip(S)` had finished when S was
//!   taken: its rows are visible to the scan if it committed, and never will be otherwise.
//! - A transaction that takes its id after S gets one at or above `xmax(S)`.
//! - So the only rows that could still appear below the horizon belong to transactions in
//!   `xip(S)`, and the horizon stops at the first of those that could be ours.
//! - "Known to belong to another database" means a session of `pg_stat_activity` with a
//!   different `datid` has it as its `backend_xid`, or a prepared transaction of another
//!   database has it. A session never changes database and an id never changes owner, so
//!   when that lookup is read does not matter. Anything not identified — the session ended
//!   meanwhile, a prepared transaction of this database, a row hidden from an unprivileged
//!   role — counts as ours: the horizon is only ever too low (a later publish), never too
//!   high (a skipped row).
//! - A transaction in this database that inserted an event has an id (it wrote), is in
//!   `xip(S)` until it ends, and holds the horizon at its id: the per-stream order guarantee
//!   of the stream lock (`event_store`) is kept.
//!
//! **Ids and epochs.** Every `xid8` compared with `tx_id` comes from `pg_current_snapshot()`,
//! which carries the epoch, so wraparound of the 32-bit counter never reorders anything. The
//! only 32-bit comparison is equality between an id in `xip(S)` (cast to `xid`) and a live
//! session's `backend_xid`: ids in progress span far less than 2³¹, so the low 32 bits
//! identify one of them unambiguously.

/// The next batch past the checkpoint `($1, $2)`, below the horizon, at most `$3` rows.
pub(super) const NEXT_BATCH: &str = "
WITH snapshot AS MATERIALIZED (
    SELECT pg_current_snapshot() AS s
),
elsewhere AS (
    SELECT backend_xid AS xid
      FROM pg_stat_activity
     WHERE backend_xid IS NOT NULL
       AND datid IS DISTINCT FROM (SELECT oid FROM pg_database WHERE datname = current_database())
    UNION ALL
    SELECT transaction FROM pg_prepared_xacts WHERE database <> current_database()
),
horizon AS (
    SELECT LEAST(
               pg_snapshot_xmax(s),
               (SELECT min(x) FROM pg_snapshot_xip(s) AS x
                 WHERE NOT EXISTS (SELECT 1 FROM elsewhere e WHERE e.xid = x::xid))
           ) AS tx_id
      FROM snapshot
)
SELECT seq, tx_id::text AS tx_id, event_id, stream_type, stream_id, version, event_type,
       payload, trace_context
  FROM events
 WHERE (tx_id, seq) > ($1::text::xid8, $2)
   AND tx_id < (SELECT tx_id FROM horizon)
 ORDER BY tx_id, seq
 LIMIT $3";
