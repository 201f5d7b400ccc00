//! Case events into the `cases` and `case_messages` tables, in version order.
//!
//! The fence is the `version` column of the case row. Every event other than `CaseOpened`
//! first moves it from v−1 to v (`advance`); that UPDATE both checks the order and locks
//! the row, so two transactions projecting the same case serialise on it, and the second
//! one finds the version moved and applies nothing.

use chrono::{DateTime, Utc};
use deskie_proto::events::{
    AgentMessageMirrored, Attachment, CaseOpened, CustomerDataChanged, Envelope, Event,
    ReplyRequested,
};
use sqlx::PgConnection;
use uuid::Uuid;

use super::views::{DetailsView, FieldView};
use crate::StoreError;
use crate::event_store::envelope_of;
use crate::read_models::{occurred_at, stream_uuid, timestamp};

/// Rounds [`catch_up`] tries when it loses the race to create a brand-new case row.
const ROUNDS: usize = 3;

/// Brings the case read model up to the event store for `case_id`, inside the caller's
/// transaction: locks the case row (`SELECT … FOR UPDATE`), reads its stored version (0 when
/// absent), loads the events above it in version order and applies each. Returns how many
/// were applied.
///
/// Writers call it right after appending (they hold the stream's advisory lock; this takes
/// only the row lock, so the projector, which takes no advisory lock, never deadlocks with
/// them). Events are read on the caller's connection, so its own uncommitted appends count.
pub async fn catch_up(conn: &mut PgConnection, case_id: Uuid) -> Result<u64, StoreError> {
    catch_up_from_store(conn, case_id, &[]).await
}

/// [`catch_up`] for a writer that has just stored `recorded` (the case's newest events, in
/// version order). They normally follow the row directly: then they are applied as they
/// are, without locking and reading the row first or reading them back from the event
/// store. Each apply is fenced by the row's version, and the first one locks the row. Only
/// when the row lacks something else (the projector behind, a writer that did not project)
/// does it go the long way.
pub async fn catch_up_with(
    conn: &mut PgConnection,
    case_id: Uuid,
    recorded: &[Envelope],
) -> Result<u64, StoreError> {
    let mut applied = 0;
    for envelope in recorded {
        if !apply_case_event(conn, envelope).await? {
            break;
        }
        applied += 1;
    }
    let direct = applied as u64;
    if applied == recorded.len() && applied > 0 {
        return Ok(direct);
    }
    Ok(direct + catch_up_from_store(conn, case_id, &recorded[applied..]).await?)
}

/// The long way of [`catch_up_with`]: lock the row, read its version, apply what it lacks.
async fn catch_up_from_store(
    conn: &mut PgConnection,
    case_id: Uuid,
    recorded: &[Envelope],
) -> Result<u64, StoreError> {
    let mut applied = 0;
    let mut stuck: Option<Envelope> = None;
    // A row that does not exist yet cannot be locked: two transactions may both try to
    // create it. The loser's INSERT waits for the winner's commit and changes nothing; it
    // then locks the row the winner made and goes on from that version.
    for _ in 0..ROUNDS {
        let stored = lock_version(conn, case_id).await?;
        stuck = None;
        let missing = match recorded.first() {
            Some(first) if first.version == stored + 1 => std::borrow::Cow::Borrowed(recorded),
            _ => std::borrow::Cow::Owned(events_after(conn, case_id, stored).await?),
        };
        for envelope in missing.iter() {
            if apply_case_event(conn, envelope).await? {
                applied += 1;
            } else {
                stuck = Some(envelope.clone());
                break;
            }
        }
        if stuck.is_none() {
            return Ok(applied);
        }
    }
    let envelope = stuck.unwrap_or_default();
    Err(StoreError::Corrupt {
        event_id: envelope.event_id.parse().unwrap_or_default(),
        reason: format!(
            "case {case_id}: version {} ({}) cannot follow the stored case (a case stream starts with case_opened)",
            envelope.version,
            envelope
                .event
                .as_ref()
                .map_or("unknown event", |e| e.type_name()),
        ),
    })
}

