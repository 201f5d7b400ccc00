//! The one way to write a case: [`Store::open_case`] takes the case's lock (and, with
//! [`Store::open_case_once`], records the inbox entry in the same transaction); the state
//! comes from the case's snapshot plus the events after it; [`CaseStream::record`] appends
//! the decided events and projects them into the case read model; [`CaseStream::commit`]
//! keeps the new snapshot and commits, all in one transaction.
//!
//! "Lock first", "inbox in the same transaction" and "project before commit" are kept here,
//! once: a writer cannot append to a case without them.
//!
//! **Bounded state.** The snapshot is the state compacted ([`CaseState::compacted`]): the
//! Chatra message ids, the delivered replies and the settled notifications, which grow with
//! the case, are not in it. The ids (and which reply each delivered one settled) live in
//! `case_chatra_messages`; a decision names the ones it asks about ([`Asking`]) and only
//! those are read. So opening a case costs the same with 10 messages or 10,000. A case
//! without a snapshot (written before snapshots existed, or of an older [`SNAPSHOT_FORMAT`])
//! has its whole history folded once, and its ids stored, by the first writer that opens it.

use deskie_domain::case::{CaseState, chatra_message_of};
use deskie_proto::events::{Envelope, Event};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::event_store::{STREAM_LOCK, load};
use crate::read_models::cases;
use crate::{Cause, Store, StoreError, StoredEvent, StreamKey, StreamTx};

/// The stream type of cases.
pub const CASE_STREAM: &str = "case";

/// The shape of the stored state. Raise it whenever [`CaseState`] changes in a way an older
/// snapshot would misread: every case is then folded from its history once more.
pub const SNAPSHOT_FORMAT: i32 = 1;

/// Takes the case's lock ([`STREAM_LOCK`]) and then writes the inbox entry, in one
/// statement. The lock comes first and the row's write is what assigns the transaction id,
/// so per stream the ids still follow the lock (`event_store.rs`).
static LOCK_WITH_INBOX: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH locked AS ({STREAM_LOCK})
         INSERT INTO inbox (consumer, message_id) SELECT $2, $3 FROM locked
         ON CONFLICT DO NOTHING"
    )
});

/// Which members of the case's growing sets a decision asks about.
#[derive(Debug, Default, Clone)]
pub struct Asking<'a> {
    /// Chatra message ids: whether the case holds them.
    pub chatra_message_ids: Vec<&'a str>,
    /// Reply ids: whether (and as what) they were delivered.
    pub replies: Vec<&'a str>,
}

impl<'a> Asking<'a> {
    /// Nothing beyond the compacted state.
    pub fn nothing() -> Self {
        Self::default()
    }

    /// Whether the case holds each of `ids`.
    pub fn chatra_messages(ids: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            chatra_message_ids: ids.into_iter().collect(),
            replies: Vec::new(),
        }
    }

    /// What became of the reply `reply_id`, and whether the case holds `chatra_message_id`.
    pub fn reply(reply_id: &'a str, chatra_message_id: Option<&'a str>) -> Self {
        Self {
            chatra_message_ids: chatra_message_id.into_iter().collect(),
            replies: vec![reply_id],
        }
    }

    fn is_empty(&self) -> bool {
        self.chatra_message_ids.is_empty() && self.replies.is_empty()
    }
}

/// A case's state as loaded, and what its commit must keep.
#[derive(Debug)]
struct Loaded {
    state: CaseState,
    /// Whether `state` holds every Chatra message id (a whole history was folded).
    complete: bool,
    /// Chatra message ids (with the reply each settled) to store at commit.
    new_ids: Vec<(String, Option<String>)>,
    /// Whether the snapshot must be written at commit.
    changed: bool,
}

/// One case, locked for writing (see the module documentation).
#[derive(Debug)]
pub struct CaseStream {
    tx: StreamTx,
    case_id: Uuid,
    /// The usable snapshot read when the case was opened, until the state is loaded.
    snapshot: Option<CaseState>,
    loaded: Option<Loaded>,
}

impl Store {
    /// Locks the case `case_id` for writing.
    pub async fn open_case(&self, case_id: Uuid) -> Result<CaseStream, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(STREAM_LOCK)
            .bind(case_id.to_string())
            .execute(&mut *tx)
            .await?;
        self.opened(tx, case_id).await
    }

    /// Locks the case and records that `consumer` handles `message_id`, in one statement
    /// ([`LOCK_WITH_INBOX`]); `None` (nothing written) when it already did.
    pub async fn open_case_once(
        &self,
        case_id: Uuid,
        consumer: &str,
        message_id: &str,
    ) -> Result<Option<CaseStream>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(LOCK_WITH_INBOX.as_str())
            .bind(case_id.to_string())
            .bind(consumer)
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        if inserted.rows_affected() != 1 {
            return Ok(None);
        }
        self.opened(tx, case_id).await.map(Some)
    }

    /// The case whose lock `tx` holds: its version and its snapshot ([`read_head`]), read in
    /// a statement after the lock's. Not in the same one: a statement's view of the data is
    /// fixed when it starts, before a lock taken within it.
    async fn opened(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        case_id: Uuid,
    ) -> Result<CaseStream, StoreError> {
        let (stored, snapshot) = read_head(&mut tx, case_id).await?;
        Ok(CaseStream {
            tx: self.stream_tx(tx, StreamKey::new(CASE_STREAM, case_id), stored),
            case_id,
            snapshot,
            loaded: None,
        })
    }

    /// The case's state as committed, without its lock: for a look before an outside call
    /// (whatever is then recorded is decided again under the lock).
    pub async fn case_state(
        &self,
        case_id: Uuid,
        asking: &Asking<'_>,
    ) -> Result<CaseState, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let (stored, snapshot) = read_head(&mut conn, case_id).await?;
        let stored = u64::try_from(stored).ok();
        Ok(complete_state(&mut conn, case_id, snapshot, stored, asking)
            .await?
            .state)
    }
}

