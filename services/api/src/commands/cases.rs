//! Agents' changes to a case: CaseStatusChanged, CaseAssigned, CaseGroupChanged and
//! CustomerDataChanged.
//!
//! Each change decides under the case stream's lock, against the read model brought up to
//! the event store first, appends its events, and projects them with `cases::catch_up` in
//! the same transaction: the answer shows the change (read-your-writes), and a refusal
//! writes nothing.

use deskie_proto::events::{
    CaseAssigned, CaseGroupChanged, CaseStatusChanged, CustomerDataChanged, Event, OptionalText,
    ReplyRequested,
};
use deskie_store::read_models::cases::{self, CaseView, MessageView};
use deskie_store::read_models::{agents, groups};
use deskie_store::{EventDraft, Store, StoreError, StreamKey, StreamTx};
use uuid::Uuid;

use super::EMITTED_BY;
use crate::auth::Principal;

/// The stream type of cases.
pub const STREAM_TYPE: &str = "case";

/// The statuses a case can have.
pub const STATUSES: &[&str] = &["open", "pending", "closed"];

/// A validated `PATCH` of a case; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct CaseChange {
    /// One of [`STATUSES`].
    pub status: Option<String>,
    /// `Some(None)` unassigns.
    pub assignee_id: Option<Option<Uuid>>,
    /// A group (checked to exist under the lock).
    pub group_id: Option<Uuid>,
}

/// A validated hand edit of the customer; `None` keeps, `Some(None)` clears.
#[derive(Debug, Default)]
pub struct CustomerEdit {
    /// Name.
    pub name: Option<Option<String>>,
    /// Email (syntactically valid).
    pub email: Option<Option<String>>,
    /// Phone.
    pub phone: Option<Option<String>>,
}

/// A case with its messages, as its detail shows it.
#[derive(Debug)]
pub struct CaseWithMessages {
    /// The case.
    pub case: CaseView,
    /// Its messages in conversation order.
    pub messages: Vec<MessageView>,
}