/// Applies one case event if it is the next version of its case (stored version + 1);
/// returns `false`, changing nothing, otherwise. [`catch_up`] is how consumers call it.
pub async fn apply_case_event(
    conn: &mut PgConnection,
    envelope: &Envelope,
) -> Result<bool, StoreError> {
    let case_id = stream_uuid(envelope)?;
    let version = i64::try_from(envelope.version).unwrap_or(i64::MAX);
    let at = occurred_at(envelope);
    if let Some(Event::CaseOpened(opened)) = &envelope.event {
        return open(conn, envelope, case_id, version, at, opened).await;
    }
    if !advance(conn, case_id, version, at).await? {
        return Ok(false);
    }
    let Some(event) = &envelope.event else {
        // An event this build does not know: only the version moves.
        return Ok(true);
    };
    if let Some(message) = new_message(envelope, event)? {
        insert_messages(conn, &[(case_id, &message)]).await?;
        return Ok(true);
    }
    match event {
        Event::ReplyDelivered(e) => {
            sqlx::query(
                "UPDATE case_messages SET delivery = 'sent', chatra_message_id = $3,
                        chatra_agent_id = COALESCE($4, chatra_agent_id)
                  WHERE id = $1 AND case_id = $2",
            )
            .bind(message_id(envelope, &e.message_id)?)
            .bind(case_id)
            .bind(&e.chatra_message_id)
            .bind(non_empty(&e.chatra_agent_id))
            .execute(&mut *conn)
            .await?;
        }
        Event::ReplyFailed(e) => {
            set_delivery(conn, envelope, case_id, &e.message_id, "failed").await?
        }
        Event::ReplyOutcomeUnknown(e) => {
            set_delivery(conn, envelope, case_id, &e.message_id, "unknown").await?
        }
        Event::CustomerDataChanged(e) => {
            customer_data(conn, case_id, &CustomerChange::of(e)).await?
        }
        Event::CaseAssigned(e) => {
            let assignee = optional_id(envelope, "assignee_id", &e.assignee_id)?;
            set_case(conn, "assignee_id = $2", case_id, assignee).await?;
        }
        Event::CaseGroupChanged(e) => {
            let group = required_id(envelope, "group_id", &e.group_id)?;
            set_case(conn, "group_id = $2", case_id, group).await?;
            // A move to the visitor card's Chatra group names that group too.
            if let Some(chatra_group) = non_empty(&e.chatra_group_id) {
                set_case(conn, "chatra_group_id = $2", case_id, chatra_group).await?;
            }
        }
        Event::CaseStatusChanged(e) => set_case(conn, "status = $2", case_id, &e.to).await?,
        Event::ChatEnded(_) => set_case(conn, "chat_ended = $2", case_id, true).await?,
        Event::CaseResumed(_) => set_case(conn, "chat_ended = $2", case_id, false).await?,
        // RuleFired, staff notifications and their outcomes (in the history, not in the case
        // view) and anything else: only the version (and `updated_at`) moves.
        _ => {}
    }
    Ok(true)
}

