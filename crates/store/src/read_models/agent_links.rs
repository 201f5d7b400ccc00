//! Which Chatra agent a Deskie agent is, per integration (`AgentChatraLinked`, written by
//! agent-sync). Routing reads it to name the Deskie agent on messages mirrored from Chatra.

use chrono::{DateTime, Utc};
use deskie_proto::events::AgentChatraLinked;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::StoreError;

/// A Chatra agent of one integration, and the Deskie agent it is.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AgentChatraLink {
    /// The integration (Chatra account).
    pub integration_id: Uuid,
    /// Chatra's agent id.
    pub chatra_agent_id: String,
    /// The Deskie agent.
    pub agent_id: Uuid,
    /// `delivery` or `mirrored_message`.
    pub learnt_from: String,
    /// The case whose message taught the link.
    pub case_id: Option<Uuid>,
    /// When the link was recorded.
    pub linked_at: DateTime<Utc>,
}

const COLUMNS: &str = "integration_id, chatra_agent_id, agent_id, learnt_from, case_id, linked_at";

/// The Deskie agent the Chatra agent `chatra_agent_id` of `integration_id` is, if known.
pub async fn get(
    conn: impl sqlx::PgExecutor<'_>,
    integration_id: Uuid,
    chatra_agent_id: &str,
) -> Result<Option<AgentChatraLink>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM agent_chatra_links WHERE integration_id = $1 AND chatra_agent_id = $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(integration_id)
        .bind(chatra_agent_id)
        .fetch_optional(conn)
        .await?)
}

/// The links of several Chatra agents of one integration (those of a webhook's messages).
pub async fn for_chatra_agents(
    conn: impl sqlx::PgExecutor<'_>,
    integration_id: Uuid,
    chatra_agent_ids: &[String],
) -> Result<Vec<AgentChatraLink>, StoreError> {
    if chatra_agent_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM agent_chatra_links
          WHERE integration_id = $1 AND chatra_agent_id = ANY($2)"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(integration_id)
        .bind(chatra_agent_ids)
        .fetch_all(conn)
        .await?)
}

/// Every link of a Deskie agent, one per integration at most.
pub async fn for_agent(
    conn: impl sqlx::PgExecutor<'_>,
    agent_id: Uuid,
) -> Result<Vec<AgentChatraLink>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM agent_chatra_links WHERE agent_id = $1 ORDER BY integration_id"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(agent_id)
        .fetch_all(conn)
        .await?)
}

/// Projects `AgentChatraLinked` of agent `agent_id`: the Chatra agent now is this agent,
/// and the agent's previous Chatra agent in the same integration (if another) no longer is.
/// A link older than the stored one (by `linked_at`) changes nothing, so redelivery and a
/// rebuild in any stream order end in the same rows.
pub(super) async fn apply(
    conn: &mut PgConnection,
    agent_id: Uuid,
    event: &AgentChatraLinked,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Ok(integration_id) = event.integration_id.parse::<Uuid>() else {
        return Err(StoreError::Corrupt {
            event_id: Uuid::nil(),
            reason: format!(
                "AgentChatraLinked.integration_id {:?} is not a UUID",
                event.integration_id
            ),
        });
    };
    let case_id = event.case_id.parse::<Uuid>().ok();
    sqlx::query(
        "DELETE FROM agent_chatra_links
          WHERE agent_id = $1 AND integration_id = $2 AND chatra_agent_id <> $3 AND linked_at <= $4",
    )
    .bind(agent_id)
    .bind(integration_id)
    .bind(&event.chatra_agent_id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO agent_chatra_links (integration_id, chatra_agent_id, agent_id, learnt_from, case_id, linked_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (integration_id, chatra_agent_id) DO UPDATE SET
             agent_id = EXCLUDED.agent_id, learnt_from = EXCLUDED.learnt_from,
             case_id = EXCLUDED.case_id, linked_at = EXCLUDED.linked_at
         WHERE agent_chatra_links.linked_at <= EXCLUDED.linked_at",
    )
    .bind(integration_id)
    .bind(&event.chatra_agent_id)
    .bind(agent_id)
    .bind(&event.learnt_from)
    .bind(case_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}
