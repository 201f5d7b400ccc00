//! Per-consumer inboxes: the record that makes a redelivery a no-op.

use sqlx::PgConnection;

use crate::StoreError;

/// Records that `consumer` processed `message_id`, inside the caller's transaction.
/// Returns `false` when it was already recorded: the caller then commits nothing new and
/// acknowledges the message.
pub async fn record_processed(
    conn: &mut PgConnection,
    consumer: &str,
    message_id: &str,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(message_id)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
