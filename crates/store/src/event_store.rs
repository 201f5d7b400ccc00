//! The append-only event store.
//!
//! Every write to a stream happens inside a [`StreamTx`], whose first statement is
//! `pg_advisory_xact_lock` on the stream. That lock assigns no transaction id, so the id is
//! taken only after the previous writer of the stream committed: per stream, `tx_id` order
//! is version order, which is what lets the relay publish each stream in order
//! (`reference/scale-out.md` §2.3 — without the lock, v2 was published before v1).

use chrono::Utc;
use deskie_proto::events::{Envelope, Event};
use deskie_proto::{Message, Timestamp};
use sqlx::{PgConnection, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::{Store, StoreError};

/// Takes the locks of the streams in `$1` (their ids as text) until the transaction ends,
/// one statement for one stream or many. They are taken in the order of their keys, so two
/// transactions locking several streams cannot deadlock; the aggregate takes every lock
/// before the statement returns (and, inside a larger statement, before its first row).
pub(crate) const LOCK_STREAMS: &str = "SELECT count(pg_advisory_xact_lock(key)) FROM (
         SELECT DISTINCT hashtextextended(id, 0) AS key FROM unnest($1::text[]) AS id
          ORDER BY 1 OFFSET 0) AS keys";

/// The text ids [`LOCK_STREAMS`] binds for `stream_ids`.
pub(crate) fn lock_ids(stream_ids: impl IntoIterator<Item = Uuid>) -> Vec<String> {
    stream_ids.into_iter().map(|id| id.to_string()).collect()
}

/// Identifies one stream: a case, an integration, a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamKey {
    /// "case", "integration", "group".
    pub stream_type: &'static str,
    /// The stream's id.
    pub stream_id: Uuid,
}

impl StreamKey {
    /// A stream key.
    pub fn new(stream_type: &'static str, stream_id: Uuid) -> Self {
        Self {
            stream_type,
            stream_id,
        }
    }
}

/// An event decided but not yet stored; the store assigns its version.
#[derive(Debug, Clone)]
pub struct EventDraft {
    /// The event.
    pub event: Event,
    /// What caused it (a webhook's `Nats-Msg-Id`, a request id, an event id).
    pub causation_id: String,
    /// The id shared by everything that follows from one outside request.
    pub correlation_id: String,
    /// The deciding service.
    pub emitted_by: &'static str,
}

/// What caused the events one write records: the same for all of them.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    /// What caused them (a webhook's `Nats-Msg-Id`, a request id, an event id).
    pub causation_id: &'a str,
    /// The id shared by everything that follows from one outside request.
    pub correlation_id: &'a str,
    /// The deciding service.
    pub emitted_by: &'static str,
}

impl<'a> Cause<'a> {
    /// A cause that starts a chain of its own (a webhook, a request): its id is both the
    /// causation and the correlation id.
    pub fn new_chain(id: &'a str, emitted_by: &'static str) -> Self {
        Self {
            causation_id: id,
            correlation_id: id,
            emitted_by,
        }
    }

    /// `events` as drafts of this cause.
    pub fn drafts(&self, events: impl IntoIterator<Item = Event>) -> Vec<EventDraft> {
        events
            .into_iter()
            .map(|event| EventDraft {
                event,
                causation_id: self.causation_id.to_owned(),
                correlation_id: self.correlation_id.to_owned(),
                emitted_by: self.emitted_by,
            })
            .collect()
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Global insertion order (not commit order).
    pub seq: i64,
    /// The envelope, as published.
    pub envelope: Envelope,
}

/// An event built for insertion.
#[derive(Debug)]
pub(crate) struct Encoded {
    event_id: Uuid,
    stream_type: &'static str,
    /// The stream it belongs to.
    pub(crate) stream_id: Uuid,
    /// The envelope, as it will be published.
    pub(crate) envelope: Envelope,
    event_type: &'static str,
    recorded_at: chrono::DateTime<Utc>,
    payload: Vec<u8>,
    /// The trace the event was decided in, for the relay to continue.
    trace_context: serde_json::Value,
}

/// A transaction holding one stream's lock: load, decide, append, commit.
#[derive(Debug)]
pub struct StreamTx {
    tx: Transaction<'static, Postgres>,
    key: StreamKey,
    version: u64,
    max_event_bytes: usize,
}

impl Store {
    /// Begins a transaction on `key`: takes the stream's advisory lock (first statement),
    /// then reads the stream's current version.
    pub async fn begin_stream(&self, key: StreamKey) -> Result<StreamTx, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(LOCK_STREAMS)
            .bind(lock_ids([key.stream_id]))
            .execute(&mut *tx)
            .await?;
        let version: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = $1")
                .bind(key.stream_id)
                .fetch_one(&mut *tx)
                .await?;
        Ok(StreamTx {
            tx,
            key,
            version: u64::try_from(version).unwrap_or(0),
            max_event_bytes: self.max_event_bytes(),
        })
    }

