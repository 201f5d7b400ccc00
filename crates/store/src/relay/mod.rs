//! The relay: committed events from PostgreSQL to JetStream, in per-stream order.
//!
//! One relay leads at a time: it holds a session-level `pg_try_advisory_lock` on a dedicated
//! connection (standbys retry every second; a dead leader's session ends and frees the
//! lock). Each pass reads the next batch **below the horizon** ([`horizon`]: the oldest
//! transaction of *this database* that could still commit an event), ordered by
//! `(tx_id, seq)`: every transaction with a smaller id has finished, so a row that commits
//! late can never be skipped (a serial cursor would skip it). The batch is published in
//! waves holding at most one event per stream — a retried publish would otherwise land
//! behind a later one — with `Nats-Msg-Id` = event id, so republishing after a crash is
//! absorbed by JetStream's duplicate window. The checkpoint moves only past acknowledged
//! events, and only while this relay's epoch is current (a deposed leader cannot move it).
//!
//! **Never silently stalled.** The leader measures its lag every second ([`lag`]; exported by
//! [`RelayMetrics`]) and, when events have waited longer than
//! [`RelayConfig::warn_after`], logs at warn (at most every [`RelayConfig::warn_every`])
//! which sessions hold the horizon and the last publish error.
//!
//! **A cut network.** The leader session asks the server for short TCP keepalives
//! ([`crate::session`]), so PostgreSQL ends a cut-off leader's session — freeing the lock
//! for a standby — in about ten seconds. The leader itself bounds every statement with
//! [`RelayConfig::statement_deadline`] (sqlx offers no client keepalive), so a cut-off leader
//! stops within that deadline instead of waiting on the kernel.

mod horizon;
pub mod lag;
mod metrics;

pub use lag::{Holder, Lag};
pub use metrics::RelayMetrics;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use deskie_bus::{Bus, BusError, EVENT_TYPE_HEADER, Outgoing, STREAM_VERSION_HEADER};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::StoreError;
use lag::LagWatch;

/// Why a leadership ended.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what} took longer than {after:?}: PostgreSQL is unreachable or stuck")]
    Deadline { what: &'static str, after: Duration },
}

impl From<sqlx::Error> for RelayError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Checkpoint name (one per relay; one relay per deployment today).
    pub name: String,
    /// Events read per pass.
    pub batch_size: i64,
    /// Pause when there is nothing to publish.
    pub idle_poll: Duration,
    /// Longest a statement on the leader session may take: the server's `statement_timeout`,
    /// and (with a second's grace) the client's own deadline, past which the leader drops
    /// the session as dead. Also bounds connecting.
    pub statement_deadline: Duration,
    /// How often the leader measures its lag.
    pub measure_lag_every: Duration,
    /// Warn once events have waited this long.
    pub warn_after: Duration,
    /// At most one such warning per this interval.
    pub warn_every: Duration,
    /// The first pause after a publish failed (NATS away, the events stream full); it
    /// doubles with each failed pass up to [`RelayConfig::max_backoff`].
    pub first_backoff: Duration,
    /// The longest pause between failed passes.
    pub max_backoff: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            name: "events".into(),
            batch_size: 500,
            idle_poll: Duration::from_millis(20),
            statement_deadline: Duration::from_secs(5),
            measure_lag_every: Duration::from_secs(1),
            warn_after: Duration::from_secs(5),
            warn_every: Duration::from_secs(30),
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Publishes the event store to JetStream.
#[derive(Debug, Clone)]
pub struct Relay {
    database_url: String,
    bus: Bus,
    config: RelayConfig,
    metrics: Option<RelayMetrics>,
}

struct Row_ {
    seq: i64,
    tx_id: String,
    event_id: Uuid,
    stream_type: String,
    stream_id: Uuid,
    version: i64,
    event_type: String,
    payload: Vec<u8>,
    trace_context: serde_json::Value,
}

struct Leadership {
    conn: PgConnection,
    epoch: i64,
    last_tx: String,
    last_seq: i64,
    /// The last publish failure, for the stall warning.
    last_publish_error: Option<String>,
    /// Failed passes in a row (0 after a pass that published all it read).
    failed_passes: u32,
}

