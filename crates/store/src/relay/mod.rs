//! The relay: committed events from PostgreSQL to JetStream, in per-stream order.
//!
//! One relay leads at a time: it holds a session-level `pg_try_advisory_lock` on a dedicated
//! connection (standbys retry every second; a dead leader's session ends and frees the
//! lock). Each pass reads the next batch **below the `pg_snapshot_xmin` horizon**, ordered by
//! `(tx_id, seq)`: every transaction with a smaller id has finished, so a row that commits
//! late can never be skipped (a serial cursor would skip it). The batch is published in
//! waves holding at most one event per stream — a retried publish would otherwise land
//! behind a later one — with `Nats-Msg-Id` = event id, so republishing after a crash is
//! absorbed by JetStream's duplicate window. The checkpoint moves only past acknowledged
//! events, and only while this relay's epoch is current (a deposed leader cannot move it).

use std::collections::HashSet;
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use deskie_bus::{Bus, EVENT_TYPE_HEADER, Outgoing, STREAM_VERSION_HEADER};
use sqlx::{Connection, PgConnection, Row};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::StoreError;

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Checkpoint name (one per relay; one relay per deployment today).
    pub name: String,
    /// Events read per pass.
    pub batch_size: i64,
    /// Pause when there is nothing to publish.
    pub idle_poll: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            name: "events".into(),
            batch_size: 500,
            idle_poll: Duration::from_millis(20),
        }
    }
}

/// Publishes the event store to JetStream.
#[derive(Debug, Clone)]
pub struct Relay {
    database_url: String,
    bus: Bus,
    config: RelayConfig,
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
}

impl Relay {
    /// A relay over the database at `database_url`.
    pub fn new(database_url: &str, bus: Bus, config: RelayConfig) -> Self {
        Self {
            database_url: database_url.to_owned(),
            bus,
            config,
        }
    }

    /// Runs until `shutdown`: waits for leadership, then publishes. Any database or NATS
    /// failure drops leadership (closing the session frees the lock) and starts over.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.lead(&shutdown).await {
                Ok(()) => {}
                Err(error) => {
                    tracing::warn!(relay = %self.config.name, %error, "relay interrupted; starting over");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn lead(&self, shutdown: &CancellationToken) -> Result<(), StoreError> {
        let Some(mut leadership) = self.acquire().await? else {
            return Ok(());
        };
        tracing::info!(relay = %self.config.name, epoch = leadership.epoch, "relay is the leader");
        let mut published_total: u64 = 0;
        while !shutdown.is_cancelled() {
            let batch = self.next_batch(&mut leadership).await?;
            if batch.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(self.config.idle_poll) => {}
                }
                continue;
            }
            let published = self.publish_batch(&batch).await;
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
                tracing::debug!(published, published_total, "relay progress");
            }
            if published < batch.len() {
                // NATS refused or is away: back off, then resume from the checkpoint.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        let _ = leadership.conn.close().await;
        Ok(())
    }

    /// Takes the leader lock and bumps the epoch, or `None` when another relay leads.
    async fn acquire(&self) -> Result<Option<Leadership>, StoreError> {
        let mut conn = PgConnection::connect(&self.database_url).await?;
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
            conn,
        }))
    }

    async fn next_batch(&self, leadership: &mut Leadership) -> Result<Vec<Row_>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, tx_id::text AS tx_id, event_id, stream_type, stream_id, version, event_type, payload, trace_context
               FROM events
              WHERE (tx_id, seq) > ($1::text::xid8, $2)
                AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY tx_id, seq
              LIMIT $3",
        )
        .bind(&leadership.last_tx)
        .bind(leadership.last_seq)
        .bind(self.config.batch_size)
        .fetch_all(&mut leadership.conn)
        .await?;
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

    /// Publishes `batch` in waves of distinct streams; returns how many events, from the
    /// start of the batch, are acknowledged.
    async fn publish_batch(&self, batch: &[Row_]) -> usize {
        let mut done = 0;
        while done < batch.len() {
            let mut streams = HashSet::new();
            let wave_len = batch[done..]
                .iter()
                .take_while(|row| streams.insert(row.stream_id))
                .count();
            let wave: Vec<Outgoing> = batch[done..done + wave_len]
                .iter()
                .map(|row| self.outgoing(row))
                .collect();
            let results = self.bus.publish_all(wave).await;
            let acked = results.iter().take_while(|r| r.is_ok()).count();
            if let Some(Err(error)) = results.get(acked) {
                tracing::warn!(%error, "relay publish failed");
            }
            done += acked;
            if acked < wave_len {
                break;
            }
        }
        done
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
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE relay_checkpoint SET last_tx = $2::text::xid8, last_seq = $3, updated_at = now()
              WHERE relay = $1 AND epoch = $4",
        )
        .bind(&self.config.name)
        .bind(tx_id)
        .bind(seq)
        .bind(leadership.epoch)
        .execute(&mut leadership.conn)
        .await?;
        leadership.last_tx = tx_id.to_owned();
        leadership.last_seq = seq;
        Ok(updated.rows_affected() == 1)
    }
}
