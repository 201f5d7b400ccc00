//! AgentCreated, AgentUpdated, AgentDisabled and AgentTokenRotated.

use deskie_proto::events::{
    AgentCreated, AgentDisabled, AgentGroups, AgentStatusChanged, AgentTokenRotated, AgentUpdated,
    Event,
};
use deskie_store::read_models::agents::{self, Agent};
use deskie_store::{Store, StoreError, StreamKey, StreamTx};
use uuid::Uuid;

use super::append_and_project;
use crate::agent_token::AgentToken;

/// The stream type of agents.
pub const STREAM_TYPE: &str = "agent";

/// The statuses an agent can set for itself.
pub const STATUSES: [&str; 2] = ["online", "offline"];

/// A validated request to add an agent.
#[derive(Debug)]
pub struct NewAgent {
    /// Email (trimmed, syntactically valid).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Known channels, each once.
    pub channel_access: Vec<String>,
    /// Existing groups, each once; empty = every group.
    pub group_ids: Vec<Uuid>,
}

/// A validated partial update; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct AgentPatch {
    /// New email.
    pub email: Option<String>,
    /// New name.
    pub name: Option<String>,
    /// New channel access (the whole list).
    pub channel_access: Option<Vec<String>>,
    /// New groups (the whole list; empty = every group).
    pub group_ids: Option<Vec<Uuid>>,
    /// `Some(true)` disables the agent; `Some(false)` is accepted only for an enabled one.
    pub disabled: Option<bool>,
}

/// Why an agent command was refused, apart from store failures.
#[derive(Debug, thiserror::Error)]
pub enum AgentCommandError {
    /// No agent with this id.
    #[error("no such agent")]
    NotFound,
    /// Another enabled agent has this email (compared case-insensitively).
    #[error("another agent already has this email")]
    EmailTaken,
    /// The agent is disabled: it cannot be enabled again, nor get a new token.
    #[error("the agent is disabled")]
    Disabled,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Adds an agent with a fresh token; the token is returned once and only its hash stored.
pub async fn create(
    store: &Store,
    new: NewAgent,
    cause: &str,
) -> Result<(Agent, AgentToken), AgentCommandError> {
    let id = Uuid::now_v7();
    let token = AgentToken::generate();
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    ensure_email_free(&mut tx, &new.email, id).await?;
    let event = Event::AgentCreated(AgentCreated {
        email: new.email,
        name: new.name,
        channel_access: new.channel_access,
        token_sha256: token.sha256(),
        group_ids: to_strings(&new.group_ids),
    });
    append_and_project(&mut tx, event, cause).await?;
    let agent = projected(&mut tx, id).await?;
    tx.commit().await?;
    Ok((agent, token))
}

/// Applies `patch` to agent `id`: the new profile as one `AgentUpdated` (when it changed),
/// then `AgentDisabled` (when asked and not yet disabled). A patch that changes nothing
/// appends nothing.
pub async fn update(
    store: &Store,
    id: Uuid,
    patch: AgentPatch,
    cause: &str,
) -> Result<Agent, AgentCommandError> {
    let (mut tx, current) = locked(store, id).await?;
    let disabled = current.disabled_at.is_some();
    if disabled && patch.disabled == Some(false) {
        return Err(AgentCommandError::Disabled);
    }
    let group_ids = patch.group_ids.unwrap_or_else(|| current.group_ids.clone());
    let profile = AgentUpdated {
        email: patch.email.unwrap_or_else(|| current.email.clone()),
        name: patch.name.unwrap_or_else(|| current.name.clone()),
        channel_access: patch
            .channel_access
            .unwrap_or_else(|| current.channel_access.clone()),
        // Always the whole membership: absent means "unchanged" only in older events.
        groups: Some(AgentGroups {
            group_ids: to_strings(&group_ids),
        }),
    };
    let mut changed = false;
    if profile.email != current.email
        || profile.name != current.name
        || profile.channel_access != current.channel_access
        || group_ids != current.group_ids
    {
        if !disabled && profile.email != current.email {
            ensure_email_free(&mut tx, &profile.email, id).await?;
        }
        append_and_project(&mut tx, Event::AgentUpdated(profile), cause).await?;
        changed = true;
    }
    if patch.disabled == Some(true) && !disabled {
        append_and_project(&mut tx, Event::AgentDisabled(AgentDisabled {}), cause).await?;
        changed = true;
    }
    if !changed {
        return Ok(current);
    }
    let agent = projected(&mut tx, id).await?;
    tx.commit().await?;
    Ok(agent)
}

/// Issues agent `id` a new token; the old one stops working when this commits.
pub async fn rotate_token(
    store: &Store,
    id: Uuid,
    cause: &str,
) -> Result<(Agent, AgentToken), AgentCommandError> {
    let (mut tx, current) = locked(store, id).await?;
    if current.disabled_at.is_some() {
        return Err(AgentCommandError::Disabled);
    }
    let token = AgentToken::generate();
    let event = Event::AgentTokenRotated(AgentTokenRotated {
        token_sha256: token.sha256(),
    });
    append_and_project(&mut tx, event, cause).await?;
    let agent = projected(&mut tx, id).await?;
    tx.commit().await?;
    Ok((agent, token))
}

/// Sets agent `id`'s status (one of [`STATUSES`]); records `AgentStatusChanged` only when
/// it changes. agent-sync reports online agents with `live_chat` access to Chatra.
pub async fn set_status(
    store: &Store,
    id: Uuid,
    status: &str,
    cause: &str,
) -> Result<Agent, AgentCommandError> {
    let (mut tx, current) = locked(store, id).await?;
    if current.disabled_at.is_some() {
        return Err(AgentCommandError::Disabled);
    }
    if current.status == status {
        return Ok(current);
    }
    let event = Event::AgentStatusChanged(AgentStatusChanged {
        status: status.to_owned(),
    });
    append_and_project(&mut tx, event, cause).await?;
    let agent = projected(&mut tx, id).await?;
    tx.commit().await?;
    Ok(agent)
}

/// Refuses an email another enabled agent has. The email's lock, held until commit, makes
/// a second request with the same email wait and then see this one's agent.
async fn ensure_email_free(
    tx: &mut StreamTx,
    email: &str,
    id: Uuid,
) -> Result<(), AgentCommandError> {
    agents::lock_email(tx.connection(), email).await?;
    match agents::enabled_by_email(tx.connection(), email).await? {
        Some(other) if other.id != id => Err(AgentCommandError::EmailTaken),
        _ => Ok(()),
    }
}

fn to_strings(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
}

/// Agent `id` as stored, with its stream's lock held until the transaction ends.
async fn locked(store: &Store, id: Uuid) -> Result<(StreamTx, Agent), AgentCommandError> {
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    let current = agents::get(tx.connection(), id)
        .await?
        .ok_or(AgentCommandError::NotFound)?;
    Ok((tx, current))
}

async fn projected(tx: &mut StreamTx, id: Uuid) -> Result<Agent, StoreError> {
    agents::get(tx.connection(), id)
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            event_id: Uuid::nil(),
            reason: format!("agent {id} is missing from its read model right after its event"),
        })
}
