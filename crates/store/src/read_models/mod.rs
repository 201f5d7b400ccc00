//! Read models: projections of the event store that other services read through this crate.
//!
//! Each `apply` is idempotent (it applies only versions newer than the stored one), so the
//! same function serves the writer's own transaction, redelivery, and a rebuild. Case streams
//! go through [`cases::catch_up`], which also fills gaps from the event store.

pub mod agent_links;
pub mod agents;
pub mod cases;
pub mod groups;
pub mod integration_changes;
pub mod integrations;
pub mod rules;

use deskie_proto::events::{Envelope, Event};
use sqlx::PgConnection;

use crate::StoreError;

/// Applies a configuration event (group, integration, agent or rule) to its read model.
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
            | Event::IntegrationKeysChecked(_)
            | Event::IntegrationAgentStatusSyncChanged(_),
        ) => integrations::apply(conn, envelope).await,
        Some(
            Event::AgentCreated(_)
            | Event::AgentUpdated(_)
            | Event::AgentDisabled(_)
            | Event::AgentTokenRotated(_)
            | Event::AgentStatusChanged(_)
            | Event::AgentChatraLinked(_),
        ) => agents::apply(conn, envelope).await,
        Some(Event::RuleCreated(_) | Event::RuleUpdated(_) | Event::RuleDeleted(_)) => {
            rules::apply(conn, envelope).await
        }
        _ => Ok(()),
    }
}

/// The stream id of an envelope as a UUID; a stream id that is not one is a corrupt event.
pub fn stream_uuid(envelope: &Envelope) -> Result<uuid::Uuid, StoreError> {
    envelope.stream_id.parse().map_err(|_| StoreError::Corrupt {
        event_id: envelope.event_id.parse().unwrap_or_default(),
        reason: format!("stream id {:?} is not a UUID", envelope.stream_id),
    })
}

/// The instant an event occurred.
pub(crate) fn occurred_at(envelope: &Envelope) -> chrono::DateTime<chrono::Utc> {
    timestamp(envelope.occurred_at.as_ref()).unwrap_or_else(chrono::Utc::now)
}

/// A protobuf timestamp as a `DateTime`; `None` when unset or out of range.
pub(crate) fn timestamp(
    ts: Option<&deskie_proto::Timestamp>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    ts.and_then(|t| {
        chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
    })
}

impl crate::StreamTx {
    /// Appends one configuration event at the stream's current version and projects it into
    /// its read model in this same transaction. `cause` serves as causation and correlation
    /// id: a configuration write starts a chain of its own.
    pub async fn append_config_event(
        &mut self,
        event: Event,
        cause: &str,
        emitted_by: &'static str,
    ) -> Result<Vec<Envelope>, StoreError> {
        let expected = self.version();
        let drafts = crate::Cause::new_chain(cause, emitted_by).drafts([event]);
        let stored = self.append(expected, drafts).await?;
        for envelope in &stored {
            apply_config_event(self.connection(), envelope).await?;
        }
        Ok(stored)
    }
}

impl crate::Store {
    /// Appends one configuration event to `key` in a transaction of its own (see
    /// [`crate::StreamTx::append_config_event`]).
    pub async fn record_config_event(
        &self,
        key: crate::StreamKey,
        event: Event,
        cause: &str,
        emitted_by: &'static str,
    ) -> Result<Vec<Envelope>, StoreError> {
        let mut tx = self.begin_stream(key).await?;
        let stored = tx.append_config_event(event, cause, emitted_by).await?;
        tx.commit().await?;
        Ok(stored)
    }
}
