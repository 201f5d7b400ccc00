//! A writer's newly recorded events, for many cases at once (routing's batches, and any
//! writer's own): each case's run folded in memory into the row change it makes and the
//! messages it adds, then written with one statement per kind for all the cases.
//!
//! The result is what applying each event in turn ([`super::projection::apply_case_event`])
//! leaves; `crates/store/tests/case_runs.rs` compares the two. A run it does not fold (a
//! delivery outcome, which changes a message row; a `CaseOpened` after the first event;
//! versions with a hole) and a run whose row is not at the version before the run (the
//! projector behind, a writer that did not project) take that event-by-event way, which
//! fills whatever the row lacks from the event store.

use chrono::{DateTime, Utc};
use deskie_proto::events::{CaseOpened, Envelope, Event};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::projection::{
    CustomerChange, NewMessage, catch_up_with, insert_case_rows, insert_messages, new_message,
    non_empty, optional_id, required_id,
};
use crate::StoreError;
use crate::read_models::{occurred_at, stream_uuid};

/// A case's run, folded.
struct Folded<'a> {
    /// Its place in the caller's list.
    index: usize,
    case_id: Uuid,
    /// The run's first event, when it opens the case (version 1).
    opened: Option<(&'a Envelope, &'a CaseOpened)>,
    /// The row's version the run's changes follow: the first event's version − 1, or 1
    /// when the run opens the case (its row is inserted at version 1 first).
    from: i64,
    /// The version after the run.
    to: i64,
    /// When the last event occurred.
    at: DateTime<Utc>,
    changes: Changes<'a>,
    messages: Vec<NewMessage<'a>>,
}

/// What a run sets on the case row; `None`: left as it is.
#[derive(Default)]
struct Changes<'a> {
    status: Option<&'a str>,
    assignee: Option<Option<Uuid>>,
    group: Option<Uuid>,
    chatra_group: Option<&'a str>,
    chat_ended: Option<bool>,
    customer: CustomerChange,
}

/// Projects each case's `recorded` events (its newest, in version order) in the caller's
/// transaction: the folded runs in one statement per kind (new rows, row changes,
/// messages), the others event by event ([`catch_up_with`]).
pub async fn project_recorded(
    conn: &mut PgConnection,
    recorded: &[(Uuid, Vec<Envelope>)],
) -> Result<(), StoreError> {
    for left in project_folded(conn, recorded).await? {
        let (case_id, envelopes) = &recorded[left];
        catch_up_with(conn, *case_id, envelopes).await?;
    }
    Ok(())
}

/// The folded part of [`project_recorded`]: projects the runs it can fold and whose row is
/// where the run starts, and returns the indices of the others, untouched, for the caller
/// to apply event by event (a writer fills the gap; a replay skips what cannot follow).
pub async fn project_folded(
    conn: &mut PgConnection,
    recorded: &[(Uuid, Vec<Envelope>)],
) -> Result<Vec<usize>, StoreError> {
    let mut folded = Vec::with_capacity(recorded.len());
    let mut left = Vec::new();
    for (n, (case_id, envelopes)) in recorded.iter().enumerate() {
        match fold(n, *case_id, envelopes)? {
            Some(run) => folded.push(run),
            None => left.push(n),
        }
    }
    let opening: Vec<(&Envelope, &CaseOpened)> =
        folded.iter().filter_map(|run| run.opened).collect();
    let inserted = insert_case_rows(conn, &opening).await?;
    // A run whose new row could not be inserted (the row exists) is left.
    let (opened_ok, rest): (Vec<Folded>, Vec<Folded>) = folded
        .into_iter()
        .partition(|run| run.opened.is_none() || inserted.contains(&run.case_id));
    left.extend(rest.iter().map(|run| run.index));
    let changing: Vec<&Folded> = opened_ok.iter().filter(|run| run.to > run.from).collect();
    let changed = update_rows(conn, &changing).await?;
    let mut written = Vec::with_capacity(opened_ok.len());
    for run in &opened_ok {
        if run.to == run.from || changed.contains(&run.case_id) {
            written.push(run);
        } else {
            left.push(run.index);
        }
    }
    let messages: Vec<(Uuid, &NewMessage)> = written
        .iter()
        .flat_map(|run| run.messages.iter().map(|m| (run.case_id, m)))
        .collect();
    insert_messages(conn, &messages).await?;
    left.sort_unstable();
    Ok(left)
}

