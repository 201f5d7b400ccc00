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

use std::collections::{BTreeMap, BTreeSet, HashSet};

use deskie_domain::case::{CaseState, chatra_message_of};
use deskie_proto::events::{Envelope, Event};
use sqlx::{PgConnection, PgTransaction, Row};
use uuid::Uuid;

use crate::event_store::{Encoded, LOCK_STREAMS, encode_all, insert, load, lock_ids};
use crate::read_models::cases;
use crate::{Cause, Store, StoreError, StoredEvent, StreamKey};

/// The stream type of cases.
pub const CASE_STREAM: &str = "case";

/// The shape of the stored state. Raise it whenever [`CaseState`] changes in a way an older
/// snapshot would misread: every case is then folded from its history once more.
pub const SNAPSHOT_FORMAT: i32 = 1;

/// [`LOCK_STREAMS`] on the cases `$1`, then the inbox entries `$3` of consumer `$2`; returns
/// the ones that were new. The insert is the first write, which is what assigns the
/// transaction id, so per stream the ids still follow the lock (`event_store.rs`).
static LOCK_WITH_INBOX: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH locked AS ({LOCK_STREAMS})
         INSERT INTO inbox (consumer, message_id) SELECT $2, m FROM locked, unnest($3::text[]) AS m
         ON CONFLICT DO NOTHING
         RETURNING message_id"
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

/// One locked case of a [`CaseBatch`].
#[derive(Debug)]
struct Head {
    /// What was stored when the lock was taken.
    stored: u64,
    /// `stored` plus what was recorded.
    version: u64,
    /// The usable snapshot read when the case was opened, until the state is loaded.
    snapshot: Option<CaseState>,
    loaded: Option<Loaded>,
}

/// Cases locked for writing in one transaction: a consumer's batch of messages (routing's
/// webhooks) costs one statement per step for all its cases, and one commit.
///
/// Recorded events are folded into their case's state at once and stored, with their
/// projection, at [`CaseBatch::commit`] (or [`CaseBatch::flush`]).
#[derive(Debug)]
pub struct CaseBatch {
    tx: PgTransaction<'static>,
    cases: BTreeMap<Uuid, Head>,
    /// Recorded, not yet stored, in recording order.
    queued: Vec<Encoded>,
    max_event_bytes: usize,
}

/// One case, locked for writing (see the module documentation): a [`CaseBatch`] of one,
/// whose records are stored and projected at once.
#[derive(Debug)]
pub struct CaseStream {
    batch: CaseBatch,
    case_id: Uuid,
}

impl Store {
    /// Locks the case `case_id` for writing.
    pub async fn open_case(&self, case_id: Uuid) -> Result<CaseStream, StoreError> {
        let batch = self.open_cases(&[case_id]).await?;
        Ok(CaseStream { batch, case_id })
    }

    /// Locks every case of `case_ids` for writing, in one statement ([`LOCK_STREAMS`]).
    pub async fn open_cases(&self, case_ids: &[Uuid]) -> Result<CaseBatch, StoreError> {
        let case_ids: BTreeSet<Uuid> = case_ids.iter().copied().collect();
        let mut tx = self.pool().begin().await?;
        sqlx::query(LOCK_STREAMS)
            .bind(lock_ids(case_ids.iter().copied()))
            .execute(&mut *tx)
            .await?;
        self.opened(tx, case_ids).await
    }

    /// Opens a transaction holding only `consumer`'s own position on each of `case_ids`
    /// exclusive, not the cases: for a consumer that reads and writes rows of its own beside
    /// a case but never the case's stream, so it does not queue behind the case's writers
    /// (nor they behind it). Two deliveries of one case to `consumer` still take turns. The
    /// batch holds no case: asking it for a state or recording fails with
    /// [`StoreError::CaseNotLocked`].
    pub async fn open_cursors(
        &self,
        consumer: &str,
        case_ids: &[Uuid],
    ) -> Result<CaseBatch, StoreError> {
        let case_ids: BTreeSet<Uuid> = case_ids.iter().copied().collect();
        let keys: Vec<String> = case_ids
            .iter()
            .map(|case_id| format!("{consumer}/{case_id}"))
            .collect();
        let mut tx = self.pool().begin().await?;
        sqlx::query(LOCK_STREAMS)
            .bind(keys)
            .execute(&mut *tx)
            .await?;
        Ok(CaseBatch {
            tx,
            cases: BTreeMap::new(),
            queued: Vec::new(),
            max_event_bytes: self.max_event_bytes(),
        })
    }

