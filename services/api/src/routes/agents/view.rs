//! An agent as the admin sees it; the token only in the answer that issued it.

use chrono::{DateTime, Utc};
use deskie_store::read_models::agents::Agent;
use serde::Serialize;
use uuid::Uuid;

use crate::agent_token::AgentToken;

/// The JSON shape of an agent; also who an agent's request acts as.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    /// Id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Channels whose cases the agent may see and answer.
    pub channel_access: Vec<String>,
    /// Groups whose cases the agent takes in round-robin; empty = every group.
    pub group_ids: Vec<Uuid>,
    /// `online` or `offline`.
    pub status: String,
    /// Whether the agent was disabled (its token no longer works).
    pub disabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Agent> for AgentView {
    fn from(agent: Agent) -> Self {
        Self {
            id: agent.id,
            disabled: agent.disabled_at.is_some(),
            email: agent.email,
            name: agent.name,
            channel_access: agent.channel_access,
            group_ids: agent.group_ids,
            status: agent.status,
            created_at: agent.created_at,
            updated_at: agent.updated_at,
        }
    }
}

/// An agent with the token just issued to it: the only time the token is shown.
#[derive(Debug, Serialize)]
pub struct IssuedAgentView {
    #[serde(flatten)]
    agent: AgentView,
    token: String,
}

impl IssuedAgentView {
    /// The agent and its new token.
    pub fn new(agent: Agent, token: &AgentToken) -> Self {
        Self {
            agent: AgentView::from(agent),
            token: token.expose().to_owned(),
        }
    }
}