    /// Every event of a stream, oldest first.
    pub async fn load_stream(&self, stream_id: Uuid) -> Result<Vec<StoredEvent>, StoreError> {
        self.stream_events_after(stream_id, 0).await
    }

    /// The events of a stream with a version above `after`, oldest first (to fill a gap).
    pub async fn stream_events_after(
        &self,
        stream_id: Uuid,
        after: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        load(&mut conn, stream_id, after, None).await
    }
}

impl Store {
    /// The latest event of type `event_type` (e.g. `case_assigned`) in the stream below
    /// `version`: one indexed read, whatever the stream's length.
    pub async fn last_event_before(
        &self,
        stream_id: Uuid,
        event_type: &str,
        version: u64,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, event_id, payload FROM events
              WHERE stream_id = $1 AND version < $2 AND event_type = $3
              ORDER BY version DESC LIMIT 1",
        )
        .bind(stream_id)
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .bind(event_type)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| stored(&row)).transpose()
    }
}

impl StreamTx {
    /// The stream.
    pub fn key(&self) -> &StreamKey {
        &self.key
    }

    /// The stream's version when the lock was taken plus what this transaction appended.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Every stored event of the stream, oldest first.
    pub async fn history(&mut self) -> Result<Vec<StoredEvent>, StoreError> {
        load(&mut self.tx, self.key.stream_id, 0, None).await
    }

    /// Records that `consumer` processed `message_id`; `false` when it already had.
    pub async fn record_processed(
        &mut self,
        consumer: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        crate::inbox::record_processed(&mut self.tx, consumer, message_id).await
    }

    /// Appends `drafts` after `expected_version`; returns the stored envelopes.
    ///
    /// Fails with [`StoreError::VersionConflict`] when the stream moved on since the caller
    /// decided (the `UNIQUE (stream_id, version)` constraint backs this up for any writer
    /// that bypassed the lock), and with [`StoreError::EventTooLarge`] — before writing
    /// anything — when an encoded envelope exceeds [`Store::max_event_bytes`] (NATS could
    /// never carry it: [`crate::event_limit`]).
    pub async fn append(
        &mut self,
        expected_version: u64,
        drafts: Vec<EventDraft>,
    ) -> Result<Vec<Envelope>, StoreError> {
        if expected_version != self.version {
            return Err(StoreError::VersionConflict {
                stream_id: self.key.stream_id,
                expected: expected_version,
                actual: self.version,
            });
        }
        let encoded = encode_all(&self.key, self.version, drafts, self.max_event_bytes)?;
        insert(&mut self.tx, &encoded).await?;
        self.version += encoded.len() as u64;
        Ok(encoded.into_iter().map(|e| e.envelope).collect())
    }