    /// Locks the case and records that `consumer` handles `message_id`, in one statement
    /// ([`LOCK_WITH_INBOX`]); `None` (nothing written) when it already did.
    pub async fn open_case_once(
        &self,
        case_id: Uuid,
        consumer: &str,
        message_id: &str,
    ) -> Result<Option<CaseStream>, StoreError> {
        let (batch, fresh) = self
            .open_cases_once(consumer, &[(case_id, message_id)])
            .await?;
        Ok((fresh == [true]).then_some(CaseStream { batch, case_id }))
    }

    /// Locks every case of `entries` and records that `consumer` handles each entry's
    /// message, in one statement ([`LOCK_WITH_INBOX`]); with each entry, whether it is new
    /// (not handled before, and not named earlier in `entries`).
    pub async fn open_cases_once(
        &self,
        consumer: &str,
        entries: &[(Uuid, &str)],
    ) -> Result<(CaseBatch, Vec<bool>), StoreError> {
        let case_ids: BTreeSet<Uuid> = entries.iter().map(|(case_id, _)| *case_id).collect();
        let message_ids: Vec<&str> = entries.iter().map(|(_, message_id)| *message_id).collect();
        let mut tx = self.pool().begin().await?;
        let inserted: Vec<String> = sqlx::query_scalar(LOCK_WITH_INBOX.as_str())
            .bind(lock_ids(case_ids.iter().copied()))
            .bind(consumer)
            .bind(&message_ids)
            .fetch_all(&mut *tx)
            .await?;
        let mut new: HashSet<String> = inserted.into_iter().collect();
        let fresh = message_ids.iter().map(|id| new.remove(*id)).collect();
        Ok((self.opened(tx, case_ids).await?, fresh))
    }

    /// The cases whose locks `tx` holds: their versions and snapshots ([`read_heads`]),
    /// read in a statement after the locks'. Not in the same one: a statement's view of the
    /// data is fixed when it starts, before a lock taken within it.
    async fn opened(
        &self,
        mut tx: PgTransaction<'static>,
        case_ids: BTreeSet<Uuid>,
    ) -> Result<CaseBatch, StoreError> {
        let case_ids: Vec<Uuid> = case_ids.into_iter().collect();
        let cases = read_heads(&mut tx, &case_ids)
            .await?
            .into_iter()
            .map(|(case_id, stored, snapshot)| {
                let head = Head {
                    stored,
                    version: stored,
                    snapshot,
                    loaded: None,
                };
                (case_id, head)
            })
            .collect();
        Ok(CaseBatch {
            tx,
            cases,
            queued: Vec::new(),
            max_event_bytes: self.max_event_bytes(),
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
        let (stored, snapshot) = match read_heads(&mut conn, &[case_id]).await?.pop() {
            Some((_, stored, snapshot)) => (stored, snapshot),
            None => (0, None),
        };
        let mut loaded = [(
            case_id,
            complete_state(&mut conn, case_id, snapshot, stored).await?,
        )];
        learn(&mut conn, &mut loaded, |_| Some(asking)).await?;
        let [(_, loaded)] = loaded;
        Ok(loaded.state)
    }
}

impl CaseBatch {
    /// The locked cases, in id order.
    pub fn case_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.cases.keys().copied()
    }

    /// The case's version: what was stored when the lock was taken plus what was recorded.
    pub fn version(&self, case_id: Uuid) -> Result<u64, StoreError> {
        Ok(self.head(case_id)?.version)
    }

    /// The transaction's connection, for other rows that must commit with the cases.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The transaction itself, for a write that needs one to hold a lock to the commit
    /// (the ledger's [`crate::outbox::enqueue`]).
    pub fn transaction(&mut self) -> &mut PgTransaction<'static> {
        &mut self.tx
    }

    fn head(&self, case_id: Uuid) -> Result<&Head, StoreError> {
        self.cases
            .get(&case_id)
            .ok_or(StoreError::CaseNotLocked { case_id })
    }

