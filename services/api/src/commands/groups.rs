//! GroupCreated and GroupRenamed.

use deskie_proto::events::{Event, GroupCreated, GroupRenamed};
use deskie_store::read_models::groups::{self, Group};
use deskie_store::{Store, StoreError, StreamKey};
use uuid::Uuid;

use super::append_and_project;

/// The stream type of groups.
pub const STREAM_TYPE: &str = "group";

/// Creates a group named `name` (already validated).
pub async fn create_group(store: &Store, name: String, cause: &str) -> Result<Group, StoreError> {
    let id = Uuid::now_v7();
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    append_and_project(&mut tx, Event::GroupCreated(GroupCreated { name }), cause).await?;
    let group = projected(&mut tx, id).await?;
    tx.commit().await?;
    Ok(group)
}

/// Renames group `id`; `None` when there is no such group. Renaming to the same name
/// appends nothing.
pub async fn rename_group(
    store: &Store,
    id: Uuid,
    name: String,
    cause: &str,
) -> Result<Option<Group>, StoreError> {
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    let Some(current) = groups::get(tx.connection(), id).await? else {
        return Ok(None);
    };
    if current.name == name {
        return Ok(Some(current));
    }
    append_and_project(&mut tx, Event::GroupRenamed(GroupRenamed { name }), cause).await?;
    let group = projected(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Some(group))
}

async fn projected(tx: &mut deskie_store::StreamTx, id: Uuid) -> Result<Group, StoreError> {
    groups::get(tx.connection(), id)
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            event_id: Uuid::nil(),
            reason: format!("group {id} is missing from its read model right after its event"),
        })
}
