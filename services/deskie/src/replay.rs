//! `deskie replay`: every read model rebuilt from the event store.
//!
//! One transaction empties the read models and applies every stored event again, stream by
//! stream in version order (`ORDER BY stream_id, version`, the `events_stream_version`
//! index): case streams as runs folded into their rows and messages, a batch of streams
//! at once, with the same fence and the same result as the projector's `apply_case_event`
//! (`cases::project_folded`; a run that cannot follow its case goes event by event and is
//! skipped there), configuration streams through `apply_config_event`. Order across streams does not matter:
//! no read model reads another while being built.
//!
//! `deskie replay` refuses to start while other processes are connected to the database
//! (the services: they would wait on the rebuild's locks for its whole run), naming them;
//! `--force` rebuilds anyway. While it runs, the emptied tables are locked (`TRUNCATE` takes an exclusive lock), so
//! readers and writers of the read models wait and then see the rebuilt tables, never a
//! half-built one. Its writes also hold back the relay's `pg_snapshot_xmin` horizon until it
//! commits; events appended meanwhile are published afterwards. Events committed after
//! the rebuild read them are applied by their writer or the projector when they get the
//! lock, through the version fence.

use std::time::{Duration, Instant};

use deskie_proto::events::Envelope;
use deskie_store::event_store::envelope_of;
use deskie_store::read_models::{apply_config_event, cases};
use deskie_store::{Store, StoreError};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// Events read per query, and projected together: each case's run in the batch is folded
/// into its row and messages, written with one statement per kind for the whole batch
/// (`cases::project_folded`).
const BATCH: i64 = 5000;

/// Read models of configuration streams, rebuilt through `apply_config_event`.
const CONFIG_TABLES: [&str; 2] = ["groups", "integrations"];

/// Read models that exist only from some migration on; emptied (and rebuilt through
/// `apply_config_event`) when present.
const OPTIONAL_TABLES: [&str; 3] = ["agents", "agent_chatra_links", "rules"];

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Events read from the event store.
    pub events: u64,
    /// Case events that could not follow their case (a stream not starting with
    /// `case_opened`): left out, as the projector leaves them out.
    pub skipped: u64,
    /// Cases in the rebuilt read model.
    pub cases: u64,
    /// The tables emptied and rebuilt.
    pub tables: Vec<String>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Rebuilds every read model from the event store in one transaction, calling
/// `progress(done, total)` after each batch of events (and once at the start).
pub async fn rebuild(
    store: &Store,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport, StoreError> {
    let started = Instant::now();
    let mut tx = store.pool().begin().await?;
    let tables = empty_read_models(&mut tx).await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *tx)
        .await?;
    let total = u64::try_from(total).unwrap_or(0);
    progress(0, total);

    let (mut events, mut skipped) = (0u64, 0u64);
    let mut cursor = (Uuid::nil(), 0i64);
    loop {
        let batch = next_batch(&mut tx, cursor).await?;
        let Some(last) = batch.last() else { break };
        cursor = (last.0, last.1);
        events += batch.len() as u64;
        // Case streams as runs (a stream's events in the batch, in version order), folded
        // and written for the whole batch at once; configuration streams event by event.
        let mut runs: Vec<(Uuid, Vec<Envelope>)> = Vec::new();
        for (stream_id, _, stream_type, envelope) in batch {
            if stream_type != "case" {
                apply_config_event(&mut tx, &envelope).await?;
                continue;
            }
            match runs.last_mut() {
                Some((case_id, run)) if *case_id == stream_id => run.push(envelope),
                _ => runs.push((stream_id, vec![envelope])),
            }
        }
        for left in cases::project_folded(&mut tx, &runs).await? {
            for envelope in &runs[left].1 {
                if !cases::apply_case_event(&mut tx, envelope).await? {
                    tracing::warn!(case = %envelope.stream_id, version = envelope.version, "case event cannot follow its case; left out");
                    skipped += 1;
                }
            }
        }
        progress(events, total.max(events));
    }
    let cases: i64 = sqlx::query_scalar("SELECT count(*) FROM cases")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ReplayReport {
        events,
        skipped,
        cases: u64::try_from(cases).unwrap_or(0),
        tables,
        elapsed: started.elapsed(),
    })
}

/// The `application_name` `deskie replay` connects as (its own sessions are not "others").
pub const REPLAY_APPLICATION: &str = "deskie-replay";

/// Another process's session on the database.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OtherSession {
    /// Its backend's process id.
    pub pid: i32,
    /// Its `application_name` (`deskie-routing`, `psql`, …; empty when unset).
    pub application: String,
    /// Where it connects from (none for a Unix socket).
    pub client: Option<String>,
}