/// Why a case command was refused, apart from store failures.
#[derive(Debug, thiserror::Error)]
pub enum CaseCommandError {
    /// No such case.
    #[error("no such case")]
    NotFound,
    /// The caller has no access to the case's channel.
    #[error("no access to this case's channel")]
    Forbidden,
    /// A field names something unusable (an unknown group, an agent who cannot take it).
    #[error("{message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why, naming the field.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Changes status, assignee and group; appends one event per real change, none for a
/// change that changes nothing.
pub async fn change(
    store: &Store,
    principal: &Principal,
    id: Uuid,
    change: CaseChange,
    cause: &str,
) -> Result<CaseWithMessages, CaseCommandError> {
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    let case = current(&mut tx, principal, id).await?;
    let by_agent_id = principal.agent_id().map(|a| a.to_string());
    let mut events = Vec::new();
    if let Some(status) = change.status
        && status != case.status
    {
        events.push(Event::CaseStatusChanged(CaseStatusChanged {
            from: case.status.clone(),
            to: status,
            by_agent_id: by_agent_id.clone(),
            by_rule_id: None,
        }));
    }
    if let Some(assignee) = change.assignee_id
        && assignee != case.assignee_id
    {
        if let Some(agent_id) = assignee {
            ensure_assignable(&mut tx, agent_id, &case.channel).await?;
        }
        events.push(Event::CaseAssigned(CaseAssigned {
            assignee_id: assignee.map(|a| a.to_string()),
            by_agent_id: by_agent_id.clone(),
            by_rule_id: None,
        }));
    }
    if let Some(group_id) = change.group_id
        && group_id != case.group_id
    {
        if groups::get(tx.connection(), group_id).await?.is_none() {
            return Err(CaseCommandError::Invalid {
                field: "group_id",
                message: "group_id names no existing group".into(),
            });
        }
        events.push(Event::CaseGroupChanged(CaseGroupChanged {
            group_id: group_id.to_string(),
            by_agent_id,
            ..Default::default()
        }));
    }
    record(tx, case, events, cause).await
}

/// Sets or clears the customer's name, email and phone by hand (`source: "agent"`); only
/// the fields that really change travel in the event.
pub async fn edit_customer(
    store: &Store,
    principal: &Principal,
    id: Uuid,
    edit: CustomerEdit,
    cause: &str,
) -> Result<CaseWithMessages, CaseCommandError> {
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    let case = current(&mut tx, principal, id).await?;
    let changed = |new: Option<Option<String>>, old: &Option<String>| {
        new.filter(|new| new != old)
            .map(|value| OptionalText { value })
    };
    let event = CustomerDataChanged {
        name: changed(edit.name, &case.customer.name),
        email: changed(edit.email, &case.customer.email),
        phone: changed(edit.phone, &case.customer.phone),
        fields: Vec::new(),
        fields_changed: false,
        details: None,
        source: "agent".into(),
        agent_id: principal.agent_id().map(|a| a.to_string()),
    };
    let events = if event.name.is_some() || event.email.is_some() || event.phone.is_some() {
        vec![Event::CustomerDataChanged(event)]
    } else {
        Vec::new()
    };
    record(tx, case, events, cause).await
}

/// Asks for `text` to reach the visitor through Chatra, as the calling agent (the admin's
/// replies carry no agent and go out as the integration). Appends `ReplyRequested` — the
/// message shows `delivery: "pending"` at once; the outbound service delivers it.
pub async fn request_reply(
    store: &Store,
    principal: &Principal,
    id: Uuid,
    text: String,
    cause: &str,
) -> Result<Uuid, CaseCommandError> {
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    let case = current(&mut tx, principal, id).await?;
    let message_id = Uuid::now_v7();
    let event = Event::ReplyRequested(ReplyRequested {
        message_id: message_id.to_string(),
        agent_id: principal.agent_id().map(|a| a.to_string()),
        text,
        source: "deskie".into(),
        rule_id: None,
    });
    record(tx, case, vec![event], cause).await?;
    Ok(message_id)
}

/// Whether `principal` may see and act on `case`.
pub fn ensure_access(principal: &Principal, case: &CaseView) -> Result<(), CaseCommandError> {
    if principal.may_access(&case.channel) {
        Ok(())
    } else {
        Err(CaseCommandError::Forbidden)
    }
}

/// The case as the event store has it, under the stream's lock. Only an existing case row
/// is caught up: an id of another kind of stream is simply not a case.
async fn current(
    tx: &mut StreamTx,
    principal: &Principal,
    id: Uuid,
) -> Result<CaseView, CaseCommandError> {
    if cases::get(tx.connection(), id).await?.is_none() {
        return Err(CaseCommandError::NotFound);
    }
    cases::catch_up(tx.connection(), id).await?;
    let case = cases::get(tx.connection(), id)
        .await?
        .ok_or(CaseCommandError::NotFound)?;
    ensure_access(principal, &case)?;
    Ok(case)
}

/// Refuses an assignee who is unknown, disabled, or without access to `channel`.
async fn ensure_assignable(
    tx: &mut StreamTx,
    agent_id: Uuid,
    channel: &str,
) -> Result<(), CaseCommandError> {
    let agent = agents::get(tx.connection(), agent_id).await?;
    let message = match agent {
        None => "assignee_id names no agent",
        Some(agent) if agent.disabled_at.is_some() => "assignee_id names a disabled agent",
        Some(agent) if !agent.has_access(channel) => {
            "assignee_id names an agent without access to this case's channel"
        }
        Some(_) => return Ok(()),
    };
    Err(CaseCommandError::Invalid {
        field: "assignee_id",
        message: message.into(),
    })
}

/// Appends `events` (if any), projects them, and commits; the case as it now is.
async fn record(
    mut tx: StreamTx,
    case: CaseView,
    events: Vec<Event>,
    cause: &str,
) -> Result<CaseWithMessages, CaseCommandError> {
    if events.is_empty() {
        let messages = cases::messages(tx.connection(), case.id).await?;
        return Ok(CaseWithMessages { case, messages });
    }
    let drafts = events
        .into_iter()
        .map(|event| EventDraft {
            event,
            causation_id: cause.to_owned(),
            correlation_id: cause.to_owned(),
            emitted_by: EMITTED_BY,
        })
        .collect();
    let expected = tx.version();
    tx.append(expected, drafts).await?;
    cases::catch_up(tx.connection(), case.id).await?;
    let case = cases::get(tx.connection(), case.id)
        .await?
        .ok_or(CaseCommandError::NotFound)?;
    let messages = cases::messages(tx.connection(), case.id).await?;
    tx.commit().await?;
    Ok(CaseWithMessages { case, messages })
}