/// Locks the case row and returns its version, 0 when there is no row yet.
async fn lock_version(conn: &mut PgConnection, case_id: Uuid) -> Result<u64, StoreError> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT version FROM cases WHERE id = $1 FOR UPDATE")
            .bind(case_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(version.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

/// The case's events above `after`, oldest first, from the event store.
async fn events_after(
    conn: &mut PgConnection,
    case_id: Uuid,
    after: u64,
) -> Result<Vec<Envelope>, StoreError> {
    let rows = sqlx::query(
        "SELECT event_id, payload FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version",
    )
    .bind(case_id)
    .bind(i64::try_from(after).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(envelope_of).collect()
}

/// Moves the case from `version - 1` to `version`; `false` when it is not there.
async fn advance(
    conn: &mut PgConnection,
    case_id: Uuid,
    version: i64,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE cases SET version = $2, updated_at = $3 WHERE id = $1 AND version = $2 - 1",
    )
    .bind(case_id)
    .bind(version)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Creates the case row (or, for a repeated `CaseOpened` in a stream, only moves the version).
async fn open(
    conn: &mut PgConnection,
    envelope: &Envelope,
    case_id: Uuid,
    version: i64,
    at: DateTime<Utc>,
    e: &CaseOpened,
) -> Result<bool, StoreError> {
    if !insert_case_rows(conn, &[(envelope, e)]).await?.is_empty() {
        return Ok(true);
    }
    advance(conn, case_id, version, at).await
}

/// Inserts the row each `CaseOpened` creates, at its event's version, in one statement; the
/// cases whose row was inserted (an existing row is left as it is).
pub(super) async fn insert_case_rows(
    conn: &mut PgConnection,
    opened: &[(&Envelope, &CaseOpened)],
) -> Result<Vec<Uuid>, StoreError> {
    if opened.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = CaseRows::default();
    for (envelope, e) in opened {
        rows.ids.push(stream_uuid(envelope)?);
        rows.versions
            .push(i64::try_from(envelope.version).unwrap_or(i64::MAX));
        rows.integrations
            .push(required_id(envelope, "integration_id", &e.integration_id)?);
        rows.channels.push(e.channel.as_str());
        rows.groups
            .push(required_id(envelope, "group_id", &e.group_id)?);
        rows.panels.push(e.panel.as_str());
        rows.clients.push(e.chatra_client_id.as_str());
        rows.chats.push(e.chatra_chat_id.as_str());
        rows.chatra_groups.push(non_empty(&e.chatra_group_id));
        rows.at.push(occurred_at(envelope));
    }
    Ok(sqlx::query_scalar(
        "INSERT INTO cases (id, version, integration_id, channel, status, group_id, panel,
                            chatra_client_id, chatra_chat_id, chatra_group_id, customer_details,
                            created_at, updated_at)
         SELECT r.id, r.version, r.integration_id, r.channel, 'open', r.group_id, r.panel,
                r.client, r.chat, r.chatra_group, $11, r.at, r.at
           FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::uuid[], $6::text[],
                       $7::text[], $8::text[], $9::text[], $10::timestamptz[])
                AS r(id, version, integration_id, channel, group_id, panel, client, chat,
                     chatra_group, at)
         ON CONFLICT (id) DO NOTHING
         RETURNING id",
    )
    .bind(&rows.ids)
    .bind(&rows.versions)
    .bind(&rows.integrations)
    .bind(&rows.channels)
    .bind(&rows.groups)
    .bind(&rows.panels)
    .bind(&rows.clients)
    .bind(&rows.chats)
    .bind(&rows.chatra_groups)
    .bind(&rows.at)
    .bind(sqlx::types::Json(DetailsView::default()))
    .fetch_all(conn)
    .await?)
}

/// The columns of [`insert_case_rows`], one array each.
#[derive(Default)]
struct CaseRows<'a> {
    ids: Vec<Uuid>,
    versions: Vec<i64>,
    integrations: Vec<Uuid>,
    channels: Vec<&'a str>,
    groups: Vec<Uuid>,
    panels: Vec<&'a str>,
    clients: Vec<&'a str>,
    chats: Vec<&'a str>,
    chatra_groups: Vec<Option<&'a str>>,
    at: Vec<DateTime<Utc>>,
}

/// A new message row; `position` is the version of the event that adds it.
pub(super) struct NewMessage<'a> {
    pub(super) id: Uuid,
    pub(super) position: i64,
    pub(super) author: &'a str,
    pub(super) agent_id: Option<Uuid>,
    pub(super) chatra_agent_id: Option<&'a str>,
    pub(super) chatra_message_id: Option<&'a str>,
    pub(super) text: &'a str,
    pub(super) source: &'a str,
    pub(super) created_at: DateTime<Utc>,
    pub(super) delivery: &'a str,
    pub(super) attachments: serde_json::Value,
}

/// Inserts `messages` (each with its case), one statement for all; a message already
/// there is left as it is.
pub(super) async fn insert_messages(
    conn: &mut PgConnection,
    messages: &[(Uuid, &NewMessage<'_>)],
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(messages.len());
    let mut cases = Vec::with_capacity(messages.len());
    let mut positions = Vec::with_capacity(messages.len());
    let mut authors = Vec::with_capacity(messages.len());
    let mut agents = Vec::with_capacity(messages.len());
    let mut chatra_agents = Vec::with_capacity(messages.len());
    let mut chatra_ids = Vec::with_capacity(messages.len());
    let mut texts = Vec::with_capacity(messages.len());
    let mut sources = Vec::with_capacity(messages.len());
    let mut created = Vec::with_capacity(messages.len());
    let mut deliveries = Vec::with_capacity(messages.len());
    let mut attachments = Vec::with_capacity(messages.len());
    for (case_id, m) in messages {
        ids.push(m.id);
        cases.push(*case_id);
        positions.push(m.position);
        authors.push(m.author);
        agents.push(m.agent_id);
        chatra_agents.push(m.chatra_agent_id);
        chatra_ids.push(m.chatra_message_id);
        texts.push(m.text);
        sources.push(m.source);
        created.push(m.created_at);
        deliveries.push(m.delivery);
        attachments.push(&m.attachments);
    }
    sqlx::query(
        "INSERT INTO case_messages (id, case_id, position, author, agent_id, chatra_agent_id,
                                    chatra_message_id, text, source, created_at, delivery, attachments)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::uuid[],
                              $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[],
                              $11::text[], $12::jsonb[])
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&cases)
    .bind(&positions)
    .bind(&authors)
    .bind(&agents)
    .bind(&chatra_agents)
    .bind(&chatra_ids)
    .bind(&texts)
    .bind(&sources)
    .bind(&created)
    .bind(&deliveries)
    .bind(&attachments)
    .execute(conn)
    .await?;
    Ok(())
}