impl std::fmt::Display for OtherSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.application.is_empty() {
            "(no application name)"
        } else {
            &self.application
        };
        write!(f, "{name} pid {}", self.pid)?;
        if let Some(client) = &self.client {
            write!(f, " from {client}")?;
        }
        Ok(())
    }
}

/// Why `deskie replay` did not rebuild.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Services are connected: the rebuild would block them for its whole run.
    #[error(
        "{} other session(s) are connected to the database: {}. A rebuild locks every read model until it ends, so they would wait that long: stop the services first, or pass --force to rebuild while they wait",
        .0.len(),
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    OthersConnected(Vec<OtherSession>),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Client sessions on this database other than `deskie replay`'s own.
pub async fn other_sessions(store: &Store) -> Result<Vec<OtherSession>, StoreError> {
    let sessions = sqlx::query_as::<_, OtherSession>(
        "SELECT pid, COALESCE(application_name, '') AS application, client_addr::text AS client
           FROM pg_stat_activity
          WHERE datname = current_database()
            AND backend_type = 'client backend'
            AND pid <> pg_backend_pid()
            AND COALESCE(application_name, '') <> $1
          ORDER BY pid",
    )
    .bind(REPLAY_APPLICATION)
    .fetch_all(store.pool())
    .await?;
    Ok(sessions)
}

/// `deskie replay`: unless `force`, refuses while other sessions are connected; then
/// [`rebuild`] with a progress line on stderr about every second, and a summary on stdout
/// at the end. Connect `store` as [`REPLAY_APPLICATION`].
pub async fn run_with_progress(store: &Store, force: bool) -> Result<ReplayReport, ReplayError> {
    if !force {
        let others = other_sessions(store).await?;
        if !others.is_empty() {
            return Err(ReplayError::OthersConnected(others));
        }
    }
    let mut last_line: Option<(Instant, u64, u64)> = None;
    let report = rebuild(store, |done, total| {
        if last_line.is_none_or(|(at, _, _)| at.elapsed() >= Duration::from_secs(1)) {
            eprintln!("{}", progress_line(done, total));
            last_line = Some((Instant::now(), done, total));
        }
    })
    .await?;
    // The last batch is always shown, once.
    let end = (report.events, report.events);
    if last_line.map(|(_, done, total)| (done, total)) != Some(end) {
        eprintln!("{}", progress_line(end.0, end.1));
    }
    println!(
        "deskie: rebuilt {} from {} events in {:.1?}: {} cases{}",
        report.tables.join(", "),
        report.events,
        report.elapsed,
        report.cases,
        if report.skipped > 0 {
            format!("; {} case events left out (see the log)", report.skipped)
        } else {
            String::new()
        }
    );
    Ok(report)
}

/// The progress line `deskie replay` prints: `replayed 1200/5000 events (24%)`.
pub fn progress_line(done: u64, total: u64) -> String {
    let percent = (done.min(total) * 100).checked_div(total).unwrap_or(100);
    format!("replayed {done}/{total} events ({percent}%)")
}

/// Empties every read model; returns the tables emptied.
async fn empty_read_models(conn: &mut PgConnection) -> Result<Vec<String>, StoreError> {
    cases::truncate_all(conn).await?;
    let mut config: Vec<&str> = CONFIG_TABLES.to_vec();
    for table in OPTIONAL_TABLES {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&mut *conn)
            .await?;
        if exists {
            config.push(table);
        }
    }
    let sql = format!("TRUNCATE {}", config.join(", "));
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(conn).await?;
    Ok(["cases", "case_messages"]
        .into_iter()
        .chain(config)
        .map(str::to_owned)
        .collect())
}

/// The next events after `(stream_id, version)`, in stream and version order.
async fn next_batch(
    conn: &mut PgConnection,
    (stream_id, version): (Uuid, i64),
) -> Result<Vec<(Uuid, i64, String, Envelope)>, StoreError> {
    let rows = sqlx::query(
        "SELECT stream_id, version, stream_type, event_id, payload FROM events
          WHERE (stream_id, version) > ($1, $2)
          ORDER BY stream_id, version
          LIMIT $3",
    )
    .bind(stream_id)
    .bind(version)
    .bind(BATCH)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let envelope = envelope_of(row)?;
            Ok((
                row.try_get("stream_id")?,
                row.try_get("version")?,
                row.try_get("stream_type")?,
                envelope,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_show_counts_and_percent() {
        assert_eq!(progress_line(1200, 5000), "replayed 1200/5000 events (24%)");
        assert_eq!(progress_line(0, 0), "replayed 0/0 events (100%)");
        assert_eq!(progress_line(7, 7), "replayed 7/7 events (100%)");
    }
}
