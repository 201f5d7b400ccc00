//! Agents' changes to a case: CaseStatusChanged, CaseAssigned, CaseGroupChanged,
//! CustomerDataChanged and ReplyRequested.
//!
//! Each opens the case ([`Store::open_case`]), checks what needs I/O (access, an assignee, a
//! group), lets the domain decide against the case's state
//! ([`decide_agent_change`], [`decide_customer_edit`]), and records: the events are
//! projected in the same transaction, so the answer shows the change (read-your-writes),
//! and a refusal writes nothing.

pub use deskie_domain::case::CustomerEdit;
use deskie_domain::case::{
    AgentCaseChange, CaseState, CaseStatus, decide_agent_change, decide_customer_edit,
};
use deskie_proto::events::{Event, ReplyRequested};
use deskie_store::read_models::cases::{self, CaseView, MessageView};
use deskie_store::read_models::{agents, groups};
use deskie_store::{Asking, CaseStream, Cause, Store, StoreError};
use uuid::Uuid;

use super::EMITTED_BY;
use crate::auth::Principal;

/// The statuses a case can have.
pub const STATUSES: [&str; 3] = CaseStatus::NAMES;

/// A validated `PATCH` of a case; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct CaseChange {
    /// The new status.
    pub status: Option<CaseStatus>,
    /// `Some(None)` unassigns.
    pub assignee_id: Option<Option<Uuid>>,
    /// A group (checked to exist under the lock).
    pub group_id: Option<Uuid>,
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
    let mut case = store.open_case(id).await?;
    let channel = accessible(&mut case, principal).await?.channel.clone();
    if let Some(Some(agent_id)) = change.assignee_id {
        ensure_assignable(&mut case, agent_id, &channel).await?;
    }
    if let Some(group_id) = change.group_id
        && groups::get(case.connection(), group_id).await?.is_none()
    {
        return Err(CaseCommandError::Invalid {
            field: "group_id",
            message: "group_id names no existing group".into(),
        });
    }
    let change = AgentCaseChange {
        status: change.status,
        assignee_id: change.assignee_id.map(|a| a.map(|a| a.to_string())),
        group_id: change.group_id.map(|g| g.to_string()),
    };
    let by_agent = principal.agent_id().map(|a| a.to_string());
    let state = case.state(&Asking::nothing()).await?;
    let events = decide_agent_change(state, &change, by_agent.as_deref());
    record(case, events, cause).await
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
    let mut case = store.open_case(id).await?;
    let state = accessible(&mut case, principal).await?;
    let agent = principal.agent_id().map(|a| a.to_string());
    let events = decide_customer_edit(state, &edit, agent.as_deref());
    record(case, events, cause).await
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
    let mut case = store.open_case(id).await?;
    accessible(&mut case, principal).await?;
    let message_id = Uuid::now_v7();
    let event = Event::ReplyRequested(ReplyRequested {
        message_id: message_id.to_string(),
        agent_id: principal.agent_id().map(|a| a.to_string()),
        text,
        source: "deskie".into(),
        rule_id: None,
    });
    record(case, vec![event], cause).await?;
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

/// The case's state under its lock, once `principal` may act on it. A stream without
/// `CaseOpened` (another kind of stream, or none) is not a case.
async fn accessible<'a>(
    case: &'a mut CaseStream,
    principal: &Principal,
) -> Result<&'a CaseState, CaseCommandError> {
    let state = case.state(&Asking::nothing()).await?;
    if !state.opened {
        return Err(CaseCommandError::NotFound);
    }
    if !principal.may_access(&state.channel) {
        return Err(CaseCommandError::Forbidden);
    }
    Ok(state)
}

/// Refuses an assignee who is unknown, disabled, or without access to `channel`.
async fn ensure_assignable(
    case: &mut CaseStream,
    agent_id: Uuid,
    channel: &str,
) -> Result<(), CaseCommandError> {
    let agent = agents::get(case.connection(), agent_id).await?;
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

/// Records `events` (if any), and commits; the case as it now is.
async fn record(
    mut case: CaseStream,
    events: Vec<Event>,
    cause: &str,
) -> Result<CaseWithMessages, CaseCommandError> {
    let id = case.case_id();
    if events.is_empty() {
        // Nothing to record (which projects): the answer still shows the case as stored.
        cases::catch_up(case.connection(), id).await?;
    } else {
        case.record(events, &Cause::new_chain(cause, EMITTED_BY))
            .await?;
    }
    let view = cases::get(case.connection(), id)
        .await?
        .ok_or(CaseCommandError::NotFound)?;
    let messages = cases::messages(case.connection(), id).await?;
    case.commit().await?;
    Ok(CaseWithMessages {
        case: view,
        messages,
    })
}