/// The message row an event adds, if it adds one.
pub(super) fn new_message<'a>(
    envelope: &'a Envelope,
    event: &'a Event,
) -> Result<Option<NewMessage<'a>>, StoreError> {
    let message = match event {
        Event::CustomerMessageReceived(e) => received(
            envelope,
            "customer",
            Received {
                message_id: &e.message_id,
                chatra_message_id: &e.chatra_message_id,
                text: &e.text,
                created_at: e.created_at.as_ref(),
                attachments: &e.attachments,
            },
        )?,
        Event::SystemMessageReceived(e) => received(
            envelope,
            "system",
            Received {
                message_id: &e.message_id,
                chatra_message_id: &e.chatra_message_id,
                text: &e.text,
                created_at: e.created_at.as_ref(),
                attachments: &e.attachments,
            },
        )?,
        Event::AgentMessageMirrored(e) => agent_message(envelope, e)?,
        Event::ReplyRequested(e) => reply_requested(envelope, e)?,
        _ => return Ok(None),
    };
    Ok(Some(message))
}

/// What a message received from Chatra carries, whoever wrote it.
struct Received<'a> {
    message_id: &'a str,
    chatra_message_id: &'a str,
    text: &'a str,
    created_at: Option<&'a deskie_proto::Timestamp>,
    attachments: &'a [Attachment],
}

/// A message received from Chatra with no agent on it: the visitor's or Chatra's own.
fn received<'a>(
    envelope: &Envelope,
    author: &'static str,
    received: Received<'a>,
) -> Result<NewMessage<'a>, StoreError> {
    Ok(NewMessage {
        id: message_id(envelope, received.message_id)?,
        position: i64::try_from(envelope.version).unwrap_or(i64::MAX),
        author,
        agent_id: None,
        chatra_agent_id: None,
        chatra_message_id: Some(received.chatra_message_id).filter(|s| !s.is_empty()),
        text: received.text,
        source: "chatra",
        created_at: timestamp(received.created_at).unwrap_or_else(|| occurred_at(envelope)),
        delivery: "received",
        attachments: attachments(received.attachments),
    })
}

fn agent_message<'a>(
    envelope: &Envelope,
    e: &'a AgentMessageMirrored,
) -> Result<NewMessage<'a>, StoreError> {
    Ok(NewMessage {
        id: message_id(envelope, &e.message_id)?,
        position: i64::try_from(envelope.version).unwrap_or(i64::MAX),
        author: "agent",
        agent_id: optional_id(envelope, "agent_id", &e.agent_id)?,
        chatra_agent_id: Some(e.chatra_agent_id.as_str()).filter(|s| !s.is_empty()),
        chatra_message_id: Some(e.chatra_message_id.as_str()).filter(|s| !s.is_empty()),
        text: &e.text,
        source: "chatra",
        created_at: timestamp(e.created_at.as_ref()).unwrap_or_else(|| occurred_at(envelope)),
        delivery: "received",
        attachments: attachments(&e.attachments),
    })
}

fn reply_requested<'a>(
    envelope: &Envelope,
    e: &'a ReplyRequested,
) -> Result<NewMessage<'a>, StoreError> {
    Ok(NewMessage {
        id: message_id(envelope, &e.message_id)?,
        position: i64::try_from(envelope.version).unwrap_or(i64::MAX),
        // An auto-reply of a rule is the system's; a reply typed in Deskie is the agent's.
        author: if e.source == "rule" {
            "system"
        } else {
            "agent"
        },
        agent_id: optional_id(envelope, "agent_id", &e.agent_id)?,
        chatra_agent_id: None,
        chatra_message_id: None,
        text: &e.text,
        source: &e.source,
        created_at: occurred_at(envelope),
        delivery: "pending",
        attachments: serde_json::Value::Array(Vec::new()),
    })
}