    /// The transaction's connection, to update read models in the same transaction.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Commits: the inbox record, the events and any read-model change become visible together.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// `drafts` as the events after `version` of `key`, each encoded in the current trace and
/// measured: [`StoreError::EventTooLarge`] for the first one NATS could not carry, before
/// anything is written.
pub(crate) fn encode_all(
    key: &StreamKey,
    version: u64,
    drafts: Vec<EventDraft>,
    max_event_bytes: usize,
) -> Result<Vec<Encoded>, StoreError> {
    let trace_context = serde_json::Value::Object(
        deskie_telemetry::nats::current_context_pairs()
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
    );
    let mut encoded = Vec::with_capacity(drafts.len());
    for (draft, version) in drafts.into_iter().zip(version + 1..) {
        let event = encode(key, version, draft, trace_context.clone());
        if event.payload.len() > max_event_bytes {
            return Err(StoreError::EventTooLarge {
                event_type: event.event_type,
                stream_id: key.stream_id,
                size: event.payload.len(),
                limit: max_event_bytes,
            });
        }
        encoded.push(event);
    }
    Ok(encoded)
}

/// `draft` as the event at `version` of `key`.
fn encode(
    key: &StreamKey,
    version: u64,
    draft: EventDraft,
    trace_context: serde_json::Value,
) -> Encoded {
    let event_id = Uuid::now_v7();
    let now = Utc::now();
    let event_type = draft.event.type_name();
    let envelope = Envelope {
        event_id: event_id.to_string(),
        stream_type: key.stream_type.to_owned(),
        stream_id: key.stream_id.to_string(),
        version,
        occurred_at: Some(Timestamp {
            seconds: now.timestamp(),
            nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        causation_id: draft.causation_id,
        correlation_id: draft.correlation_id,
        emitted_by: draft.emitted_by.to_owned(),
        event: Some(draft.event),
    };
    Encoded {
        event_id,
        stream_type: key.stream_type,
        stream_id: key.stream_id,
        payload: envelope.encode_to_vec(),
        envelope,
        event_type,
        recorded_at: now,
        trace_context,
    }
}

/// Inserts `encoded` (of one stream or many) in one statement: a write's events cost one
/// round trip, however many. `ORDER BY` makes the global `seq` follow the given order, so
/// each stream's versions.
pub(crate) async fn insert(conn: &mut PgConnection, encoded: &[Encoded]) -> Result<(), StoreError> {
    let Some(first) = encoded.first() else {
        return Ok(());
    };
    let count = encoded.len();
    let mut event_ids = Vec::with_capacity(count);
    let mut stream_types = Vec::with_capacity(count);
    let mut stream_ids = Vec::with_capacity(count);
    let mut versions = Vec::with_capacity(count);
    let mut event_types = Vec::with_capacity(count);
    let mut payloads = Vec::with_capacity(count);
    let mut trace_contexts = Vec::with_capacity(count);
    let mut recorded = Vec::with_capacity(count);
    for event in encoded {
        event_ids.push(event.event_id);
        stream_types.push(event.stream_type);
        stream_ids.push(event.stream_id);
        versions.push(i64::try_from(event.envelope.version).unwrap_or(i64::MAX));
        event_types.push(event.event_type);
        payloads.push(event.payload.as_slice());
        trace_contexts.push(&event.trace_context);
        recorded.push(event.recorded_at);
    }
    let inserted = sqlx::query(
        "INSERT INTO events (event_id, stream_type, stream_id, version, event_type, payload, trace_context, recorded_at)
         SELECT e.event_id, e.stream_type, e.stream_id, e.version, e.event_type, e.payload, e.trace_context, e.recorded_at
           FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::bigint[], $5::text[], $6::bytea[], $7::jsonb[], $8::timestamptz[])
                WITH ORDINALITY AS e(event_id, stream_type, stream_id, version, event_type, payload, trace_context, recorded_at, n)
          ORDER BY e.n",
    )
    .bind(&event_ids)
    .bind(&stream_types)
    .bind(&stream_ids)
    .bind(&versions)
    .bind(&event_types)
    .bind(&payloads)
    .bind(&trace_contexts)
    .bind(&recorded)
    .execute(conn)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        // Only a writer that bypassed the stream's lock gets here; the statement does not
        // say which stream, so the first one is named.
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("events_stream_version") => {
            Err(StoreError::VersionConflict {
                stream_id: first.stream_id,
                expected: first.envelope.version - 1,
                actual: first.envelope.version,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The events of a stream with a version above `after` and, when given, at most `up_to`,
/// oldest first.
pub(crate) async fn load(
    conn: &mut PgConnection,
    stream_id: Uuid,
    after: u64,
    up_to: Option<u64>,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, event_id, payload FROM events
          WHERE stream_id = $1 AND version > $2 AND version <= $3
          ORDER BY version",
    )
    .bind(stream_id)
    .bind(i64::try_from(after).unwrap_or(i64::MAX))
    .bind(up_to.map_or(i64::MAX, |v| i64::try_from(v).unwrap_or(i64::MAX)))
    .fetch_all(conn)
    .await?;
    rows.iter().map(stored).collect()
}

/// A row of `seq, event_id, payload` as a stored event.
fn stored(row: &sqlx::postgres::PgRow) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq: row.try_get("seq")?,
        envelope: envelope_of(row)?,
    })
}

/// The envelope in a row's `event_id` and `payload` columns of `events`; a payload that does
/// not decode is [`StoreError::Corrupt`], naming the event.
pub fn envelope_of(row: &sqlx::postgres::PgRow) -> Result<Envelope, StoreError> {
    let event_id: Uuid = row.try_get("event_id")?;
    let payload: &[u8] = row.try_get("payload")?;
    Envelope::decode(payload).map_err(|e| StoreError::Corrupt {
        event_id,
        reason: e.to_string(),
    })
}