impl CaseStream {
    /// The case.
    pub fn case_id(&self) -> Uuid {
        self.case_id
    }

    /// The case's version: what was stored when the lock was taken plus what was recorded.
    pub fn version(&self) -> u64 {
        self.tx.version()
    }

    /// The transaction's connection, for other rows that must commit with the case (a
    /// ledger row, a cursor, a read model).
    pub fn connection(&mut self) -> &mut PgConnection {
        self.tx.connection()
    }

    /// Records that `consumer` handled `message_id` in this transaction; `false` when it
    /// already had.
    pub async fn first_time(
        &mut self,
        consumer: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        self.tx.record_processed(consumer, message_id).await
    }

    /// The case's state, with the members of its growing sets that `asking` names.
    pub async fn state(&mut self, asking: &Asking<'_>) -> Result<&CaseState, StoreError> {
        Ok(&self.loaded(asking).await?.state)
    }

    /// The state as loaded, loading it (with `asking`) the first time; later calls add what
    /// `asking` names.
    async fn loaded(&mut self, asking: &Asking<'_>) -> Result<&mut Loaded, StoreError> {
        let Self {
            tx,
            case_id,
            snapshot,
            loaded,
        } = self;
        match loaded {
            Some(loaded) => {
                if !loaded.complete && !asking.is_empty() {
                    learn(tx.connection(), *case_id, &mut loaded.state, asking).await?;
                }
                Ok(loaded)
            }
            None => {
                let version = tx.version();
                let state = complete_state(
                    tx.connection(),
                    *case_id,
                    snapshot.take(),
                    Some(version),
                    asking,
                )
                .await?;
                Ok(loaded.insert(state))
            }
        }
    }

    /// The stored events of the case with a version above `after`, oldest first, and at
    /// most `up_to` (a consumer's gap, a rule's batch).
    pub async fn events_between(
        &mut self,
        after: u64,
        up_to: Option<u64>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        load(self.tx.connection(), self.case_id, after, up_to).await
    }

    /// Appends the decided `events` of `cause` after the current version, folds them into
    /// the state, and projects them into the case read model, in this transaction; the
    /// stored envelopes.
    pub async fn record(
        &mut self,
        events: Vec<Event>,
        cause: &Cause<'_>,
    ) -> Result<Vec<Envelope>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // Loaded before the append, so the snapshot's tail is read at the locked version.
        self.loaded(&Asking::nothing()).await?;
        let expected = self.tx.version();
        let stored = self.tx.append(expected, cause.drafts(events)).await?;
        let loaded = self.loaded(&Asking::nothing()).await?;
        for envelope in &stored {
            if let Some(event) = &envelope.event {
                loaded.fold(event);
            }
        }
        loaded.changed = true;
        cases::catch_up_with(self.tx.connection(), self.case_id, &stored).await?;
        Ok(stored)
    }

    /// Keeps the new snapshot (when the state moved) and commits: the inbox entry, the
    /// events, the projection and the snapshot become visible together.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        if let Some(loaded) = self.loaded.take()
            && loaded.changed
            && loaded.state.version > 0
        {
            save(self.tx.connection(), self.case_id, &loaded).await?;
        }
        self.tx.commit().await
    }
}

impl Loaded {
    fn fold(&mut self, event: &Event) {
        self.state.apply(event);
        if let Some((id, reply)) = chatra_message_of(event) {
            self.new_ids.push((id.to_owned(), reply.map(str::to_owned)));
        }
    }
}

/// The case's stored version and its usable snapshot, in one statement (so one view of
/// the data, with or without the case's lock).
async fn read_head(
    conn: &mut PgConnection,
    case_id: Uuid,
) -> Result<(i64, Option<CaseState>), StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = $1) AS stored,
                s.version, s.format, s.state
           FROM (SELECT 1) AS one LEFT JOIN case_snapshots s ON s.case_id = $1",
    )
    .bind(case_id)
    .fetch_one(conn)
    .await?;
    let stored: i64 = row.try_get("stored")?;
    Ok((stored, usable_snapshot(&row, u64::try_from(stored).ok())))
}