async fn set_delivery(
    conn: &mut PgConnection,
    envelope: &Envelope,
    case_id: Uuid,
    id: &str,
    delivery: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE case_messages SET delivery = $3 WHERE id = $1 AND case_id = $2")
        .bind(message_id(envelope, id)?)
        .bind(case_id)
        .bind(delivery)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What a `CustomerDataChanged` sets: only what the event carries changes. A present
/// `OptionalText` sets its column (no inner value clears it), `fields_changed` replaces the
/// form fields, `details` replaces them all.
#[derive(Debug, Default, Clone)]
pub(super) struct CustomerChange {
    pub(super) name: Option<Option<String>>,
    pub(super) email: Option<Option<String>>,
    pub(super) phone: Option<Option<String>>,
    pub(super) fields: Option<Vec<FieldView>>,
    pub(super) details: Option<DetailsView>,
}

impl CustomerChange {
    pub(super) fn of(e: &CustomerDataChanged) -> Self {
        let text =
            |t: &Option<deskie_proto::events::OptionalText>| t.as_ref().map(|t| t.value.clone());
        Self {
            name: text(&e.name),
            email: text(&e.email),
            phone: text(&e.phone),
            fields: e.fields_changed.then(|| {
                e.fields
                    .iter()
                    .map(|f| FieldView {
                        key: f.key.clone(),
                        value: f.value.clone(),
                    })
                    .collect()
            }),
            details: e.details.as_ref().map(|d| DetailsView {
                ip: d.ip.clone(),
                browser: d.browser.clone(),
                os: d.os.clone(),
                language: d.language.clone(),
                location: d.location.clone(),
                last_visit: timestamp(d.last_visit.as_ref()),
            }),
        }
    }

    /// This change followed by `later`.
    pub(super) fn then(&mut self, later: Self) {
        self.name = later.name.or(self.name.take());
        self.email = later.email.or(self.email.take());
        self.phone = later.phone.or(self.phone.take());
        self.fields = later.fields.or(self.fields.take());
        self.details = later.details.or(self.details.take());
    }
}

async fn customer_data(
    conn: &mut PgConnection,
    case_id: Uuid,
    change: &CustomerChange,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE cases SET
             customer_name = CASE WHEN $2 THEN $3 ELSE customer_name END,
             customer_email = CASE WHEN $4 THEN $5 ELSE customer_email END,
             customer_phone = CASE WHEN $6 THEN $7 ELSE customer_phone END,
             customer_fields = CASE WHEN $8 THEN $9 ELSE customer_fields END,
             customer_details = CASE WHEN $10 THEN $11 ELSE customer_details END
         WHERE id = $1",
    )
    .bind(case_id)
    .bind(change.name.is_some())
    .bind(change.name.clone().flatten())
    .bind(change.email.is_some())
    .bind(change.email.clone().flatten())
    .bind(change.phone.is_some())
    .bind(change.phone.clone().flatten())
    .bind(change.fields.is_some())
    .bind(sqlx::types::Json(change.fields.clone().unwrap_or_default()))
    .bind(change.details.is_some())
    .bind(sqlx::types::Json(
        change.details.clone().unwrap_or_default(),
    ))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `UPDATE cases SET {assignment} WHERE id = $1`, with `value` as `$2`.
async fn set_case<'v, T>(
    conn: &mut PgConnection,
    assignment: &'static str,
    case_id: Uuid,
    value: T,
) -> Result<(), StoreError>
where
    T: sqlx::Encode<'v, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + 'v,
{
    let sql = format!("UPDATE cases SET {assignment} WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(case_id)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Attachments as the API shows them, in the read model and in a case's event history alike.
pub fn attachments(attachments: &[Attachment]) -> serde_json::Value {
    attachments
        .iter()
        .map(|a| {
            serde_json::json!({
                "filename": a.filename,
                "size": a.size,
                "is_image": a.is_image,
                "url": a.url,
                "preview_url": a.preview_url,
                "width": a.width,
                "height": a.height,
                "mime_type": a.mime_type,
                "is_inline": a.is_inline,
                "inline_id": a.inline_id,
            })
        })
        .collect()
}

/// `Some` only for a non-empty string.
pub(super) fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn message_id(envelope: &Envelope, id: &str) -> Result<Uuid, StoreError> {
    required_id(envelope, "message_id", id)
}

pub(super) fn required_id(envelope: &Envelope, field: &str, id: &str) -> Result<Uuid, StoreError> {
    id.parse().map_err(|_| StoreError::Corrupt {
        event_id: envelope.event_id.parse().unwrap_or_default(),
        reason: format!("{field} {id:?} is not a UUID"),
    })
}

pub(super) fn optional_id(
    envelope: &Envelope,
    field: &str,
    id: &Option<String>,
) -> Result<Option<Uuid>, StoreError> {
    non_empty(id)
        .map(|id| required_id(envelope, field, id))
        .transpose()
}
