//! Deskie groups.

use chrono::{DateTime, Utc};
use deskie_proto::events::{Envelope, Event};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use super::{occurred_at, stream_uuid};
use crate::StoreError;

/// A group, as the API shows it.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct Group {
    /// Id.
    pub id: Uuid,
    /// Stream version last applied.
    pub version: i64,
    /// Name.
    pub name: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// Every group, oldest first.
pub async fn list(pool: &PgPool) -> Result<Vec<Group>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, version, name, created_at FROM groups ORDER BY created_at, id")
            .fetch_all(pool)
            .await?,
    )
}

/// One group.
pub async fn get(conn: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<Option<Group>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, version, name, created_at FROM groups WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

pub(super) async fn apply(conn: &mut PgConnection, envelope: &Envelope) -> Result<(), StoreError> {
    let id = stream_uuid(envelope)?;
    let at = occurred_at(envelope);
    let version = i64::try_from(envelope.version).unwrap_or(i64::MAX);
    let name = match &envelope.event {
        Some(Event::GroupCreated(e)) => &e.name,
        Some(Event::GroupRenamed(e)) => &e.name,
        _ => return Ok(()),
    };
    sqlx::query(
        "INSERT INTO groups (id, version, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, name = EXCLUDED.name, updated_at = EXCLUDED.updated_at
         WHERE groups.version < EXCLUDED.version",
    )
    .bind(id)
    .bind(version)
    .bind(name)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}