    /// Loads the state of each case of `asking` not loaded yet, then adds the members of
    /// the growing sets each names: one lookup per kind for all of them.
    pub async fn load(&mut self, asking: &[(Uuid, Asking<'_>)]) -> Result<(), StoreError> {
        let mut loading = Vec::new();
        for (case_id, _) in asking {
            let head = self
                .cases
                .get_mut(case_id)
                .ok_or(StoreError::CaseNotLocked { case_id: *case_id })?;
            if head.loaded.is_none() {
                let loaded =
                    complete_state(&mut self.tx, *case_id, head.snapshot.take(), head.stored)
                        .await?;
                head.loaded = Some(loaded);
            }
            let Some(loaded) = head.loaded.take() else {
                continue;
            };
            loading.push((*case_id, loaded));
        }
        let result = learn(&mut self.tx, &mut loading, |case_id| {
            asking
                .iter()
                .find(|(asked, _)| *asked == case_id)
                .map(|(_, asking)| asking)
        })
        .await;
        // Put back before any error is returned: a state is never lost half-way.
        for (case_id, loaded) in loading {
            if let Some(head) = self.cases.get_mut(&case_id) {
                head.loaded = Some(loaded);
            }
        }
        result
    }

    /// The case's state, with the members of its growing sets that `asking` names.
    pub async fn state(
        &mut self,
        case_id: Uuid,
        asking: &Asking<'_>,
    ) -> Result<&CaseState, StoreError> {
        self.load(&[(case_id, asking.clone())]).await?;
        Ok(&self.loaded(case_id)?.state)
    }

    fn loaded(&mut self, case_id: Uuid) -> Result<&mut Loaded, StoreError> {
        self.cases
            .get_mut(&case_id)
            .and_then(|head| head.loaded.as_mut())
            .ok_or(StoreError::CaseNotLocked { case_id })
    }

    /// Records the decided `events` of `cause` after the case's current version and folds
    /// them into its state; they are stored and projected at the next [`Self::flush`] (or
    /// commit). The envelopes as they will be stored. An event too large to publish is
    /// refused before anything of this call is kept.
    pub async fn record(
        &mut self,
        case_id: Uuid,
        events: Vec<Event>,
        cause: &Cause<'_>,
    ) -> Result<Vec<Envelope>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // Loaded before the append, so the snapshot's tail is read at the locked version.
        self.load(&[(case_id, Asking::nothing())]).await?;
        let version = self.version(case_id)?;
        let key = StreamKey::new(CASE_STREAM, case_id);
        let encoded = encode_all(&key, version, cause.drafts(events), self.max_event_bytes)?;
        let loaded = self.loaded(case_id)?;
        for event in &encoded {
            if let Some(event) = &event.envelope.event {
                loaded.fold(event);
            }
        }
        loaded.changed = true;
        if let Some(head) = self.cases.get_mut(&case_id) {
            head.version += encoded.len() as u64;
        }
        let envelopes = encoded.iter().map(|e| e.envelope.clone()).collect();
        self.queued.extend(encoded);
        Ok(envelopes)
    }

    /// Stores the recorded events (one statement for all cases) and projects them into the
    /// case read model (one statement per kind for all cases, [`cases::project_recorded`]).
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let queued = std::mem::take(&mut self.queued);
        insert(&mut self.tx, &queued).await?;
        let mut by_case: BTreeMap<Uuid, Vec<Envelope>> = BTreeMap::new();
        for event in queued {
            by_case
                .entry(event.stream_id)
                .or_default()
                .push(event.envelope);
        }
        let by_case: Vec<(Uuid, Vec<Envelope>)> = by_case.into_iter().collect();
        cases::project_recorded(&mut self.tx, &by_case).await
    }

    /// Stores what was recorded, keeps the new snapshots (of the cases whose state moved)
    /// and commits: the inbox entries, the events, the projection and the snapshots become
    /// visible together.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.flush().await?;
        let changed: Vec<(Uuid, &Loaded)> = self
            .cases
            .iter()
            .filter_map(|(case_id, head)| Some((*case_id, head.loaded.as_ref()?)))
            .filter(|(_, loaded)| loaded.changed && loaded.state.version > 0)
            .collect();
        save(&mut self.tx, &changed).await?;
        self.tx.commit().await?;
        Ok(())
    }
}

impl CaseStream {
    /// `batch` seen as the stream of one of its cases at a time ([`Self::refocus`]): a
    /// consumer acting on several cases in one transaction. Its commit commits the batch.
    pub(crate) fn focus(batch: CaseBatch, case_id: Uuid) -> Self {
        Self { batch, case_id }
    }

    /// Turns to another case of the batch.
    pub(crate) fn refocus(&mut self, case_id: Uuid) {
        self.case_id = case_id;
    }

    /// The case.
    pub fn case_id(&self) -> Uuid {
        self.case_id
    }

    /// The case's version: what was stored when the lock was taken plus what was recorded.
    pub fn version(&self) -> u64 {
        self.batch.version(self.case_id).unwrap_or_default()
    }

