//! Learning which Chatra agent a Deskie agent is, per integration.
//!
//! - `ReplyDelivered` with `agent_id` and `chatra_agent_id`: Chatra accepted our reply sent
//!   as that agent and named its Chatra agent (`learnt_from: "delivery"`).
//! - `AgentMessageMirrored` with `agent_email`: an agent typed in Chatra, and an enabled
//!   Deskie agent has the same e-mail (compared case-insensitively;
//!   `learnt_from: "mirrored_message"`).
//!
//! Either appends `AgentChatraLinked` on the Deskie agent's stream, under that stream's
//! lock, only when the agent's link for the integration is missing or names another Chatra
//! agent: a redelivered event, or the next message of the same agent, records nothing.

use deskie_proto::events::{AgentChatraLinked, Envelope, Event};
use deskie_store::read_models::{agent_links, agents, apply_config_event};
use deskie_store::{EventDraft, Store, StoreError, StreamKey};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::SERVICE;

/// A link the case events suggest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkHint {
    /// The Deskie agent.
    pub agent_id: Uuid,
    /// The integration (Chatra account) of the case.
    pub integration_id: Uuid,
    /// Chatra's agent id.
    pub chatra_agent_id: String,
    /// `delivery` or `mirrored_message`.
    pub learnt_from: &'static str,
    /// The case the event belongs to.
    pub case_id: Uuid,
}

/// What [`record_link`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    /// `AgentChatraLinked` appended.
    Recorded,
    /// The agent already had this link.
    AlreadyKnown,
    /// No such Deskie agent.
    NoSuchAgent,
}

/// Records `hint` on the agent's stream unless the agent already has that link; `cause` is
/// the case event it was learnt from (causation; its correlation id is kept). `conn` (the
/// caller's transaction, say) answers the first look; a new link is appended in a
/// transaction of its own on `store`, under the agent stream's lock.
pub async fn record_link(
    store: &Store,
    conn: &mut PgConnection,
    hint: &LinkHint,
    cause: &Envelope,
) -> Result<Linked, StoreError> {
    // Nearly every reply repeats a link already known: settle those without the lock.
    if knows(conn, hint).await? {
        return Ok(Linked::AlreadyKnown);
    }
    let mut tx = store
        .begin_stream(StreamKey::new("agent", hint.agent_id))
        .await?;
    if agents::get(tx.connection(), hint.agent_id).await?.is_none() {
        return Ok(Linked::NoSuchAgent);
    }
    if knows(tx.connection(), hint).await? {
        return Ok(Linked::AlreadyKnown);
    }
    let draft = EventDraft {
        event: Event::AgentChatraLinked(AgentChatraLinked {
            integration_id: hint.integration_id.to_string(),
            chatra_agent_id: hint.chatra_agent_id.clone(),
            learnt_from: hint.learnt_from.to_owned(),
            case_id: hint.case_id.to_string(),
        }),
        causation_id: cause.event_id.clone(),
        correlation_id: cause.correlation_id.clone(),
        emitted_by: SERVICE,
    };
    let expected = tx.version();
    for envelope in tx.append(expected, vec![draft]).await? {
        apply_config_event(tx.connection(), &envelope).await?;
    }
    tx.commit().await?;
    Ok(Linked::Recorded)
}

/// Whether the agent's link for the hint's integration already names its Chatra agent.
async fn knows(conn: impl sqlx::PgExecutor<'_>, hint: &LinkHint) -> Result<bool, StoreError> {
    Ok(agent_links::for_agent(conn, hint.agent_id)
        .await?
        .into_iter()
        .any(|link| {
            link.integration_id == hint.integration_id
                && link.chatra_agent_id == hint.chatra_agent_id
        }))
}