impl Relay {
    /// A relay over the database at `database_url`.
    pub fn new(database_url: &str, bus: Bus, config: RelayConfig) -> Self {
        Self {
            database_url: database_url.to_owned(),
            bus,
            config,
            metrics: None,
        }
    }

    /// Records leadership, lag and progress in `metrics` (to serve on `/metrics`).
    pub fn with_metrics(mut self, metrics: RelayMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs until `shutdown`: waits for leadership, then publishes. Any database or NATS
    /// failure drops leadership (closing the session frees the lock) and starts over.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let led = self.lead(&shutdown).await;
            if let Some(metrics) = &self.metrics {
                metrics.set_leader(false);
            }
            if let Err(error) = led {
                tracing::warn!(relay = %self.config.name, %error, "relay interrupted; starting over");
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn lead(&self, shutdown: &CancellationToken) -> Result<(), RelayError> {
        let Some(mut leadership) = self.acquire().await? else {
            return Ok(());
        };
        tracing::info!(relay = %self.config.name, epoch = leadership.epoch, "relay is the leader");
        if let Some(metrics) = &self.metrics {
            metrics.set_leader(true);
        }
        let mut watch = LagWatch::new(
            self.config.measure_lag_every,
            self.config.warn_after,
            self.config.warn_every,
        );
        let mut published_total: u64 = 0;
        while !shutdown.is_cancelled() {
            let batch = self.next_batch(&mut leadership).await?;
            let published = self.publish_batch(&batch, &mut leadership).await;
            if published > 0 {
                let last = &batch[published - 1];
                if !self
                    .checkpoint(&mut leadership, &last.tx_id, last.seq)
                    .await?
                {
                    tracing::warn!(relay = %self.config.name, "another relay took over; standing down");
                    return Ok(());
                }
                published_total += published as u64;
                if let Some(metrics) = &self.metrics {
                    metrics.count_published(published as u64);
                }
                tracing::debug!(published, published_total, "relay progress");
            }
            // Measured after the pass: what it shows was not publishable by this pass.
            if watch.measure_due() {
                self.watch_lag(&mut leadership, &mut watch).await?;
            }
            let pause = if published < batch.len() {
                // NATS refused (the events stream is full) or is away: back off, growing
                // with each failed pass, then resume from the checkpoint.
                leadership.failed_passes = leadership.failed_passes.saturating_add(1);
                backoff(
                    self.config.first_backoff,
                    self.config.max_backoff,
                    leadership.failed_passes,
                )
            } else if batch.is_empty() {
                self.config.idle_poll
            } else {
                continue;
            };
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
        let _ = leadership.conn.close().await;
        Ok(())
    }

    /// Measures the lag into the metrics and warns, rate limited, when events have waited
    /// too long: with the sessions of this database holding the horizon back and the last
    /// publish error, whichever is the cause.
    async fn watch_lag(
        &self,
        leadership: &mut Leadership,
        watch: &mut LagWatch,
    ) -> Result<(), RelayError> {
        let (last_tx, last_seq) = (leadership.last_tx.clone(), leadership.last_seq);
        let lag = self
            .bounded(
                "measuring the lag",
                lag::measure(&mut leadership.conn, &last_tx, last_seq),
            )
            .await??;
        if let Some(metrics) = &self.metrics {
            metrics.record(&lag);
        }
        if watch.warn_due(&lag) {
            let holders = self
                .bounded(
                    "reading pg_stat_activity",
                    lag::holders(&mut leadership.conn),
                )
                .await??;
            let holders: Vec<String> = holders.iter().map(ToString::to_string).collect();
            tracing::warn!(
                relay = %self.config.name,
                unpublished = lag.unpublished,
                oldest_age_secs = lag.oldest_age_secs,
                holding_the_horizon = ?holders,
                last_publish_error = ?leadership.last_publish_error,
                "relay: committed events are waiting to be published"
            );
        }
        Ok(())
    }

    /// `work` on the leader session, or [`RelayError::Deadline`] once the statement deadline
    /// (plus a second, so the server's own `statement_timeout` speaks first) has passed.
    async fn bounded<T>(
        &self,
        what: &'static str,
        work: impl Future<Output = T>,
    ) -> Result<T, RelayError> {
        let after = self.config.statement_deadline + Duration::from_secs(1);
        tokio::time::timeout(after, work)
            .await
            .map_err(|_| RelayError::Deadline { what, after })
    }

    /// Takes the leader lock and bumps the epoch, or `None` when another relay leads.
    async fn acquire(&self) -> Result<Option<Leadership>, RelayError> {
        self.bounded("taking the leader lock", self.try_acquire())
            .await?
    }

    async fn try_acquire(&self) -> Result<Option<Leadership>, RelayError> {
        let options: PgConnectOptions = self
            .database_url
            .parse()
            .map_err(|e: sqlx::Error| StoreError::BadUrl(e.to_string()))?;
        let options = crate::session::dedicated(
            options,
            &format!("deskie-relay:{}", self.config.name),
            self.config.statement_deadline,
        );
        let mut conn = PgConnection::connect_with(&options).await?;
        crate::session::fill_in_defaults(&mut conn).await?;
        let lock_key = format!("deskie-relay:{}", self.config.name);
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(&lock_key)
            .fetch_one(&mut conn)
            .await?;
        if !got {
            let _ = conn.close().await;
            return Ok(None);
        }
        sqlx::query("INSERT INTO relay_checkpoint (relay) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(&self.config.name)
            .execute(&mut conn)
            .await?;
        let row = sqlx::query(
            "UPDATE relay_checkpoint SET epoch = epoch + 1, updated_at = now() WHERE relay = $1
             RETURNING epoch, last_tx::text AS last_tx, last_seq",
        )
        .bind(&self.config.name)
        .fetch_one(&mut conn)
        .await?;
        Ok(Some(Leadership {
            epoch: row.try_get("epoch")?,
            last_tx: row.try_get("last_tx")?,
            last_seq: row.try_get("last_seq")?,
            last_publish_error: None,
            failed_passes: 0,
            conn,
        }))
    }

    async fn next_batch(&self, leadership: &mut Leadership) -> Result<Vec<Row_>, RelayError> {
        let query = sqlx::query(horizon::NEXT_BATCH)
            .bind(&leadership.last_tx)
            .bind(leadership.last_seq)
            .bind(self.config.batch_size)
            .fetch_all(&mut leadership.conn);
        let rows = self.bounded("reading the next batch", query).await??;
        rows.into_iter()
            .map(|r| {
                Ok(Row_ {
                    seq: r.try_get("seq")?,
                    tx_id: r.try_get("tx_id")?,
                    event_id: r.try_get("event_id")?,
                    stream_type: r.try_get("stream_type")?,
                    stream_id: r.try_get("stream_id")?,
                    version: r.try_get("version")?,
                    event_type: r.try_get("event_type")?,
                    payload: r.try_get("payload")?,
                    trace_context: r.try_get("trace_context")?,
                })
            })
            .collect()
    }

    /// Publishes `batch` in waves: the first holds each stream's first event of the batch,
    /// the next each stream's second, and so on, so a wave waits for its acknowledgements
    /// only as often as one stream has events in the batch (a transaction writes a case's
    /// events side by side; cutting a wave at the first repeated stream made it one or two
    /// events long). Returns how many events from the start of the batch (the checkpoint's
    /// order) are acknowledged; one acknowledged past that prefix is published again in the
    /// next pass and absorbed by the duplicate window.
    async fn publish_batch(&self, batch: &[Row_], leadership: &mut Leadership) -> usize {
        let rounds = rounds(batch.iter().map(|row| row.stream_id));
        let waves = rounds.iter().max().map_or(0, |last| last + 1);
        let mut acked = vec![false; batch.len()];
        for round in 0..waves {
            let members: Vec<usize> = (0..batch.len()).filter(|i| rounds[*i] == round).collect();
            let wave: Vec<Outgoing> = members.iter().map(|i| self.outgoing(&batch[*i])).collect();
            let results = self.bus.publish_all(wave).await;
            let mut failed = None;
            for (index, result) in members.iter().zip(&results) {
                match result {
                    Ok(_) => acked[*index] = true,
                    Err(error) => {
                        failed.get_or_insert(error);
                    }
                }
            }
            match failed {
                Some(error) => {
                    self.publish_failed(leadership, error);
                    break;
                }
                None => self.publish_succeeded(leadership),
            }
        }
        acked.iter().take_while(|acked| **acked).count()
    }

    /// Records a failed publish: logged when a burst of failures starts or its cause
    /// changes, not on every pass; counted by reason.
    fn publish_failed(&self, leadership: &mut Leadership, error: &BusError) {
        let full = matches!(error, BusError::StreamFull(_));
        let text = error.to_string();
        if leadership.last_publish_error.as_deref() != Some(text.as_str()) {
            if full {
                tracing::error!(
                    relay = %self.config.name,
                    %error,
                    "the events stream is full: the relay backs off and retries; events wait \
                     in PostgreSQL until old ones expire or DESKIE_NATS_EVENTS_MAX_BYTES is \
                     raised (docs/operations.md)"
                );
            } else {
                tracing::warn!(relay = %self.config.name, %error, "relay publish failed; backing off");
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics.publish_failed(full);
        }
        leadership.last_publish_error = Some(text);
    }

    fn publish_succeeded(&self, leadership: &mut Leadership) {
        if let Some(error) = leadership.last_publish_error.take() {
            tracing::info!(
                relay = %self.config.name,
                failed_passes = leadership.failed_passes,
                last_error = %error,
                "relay publishes again"
            );
        }
        leadership.failed_passes = 0;
        if let Some(metrics) = &self.metrics {
            metrics.set_stream_full(false);
        }
    }

    fn outgoing(&self, row: &Row_) -> Outgoing {
        let mut headers = HeaderMap::new();
        if let serde_json::Value::Object(context) = &row.trace_context {
            for (name, value) in context {
                if let Some(value) = value.as_str() {
                    headers.insert(name.as_str(), value);
                }
            }
        }
        headers.insert(EVENT_TYPE_HEADER, row.event_type.as_str());
        headers.insert(STREAM_VERSION_HEADER, row.version.to_string().as_str());
        Outgoing {
            subject: self.bus.topology().event_subject(
                &row.stream_type,
                &row.stream_id.to_string(),
                &row.event_type,
            ),
            message_id: row.event_id.to_string(),
            headers,
            payload: Bytes::from(row.payload.clone()),
        }
    }

    /// Moves the checkpoint; `false` when a newer leader's epoch fenced us out.
    async fn checkpoint(
        &self,
        leadership: &mut Leadership,
        tx_id: &str,
        seq: i64,
    ) -> Result<bool, RelayError> {
        let update = sqlx::query(
            "UPDATE relay_checkpoint SET last_tx = $2::text::xid8, last_seq = $3, updated_at = now()
              WHERE relay = $1 AND epoch = $4",
        )
        .bind(&self.config.name)
        .bind(tx_id)
        .bind(seq)
        .bind(leadership.epoch)
        .execute(&mut leadership.conn);
        let updated = self.bounded("moving the checkpoint", update).await??;
        leadership.last_tx = tx_id.to_owned();
        leadership.last_seq = seq;
        Ok(updated.rows_affected() == 1)
    }
}

/// The pause after `failed_passes` failed passes in a row: `first`, doubling, at most `max`.
pub fn backoff(first: Duration, max: Duration, failed_passes: u32) -> Duration {
    let doublings = failed_passes.saturating_sub(1).min(16);
    first.saturating_mul(1 << doublings).min(max)
}

/// Each event's wave: how many events of its stream come before it in the batch.
fn rounds(streams: impl Iterator<Item = Uuid>) -> Vec<usize> {
    let mut seen: HashMap<Uuid, usize> = HashMap::new();
    streams
        .map(|stream| {
            let count = seen.entry(stream).or_default();
            *count += 1;
            *count - 1
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_the_first_pause_up_to_the_cap() {
        let (first, max) = (Duration::from_millis(500), Duration::from_secs(5));
        let pauses: Vec<u64> = (1..=7)
            .map(|n| backoff(first, max, n).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(backoff(first, max, u32::MAX), max);
    }

    #[test]
    fn each_wave_holds_one_event_per_stream_in_the_streams_order() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        // Two transactions: a's three events and b's two, then c's one and a's fourth.
        let batch = [a, a, a, b, b, c, a];
        assert_eq!(rounds(batch.into_iter()), [0, 1, 2, 0, 1, 0, 3]);
    }
}