    /// The transaction's connection, for other rows that must commit with the case (a
    /// ledger row, a cursor, a read model).
    pub fn connection(&mut self) -> &mut PgConnection {
        self.batch.connection()
    }

    /// The transaction itself ([`CaseBatch::transaction`]).
    pub fn transaction(&mut self) -> &mut PgTransaction<'static> {
        self.batch.transaction()
    }

    /// Records that `consumer` handled `message_id` in this transaction; `false` when it
    /// already had.
    pub async fn first_time(
        &mut self,
        consumer: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        crate::inbox::record_processed(self.batch.connection(), consumer, message_id).await
    }

    /// The case's state, with the members of its growing sets that `asking` names.
    pub async fn state(&mut self, asking: &Asking<'_>) -> Result<&CaseState, StoreError> {
        self.batch.state(self.case_id, asking).await
    }

    /// The stored events of the case with a version above `after`, oldest first, and at
    /// most `up_to` (a consumer's gap, a rule's batch).
    pub async fn events_between(
        &mut self,
        after: u64,
        up_to: Option<u64>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        load(self.batch.connection(), self.case_id, after, up_to).await
    }

    /// Appends the decided `events` of `cause` after the current version, folds them into
    /// the state, and projects them into the case read model, in this transaction; the
    /// stored envelopes.
    pub async fn record(
        &mut self,
        events: Vec<Event>,
        cause: &Cause<'_>,
    ) -> Result<Vec<Envelope>, StoreError> {
        let stored = self.batch.record(self.case_id, events, cause).await?;
        self.batch.flush().await?;
        Ok(stored)
    }

    /// Keeps the new snapshot (when the state moved) and commits: the inbox entry, the
    /// events, the projection and the snapshot become visible together.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.batch.commit().await
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

/// Each case's stored version and its usable snapshot, in one statement (so one view of
/// the data, with or without the cases' locks).
async fn read_heads(
    conn: &mut PgConnection,
    case_ids: &[Uuid],
) -> Result<Vec<(Uuid, u64, Option<CaseState>)>, StoreError> {
    let rows = sqlx::query(
        "SELECT c.id,
                (SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = c.id) AS stored,
                s.version, s.format, s.state
           FROM unnest($1::uuid[]) AS c(id) LEFT JOIN case_snapshots s ON s.case_id = c.id",
    )
    .bind(case_ids)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let stored = u64::try_from(row.try_get::<i64, _>("stored")?).unwrap_or(0);
            Ok((row.try_get("id")?, stored, usable_snapshot(row, stored)))
        })
        .collect()
}

/// The state in a snapshot row (`version`, `format`, `state`, all null when there is none),
/// if this build can use it: of [`SNAPSHOT_FORMAT`], and not ahead of the events (a
/// restored `events` table).
fn usable_snapshot(row: &sqlx::postgres::PgRow, stored_version: u64) -> Option<CaseState> {
    let format: i32 = row.try_get::<Option<i32>, _>("format").ok()??;
    let version: i64 = row.try_get::<Option<i64>, _>("version").ok()??;
    let state: sqlx::types::Json<CaseState> = row
        .try_get::<Option<sqlx::types::Json<CaseState>>, _>("state")
        .ok()??;
    let version = u64::try_from(version).ok()?;
    let consistent = version == state.0.version && version <= stored_version;
    (format == SNAPSHOT_FORMAT && consistent).then_some(state.0)
}

