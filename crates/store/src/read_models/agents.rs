//! Agents: who may use the api with a token of their own, and which channels they serve.

use chrono::{DateTime, Utc};
use deskie_proto::events::{Envelope, Event};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use super::{occurred_at, stream_uuid};
use crate::StoreError;

/// An agent as stored (the token only as its SHA-256).
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct Agent {
    /// Id.
    pub id: Uuid,
    /// Stream version last applied.
    pub version: i64,
    /// Email, as entered; unique among enabled agents, compared case-insensitively.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Channels whose cases the agent may see and answer, e.g. `live_chat`.
    pub channel_access: Vec<String>,
    /// SHA-256 of the agent's API token.
    pub token_sha256: Vec<u8>,
    /// When the agent was disabled (then its token no longer works).
    pub disabled_at: Option<DateTime<Utc>>,
    /// `online` or `offline`.
    pub status: String,
    /// Groups whose cases the agent takes in round-robin; empty = every group.
    pub group_ids: Vec<Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl Agent {
    /// Whether the agent may see and act on cases of `channel`.
    pub fn has_access(&self, channel: &str) -> bool {
        self.channel_access.iter().any(|c| c == channel)
    }
}

/// The group ids an agent event carries, as UUIDs. The api writes only UUIDs of existing
/// groups; anything else is a corrupt event, refused rather than read as fewer groups (an
/// agent left with none would take every group's cases).
fn group_uuids(envelope: &Envelope, ids: &[String]) -> Result<Vec<Uuid>, StoreError> {
    ids.iter()
        .map(|id| {
            id.parse().map_err(|_| StoreError::Corrupt {
                event_id: envelope.event_id.parse().unwrap_or_default(),
                reason: format!("agent group id {id:?} is not a UUID"),
            })
        })
        .collect()
}

const COLUMNS: &str = "id, version, email, name, channel_access, token_sha256, disabled_at, status, group_ids, created_at, updated_at";

/// Every agent, disabled ones included, oldest first.
pub async fn list(pool: &PgPool) -> Result<Vec<Agent>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM agents ORDER BY created_at, id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?)
}

/// One agent, disabled or not.
pub async fn get(conn: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<Option<Agent>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM agents WHERE id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// The enabled agent whose token has this SHA-256, if any.
pub async fn by_token_sha256(
    conn: impl sqlx::PgExecutor<'_>,
    token_sha256: &[u8],
) -> Result<Option<Agent>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM agents WHERE token_sha256 = $1 AND disabled_at IS NULL");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(token_sha256)
        .fetch_optional(conn)
        .await?)
}

/// Takes a transaction-scoped lock on `email` (case-insensitive), so two writers giving
/// agents the same email check and write one after the other. Take it after the stream's
/// lock and hold at most one per transaction: then no two writers can wait on each other.
pub async fn lock_email(conn: &mut PgConnection, email: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('agent-email:' || lower($1), 0))")
        .bind(email)
        .execute(conn)
        .await?;
    Ok(())
}

/// The enabled agent with this email, compared case-insensitively, if any.
pub async fn enabled_by_email(
    conn: impl sqlx::PgExecutor<'_>,
    email: &str,
) -> Result<Option<Agent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM agents WHERE lower(email) = lower($1) AND disabled_at IS NULL"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(email)
        .fetch_optional(conn)
        .await?)
}

/// Enabled agents that are `online` and have access to `channel`, oldest first, with their
/// groups: whom agent-sync reports online to Chatra, and the candidates of the rules
/// service's round-robin (which keeps those of the case's group).
pub async fn online_with_access(
    conn: impl sqlx::PgExecutor<'_>,
    channel: &str,
) -> Result<Vec<Agent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM agents
          WHERE status = 'online' AND disabled_at IS NULL AND $1 = ANY(channel_access)
          ORDER BY created_at, id"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(channel)
        .fetch_all(conn)
        .await?)
}

/// Applies an agent event; versions not newer than the stored one are ignored.
pub(super) async fn apply(conn: &mut PgConnection, envelope: &Envelope) -> Result<(), StoreError> {
    let id = stream_uuid(envelope)?;
    let at = occurred_at(envelope);
    let version = i64::try_from(envelope.version).unwrap_or(i64::MAX);
    let query = match &envelope.event {
        Some(Event::AgentCreated(e)) => sqlx::query(
            "INSERT INTO agents (id, version, email, name, channel_access, token_sha256, group_ids, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
             ON CONFLICT (id) DO UPDATE SET
                 version = EXCLUDED.version, email = EXCLUDED.email, name = EXCLUDED.name,
                 channel_access = EXCLUDED.channel_access, token_sha256 = EXCLUDED.token_sha256,
                 group_ids = EXCLUDED.group_ids, updated_at = EXCLUDED.updated_at
             WHERE agents.version < EXCLUDED.version",
        )
        .bind(id)
        .bind(version)
        .bind(&e.email)
        .bind(&e.name)
        .bind(&e.channel_access)
        .bind(&e.token_sha256)
        .bind(group_uuids(envelope, &e.group_ids)?)
        .bind(at),
        // No `groups` (an event from before agents had groups): the membership stays.
        Some(Event::AgentUpdated(e)) => sqlx::query(
            "UPDATE agents SET version = $2, email = $3, name = $4, channel_access = $5,
                    group_ids = COALESCE($6, group_ids), updated_at = $7
              WHERE id = $1 AND version < $2",
        )
        .bind(id)
        .bind(version)
        .bind(&e.email)
        .bind(&e.name)
        .bind(&e.channel_access)
        .bind(
            e.groups
                .as_ref()
                .map(|groups| group_uuids(envelope, &groups.group_ids))
                .transpose()?,
        )
        .bind(at),
        Some(Event::AgentDisabled(_)) => sqlx::query(
            "UPDATE agents SET version = $2, disabled_at = $3, status = 'offline', updated_at = $3
              WHERE id = $1 AND version < $2",
        )
        .bind(id)
        .bind(version)
        .bind(at),
        Some(Event::AgentStatusChanged(e)) => sqlx::query(
            "UPDATE agents SET version = $2, status = $3, updated_at = $4
              WHERE id = $1 AND version < $2",
        )
        .bind(id)
        .bind(version)
        .bind(&e.status)
        .bind(at),
        Some(Event::AgentChatraLinked(e)) => {
            // The link has a table of its own; the agent's row only moves its version, and
            // only an event newer than that version touches the links.
            let moved = sqlx::query("UPDATE agents SET version = $2 WHERE id = $1 AND version < $2")
                .bind(id)
                .bind(version)
                .execute(&mut *conn)
                .await?;
            if moved.rows_affected() == 1 {
                super::agent_links::apply(conn, id, e, at).await?;
            }
            return Ok(());
        }
        Some(Event::AgentTokenRotated(e)) => sqlx::query(
            "UPDATE agents SET version = $2, token_sha256 = $3, updated_at = $4
              WHERE id = $1 AND version < $2",
        )
        .bind(id)
        .bind(version)
        .bind(&e.token_sha256)
        .bind(at),
        _ => return Ok(()),
    };
    query.execute(conn).await?;
    Ok(())
}