/// `envelopes` folded, or `None` when they must be applied one by one.
fn fold(
    index: usize,
    case_id: Uuid,
    envelopes: &[Envelope],
) -> Result<Option<Folded<'_>>, StoreError> {
    let (Some(first), Some(last)) = (envelopes.first(), envelopes.last()) else {
        return Ok(None);
    };
    let consecutive = envelopes
        .windows(2)
        .all(|pair| pair[1].version == pair[0].version + 1);
    if !consecutive || first.version == 0 || stream_uuid(first)? != case_id {
        return Ok(None);
    }
    let mut run = Folded {
        index,
        case_id,
        opened: None,
        from: i64::try_from(first.version - 1).unwrap_or(i64::MAX),
        to: i64::try_from(last.version).unwrap_or(i64::MAX),
        at: occurred_at(last),
        changes: Changes::default(),
        messages: Vec::new(),
    };
    for (n, envelope) in envelopes.iter().enumerate() {
        let Some(event) = &envelope.event else {
            // An event this build does not know: only the version moves.
            continue;
        };
        if let Some(message) = new_message(envelope, event)? {
            run.messages.push(message);
            continue;
        }
        let changes = &mut run.changes;
        match event {
            Event::CaseOpened(opened) if n == 0 && envelope.version == 1 => {
                run.opened = Some((envelope, opened));
                run.from = 1;
            }
            Event::CaseOpened(_)
            | Event::ReplyDelivered(_)
            | Event::ReplyFailed(_)
            | Event::ReplyOutcomeUnknown(_) => return Ok(None),
            Event::CustomerDataChanged(e) => changes.customer.then(CustomerChange::of(e)),
            Event::CaseAssigned(e) => {
                changes.assignee = Some(optional_id(envelope, "assignee_id", &e.assignee_id)?);
            }
            Event::CaseGroupChanged(e) => {
                changes.group = Some(required_id(envelope, "group_id", &e.group_id)?);
                if let Some(chatra_group) = non_empty(&e.chatra_group_id) {
                    changes.chatra_group = Some(chatra_group);
                }
            }
            Event::CaseStatusChanged(e) => changes.status = Some(&e.to),
            Event::ChatEnded(_) => changes.chat_ended = Some(true),
            Event::CaseResumed(_) => changes.chat_ended = Some(false),
            // RuleFired, staff notifications and their outcomes: only the version moves.
            _ => {}
        }
    }
    Ok(Some(run))
}