/// `snapshot` (or, without one, the whole history) plus the events after it up to
/// `stored_version`; an empty tail is not read.
async fn complete_state(
    conn: &mut PgConnection,
    case_id: Uuid,
    usable: Option<CaseState>,
    stored_version: u64,
) -> Result<Loaded, StoreError> {
    let complete = usable.is_none();
    let mut loaded = Loaded {
        state: usable.unwrap_or_default(),
        complete,
        new_ids: Vec::new(),
        changed: false,
    };
    let tail = if stored_version == loaded.state.version {
        Vec::new()
    } else {
        load(conn, case_id, loaded.state.version, Some(stored_version)).await?
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
    Ok(loaded)
}

/// Adds to each incomplete state of `loading` the Chatra message ids and delivered replies
/// its case holds among those `asking` names for it.
///
/// One lookup per kind asked about, for all the cases, each planned for its actual values
/// (`persistent(false)`: an unnamed statement). A prepared statement soon gets PostgreSQL's
/// generic plan, which takes a case to have the average number of rows and so reads every
/// row of the case: 1.8 ms on a case of 10,000 messages in `bench-case-length` (`EXPLAIN`
/// under `plan_cache_mode = force_generic_plan` shows it), against 0.02 ms for the custom
/// plan, whose index condition names the ids.
async fn learn<'a>(
    conn: &mut PgConnection,
    loading: &mut [(Uuid, Loaded)],
    asking: impl Fn(Uuid) -> Option<&'a Asking<'a>>,
) -> Result<(), StoreError> {
    let mut messages: (Vec<Uuid>, Vec<&str>) = Default::default();
    let mut replies: (Vec<Uuid>, Vec<&str>) = Default::default();
    for (case_id, loaded) in loading.iter() {
        let Some(asking) = asking(*case_id).filter(|_| !loaded.complete) else {
            continue;
        };
        for id in &asking.chatra_message_ids {
            messages.0.push(*case_id);
            messages.1.push(id);
        }
        for id in &asking.replies {
            replies.0.push(*case_id);
            replies.1.push(id);
        }
    }
    let lookups = [
        (
            "SELECT m.case_id, m.chatra_message_id, m.reply_id
               FROM unnest($1::uuid[], $2::text[]) AS a(case_id, id)
               JOIN case_chatra_messages m ON m.case_id = a.case_id AND m.chatra_message_id = a.id",
            messages,
        ),
        (
            "SELECT m.case_id, m.chatra_message_id, m.reply_id
               FROM unnest($1::uuid[], $2::text[]) AS a(case_id, id)
               JOIN case_chatra_messages m ON m.case_id = a.case_id AND m.reply_id = a.id",
            replies,
        ),
    ];
    for (statement, (case_ids, ids)) in lookups {
        if ids.is_empty() {
            continue;
        }
        let rows = sqlx::query(statement)
            .persistent(false)
            .bind(&case_ids)
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let case_id: Uuid = row.try_get("case_id")?;
            let id: String = row.try_get("chatra_message_id")?;
            let reply: Option<String> = row.try_get("reply_id")?;
            if let Some((_, loaded)) = loading.iter_mut().find(|(c, _)| *c == case_id) {
                loaded.state.learn_chatra_message(&id, reply.as_deref());
            }
        }
    }
    Ok(())
}

/// Writes the compacted states of `changed` and their new Chatra message ids, in one
/// statement for all the cases.
async fn save(conn: &mut PgConnection, changed: &[(Uuid, &Loaded)]) -> Result<(), StoreError> {
    if changed.is_empty() {
        return Ok(());
    }
    let mut snapshot_cases = Vec::with_capacity(changed.len());
    let mut versions = Vec::with_capacity(changed.len());
    let mut states = Vec::with_capacity(changed.len());
    let (mut id_cases, mut ids, mut replies) = (Vec::new(), Vec::new(), Vec::new());
    for (case_id, loaded) in changed {
        let state = loaded.state.compacted();
        snapshot_cases.push(*case_id);
        versions.push(i64::try_from(state.version).unwrap_or(i64::MAX));
        states.push(sqlx::types::Json(state));
        // One row per id (a statement may not update a row twice); a reply wins over none.
        let mut unique: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        for (id, reply) in &loaded.new_ids {
            let kept = unique.entry(id.as_str()).or_default();
            *kept = kept.or(reply.as_deref());
        }
        for (id, reply) in unique {
            id_cases.push(*case_id);
            ids.push(id);
            replies.push(reply);
        }
    }
    sqlx::query(
        "WITH snapshot AS (
             INSERT INTO case_snapshots (case_id, version, format, state)
             SELECT s.case_id, s.version, $3, s.state
               FROM unnest($1::uuid[], $2::bigint[], $4::jsonb[]) AS s(case_id, version, state)
             ON CONFLICT (case_id) DO UPDATE
                SET version = EXCLUDED.version, format = EXCLUDED.format, state = EXCLUDED.state,
                    updated_at = now())
         INSERT INTO case_chatra_messages (case_id, chatra_message_id, reply_id)
         SELECT t.case_id, t.id, t.reply FROM unnest($5::uuid[], $6::text[], $7::text[]) AS t(case_id, id, reply)
         ON CONFLICT (case_id, chatra_message_id) DO UPDATE
            SET reply_id = COALESCE(EXCLUDED.reply_id, case_chatra_messages.reply_id)",
    )
    .bind(&snapshot_cases)
    .bind(&versions)
    .bind(SNAPSHOT_FORMAT)
    .bind(&states)
    .bind(&id_cases)
    .bind(&ids)
    .bind(&replies)
    .execute(conn)
    .await?;
    Ok(())
}
