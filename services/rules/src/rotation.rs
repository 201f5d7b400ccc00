//! The round-robin rotation: who may take a case now, and who got the last one.

use deskie_domain::rules::{Rotation, RotationCandidate};
use deskie_store::StoreError;
use deskie_store::read_models::agents;
use sqlx::PgConnection;
use uuid::Uuid;

/// The rotation of `group_id`: the online agents with Live Chat access who take that group's
/// cases (members of the group, and agents without groups: [`Rotation::of_group`]), and the
/// agent the rotation of that group assigned last.
///
/// Takes the group's rotation lock for the rest of the transaction: cases of one group are
/// evaluated concurrently (one lane per case), and two of them reading the same "last" would
/// give the same agent two cases in a row.
pub async fn load(conn: &mut PgConnection, group_id: Option<Uuid>) -> Result<Rotation, StoreError> {
    if let Some(group) = group_id {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("rules-rotation:{group}"))
            .execute(&mut *conn)
            .await?;
    }
    let candidates: Vec<RotationCandidate> = agents::online_with_access(&mut *conn, "live_chat")
        .await?
        .into_iter()
        .map(|agent| RotationCandidate {
            id: agent.id,
            group_ids: agent.group_ids,
        })
        .collect();
    let last = match group_id {
        Some(group) => {
            sqlx::query_scalar("SELECT last_agent_id FROM rules_rotation WHERE group_id = $1")
                .bind(group)
                .fetch_optional(&mut *conn)
                .await?
        }
        None => None,
    };
    Ok(Rotation::of_group(group_id, &candidates, last))
}

/// Remembers that the rotation of `group_id` assigned `agent`.
pub async fn advance(
    conn: &mut PgConnection,
    group_id: Uuid,
    agent: Uuid,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO rules_rotation (group_id, last_agent_id) VALUES ($1, $2)
         ON CONFLICT (group_id) DO UPDATE SET last_agent_id = $2, updated_at = now()",
    )
    .bind(group_id)
    .bind(agent)
    .execute(conn)
    .await?;
    Ok(())
}