/// Moves each run's row from the version before the run to the one after it, setting what
/// the run changed, in one statement fenced per row; the cases whose row moved.
async fn update_rows(
    conn: &mut PgConnection,
    runs: &[&Folded<'_>],
) -> Result<Vec<Uuid>, StoreError> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids = Vec::new();
    let (mut from, mut to, mut at) = (Vec::new(), Vec::new(), Vec::new());
    let (mut set_status, mut status) = (Vec::new(), Vec::new());
    let (mut set_assignee, mut assignee) = (Vec::new(), Vec::new());
    let (mut set_group, mut group) = (Vec::new(), Vec::new());
    let (mut set_chatra_group, mut chatra_group) = (Vec::new(), Vec::new());
    let (mut set_ended, mut ended) = (Vec::new(), Vec::new());
    let (mut set_name, mut name) = (Vec::new(), Vec::new());
    let (mut set_email, mut email) = (Vec::new(), Vec::new());
    let (mut set_phone, mut phone) = (Vec::new(), Vec::new());
    let (mut set_fields, mut fields) = (Vec::new(), Vec::new());
    let (mut set_details, mut details) = (Vec::new(), Vec::new());
    for run in runs {
        let c = &run.changes;
        ids.push(run.case_id);
        from.push(run.from);
        to.push(run.to);
        at.push(run.at);
        set_status.push(c.status.is_some());
        status.push(c.status);
        set_assignee.push(c.assignee.is_some());
        assignee.push(c.assignee.flatten());
        set_group.push(c.group.is_some());
        group.push(c.group);
        set_chatra_group.push(c.chatra_group.is_some());
        chatra_group.push(c.chatra_group);
        set_ended.push(c.chat_ended.is_some());
        ended.push(c.chat_ended.unwrap_or_default());
        let customer = &c.customer;
        set_name.push(customer.name.is_some());
        name.push(customer.name.clone().flatten());
        set_email.push(customer.email.is_some());
        email.push(customer.email.clone().flatten());
        set_phone.push(customer.phone.is_some());
        phone.push(customer.phone.clone().flatten());
        set_fields.push(customer.fields.is_some());
        fields.push(Json(customer.fields.clone().unwrap_or_default()));
        set_details.push(customer.details.is_some());
        details.push(Json(customer.details.clone().unwrap_or_default()));
    }
    Ok(sqlx::query_scalar(
        "UPDATE cases c SET
             version = v.to_version, updated_at = v.at,
             status = CASE WHEN v.set_status THEN v.status ELSE c.status END,
             assignee_id = CASE WHEN v.set_assignee THEN v.assignee ELSE c.assignee_id END,
             group_id = CASE WHEN v.set_group THEN v.group_id ELSE c.group_id END,
             chatra_group_id = CASE WHEN v.set_chatra_group THEN v.chatra_group ELSE c.chatra_group_id END,
             chat_ended = CASE WHEN v.set_ended THEN v.ended ELSE c.chat_ended END,
             customer_name = CASE WHEN v.set_name THEN v.name ELSE c.customer_name END,
             customer_email = CASE WHEN v.set_email THEN v.email ELSE c.customer_email END,
             customer_phone = CASE WHEN v.set_phone THEN v.phone ELSE c.customer_phone END,
             customer_fields = CASE WHEN v.set_fields THEN v.fields ELSE c.customer_fields END,
             customer_details = CASE WHEN v.set_details THEN v.details ELSE c.customer_details END
           FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::timestamptz[],
                       $5::bool[], $6::text[], $7::bool[], $8::uuid[], $9::bool[], $10::uuid[],
                       $11::bool[], $12::text[], $13::bool[], $14::bool[],
                       $15::bool[], $16::text[], $17::bool[], $18::text[], $19::bool[], $20::text[],
                       $21::bool[], $22::jsonb[], $23::bool[], $24::jsonb[])
                AS v(id, from_version, to_version, at, set_status, status, set_assignee, assignee,
                     set_group, group_id, set_chatra_group, chatra_group, set_ended, ended,
                     set_name, name, set_email, email, set_phone, phone,
                     set_fields, fields, set_details, details)
          WHERE c.id = v.id AND c.version = v.from_version
          RETURNING c.id",
    )
    // Planned for its values: a prepared statement's generic plan, which cannot know how
    // many rows the arrays hold, scanned `cases` (1.9 ms a call under `bench-greeting`).
    .persistent(false)
    .bind(&ids)
    .bind(&from)
    .bind(&to)
    .bind(&at)
    .bind(&set_status)
    .bind(&status)
    .bind(&set_assignee)
    .bind(&assignee)
    .bind(&set_group)
    .bind(&group)
    .bind(&set_chatra_group)
    .bind(&chatra_group)
    .bind(&set_ended)
    .bind(&ended)
    .bind(&set_name)
    .bind(&name)
    .bind(&set_email)
    .bind(&email)
    .bind(&set_phone)
    .bind(&phone)
    .bind(&set_fields)
    .bind(&fields)
    .bind(&set_details)
    .bind(&details)
    .fetch_all(conn)
    .await?)
}