/// The state in a snapshot row (`version`, `format`, `state`, all null when there is none),
/// if this build can use it: of [`SNAPSHOT_FORMAT`], and not ahead of the events (a
/// restored `events` table).
fn usable_snapshot(row: &sqlx::postgres::PgRow, stored_version: Option<u64>) -> Option<CaseState> {
    let format: i32 = row.try_get::<Option<i32>, _>("format").ok()??;
    let version: i64 = row.try_get::<Option<i64>, _>("version").ok()??;
    let state: sqlx::types::Json<CaseState> = row
        .try_get::<Option<sqlx::types::Json<CaseState>>, _>("state")
        .ok()??;
    let version = u64::try_from(version).ok()?;
    let consistent = version == state.0.version && stored_version.is_none_or(|v| version <= v);
    (format == SNAPSHOT_FORMAT && consistent).then_some(state.0)
}

/// `snapshot` (or, without one, the whole history) plus the events after it, then the
/// asked-about members. `stored_version`, when known, spares the read of an empty tail.
async fn complete_state(
    conn: &mut PgConnection,
    case_id: Uuid,
    usable: Option<CaseState>,
    stored_version: Option<u64>,
    asking: &Asking<'_>,
) -> Result<Loaded, StoreError> {
    let complete = usable.is_none();
    let mut loaded = Loaded {
        state: usable.unwrap_or_default(),
        complete,
        new_ids: Vec::new(),
        changed: false,
    };
    let tail = if stored_version == Some(loaded.state.version) {
        Vec::new()
    } else {
        load(conn, case_id, loaded.state.version, None).await?
    };
    if !tail.is_empty() {
        loaded.changed = true;
    }
    for stored in &tail {
        match &stored.envelope.event {
            Some(event) => loaded.fold(event),
            // An event this build cannot read still counts as a version.
            None => loaded.state.version = stored.envelope.version,
        }
    }
    if !complete && !asking.is_empty() {
        learn(conn, case_id, &mut loaded.state, asking).await?;
    }
    Ok(loaded)
}

/// Adds the asked-about Chatra message ids and delivered replies the case holds.
///
/// One lookup per kind asked about, each planned for its actual values (`persistent(false)`:
/// an unnamed statement). A prepared statement soon gets PostgreSQL's generic plan, which
/// takes a case to have the average number of rows and so reads every row of the case,
/// filtering by `= ANY($2)`: 1.8 ms on a case of 10,000 messages in `bench-case-length`
/// (`EXPLAIN` under `plan_cache_mode = force_generic_plan` shows it), against 0.02 ms for
/// the custom plan, whose index condition names the ids.
async fn learn(
    conn: &mut PgConnection,
    case_id: Uuid,
    state: &mut CaseState,
    asking: &Asking<'_>,
) -> Result<(), StoreError> {
    let lookups = [
        (
            "SELECT chatra_message_id, reply_id FROM case_chatra_messages
              WHERE case_id = $1 AND chatra_message_id = ANY($2)",
            &asking.chatra_message_ids,
        ),
        (
            "SELECT chatra_message_id, reply_id FROM case_chatra_messages
              WHERE case_id = $1 AND reply_id = ANY($2)",
            &asking.replies,
        ),
    ];
    for (statement, ids) in lookups {
        if ids.is_empty() {
            continue;
        }
        let rows = sqlx::query(statement)
            .persistent(false)
            .bind(case_id)
            .bind(ids)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let id: String = row.try_get("chatra_message_id")?;
            let reply: Option<String> = row.try_get("reply_id")?;
            state.learn_chatra_message(&id, reply.as_deref());
        }
    }
    Ok(())
}

/// Writes the compacted state and the new Chatra message ids, in one statement.
async fn save(conn: &mut PgConnection, case_id: Uuid, loaded: &Loaded) -> Result<(), StoreError> {
    let state = loaded.state.compacted();
    // One row per id (a statement may not update a row twice); a reply wins over none.
    let mut unique: std::collections::BTreeMap<&str, Option<&str>> = Default::default();
    for (id, reply) in &loaded.new_ids {
        let kept = unique.entry(id.as_str()).or_default();
        *kept = kept.or(reply.as_deref());
    }
    let (ids, replies): (Vec<&str>, Vec<Option<&str>>) = unique.into_iter().unzip();
    sqlx::query(
        "WITH snapshot AS (
             INSERT INTO case_snapshots (case_id, version, format, state) VALUES ($1, $2, $3, $4)
             ON CONFLICT (case_id) DO UPDATE
                SET version = EXCLUDED.version, format = EXCLUDED.format, state = EXCLUDED.state,
                    updated_at = now())
         INSERT INTO case_chatra_messages (case_id, chatra_message_id, reply_id)
         SELECT $1, id, reply FROM unnest($5::text[], $6::text[]) AS t(id, reply)
         ON CONFLICT (case_id, chatra_message_id) DO UPDATE
            SET reply_id = COALESCE(EXCLUDED.reply_id, case_chatra_messages.reply_id)",
    )
    .bind(case_id)
    .bind(i64::try_from(state.version).unwrap_or(i64::MAX))
    .bind(SNAPSHOT_FORMAT)
    .bind(sqlx::types::Json(&state))
    .bind(&ids)
    .bind(&replies)
    .execute(conn)
    .await?;
    Ok(())
}
