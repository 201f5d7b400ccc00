//! Read models: projections of the event store that other services read through this crate.
//!
//! Each `apply` is idempotent (it applies only versions newer than the stored one), so the
//! same function serves the writer's own transaction, redelivery, and a rebuild.

pub mod groups;
pub mod integrations;

use deskie_proto::events::{Envelope, Event};
use sqlx::PgConnection;

use crate::StoreError;

/// Applies a configuration event (group or integration) to its read model.
pub async fn apply_config_event(
    conn: &mut PgConnection,
    envelope: &Envelope,
) -> Result<(), StoreError> {
    match envelope.event {
        Some(Event::GroupCreated(_) | Event::GroupRenamed(_)) => {
            groups::apply(conn, envelope).await
        }
        Some(
            Event::IntegrationConnected(_)
            | Event::IntegrationUpdated(_)
            | Event::IntegrationDisconnected(_)
            | Event::IntegrationKeysChecked(_),
        ) => integrations::apply(conn, envelope).await,
        _ => Ok(()),
    }
}

/// The stream id of an envelope as a UUID.
pub(crate) fn stream_uuid(envelope: &Envelope) -> Result<uuid::Uuid, StoreError> {
    envelope.stream_id.parse().map_err(|_| StoreError::Corrupt {
        event_id: envelope.event_id.parse().unwrap_or_default(),
        reason: format!("stream id {:?} is not a UUID", envelope.stream_id),
    })
}

/// The instant an event occurred.
pub(crate) fn occurred_at(envelope: &Envelope) -> chrono::DateTime<chrono::Utc> {
    envelope
        .occurred_at
        .as_ref()
        .and_then(|t| {
            chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
        })
        .unwrap_or_else(chrono::Utc::now)
}
