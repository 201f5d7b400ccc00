//! Case events in: customer edits to Chatra, links learnt from replies and mirrored
//! messages, and visitor-card fetches queued for new and ended chats.

use deskie_bus::consumer::{Delivery, Handler, HandlerError};
use deskie_bus::{EVENT_TYPE_HEADER, Topology};
use deskie_chatra::ChatraClient;
use deskie_proto::Message;
use deskie_proto::events::{AgentMessageMirrored, Envelope, Event, ReplyDelivered};
use deskie_store::Store;
use deskie_store::read_models::{agents, cases};
use deskie_store::visitor_fetches::NewFetch;
use uuid::Uuid;

use crate::client_updates::ClientUpdates;
use crate::links::{LinkHint, Linked, record_link};
use crate::visitors::VisitorQueue;
use crate::{AgentSyncConfig, AgentSyncMetrics, store_error};

/// The event types this handler acts on; every other case event is acknowledged unread.
const HANDLED: [&str; 5] = [
    "customer_data_changed",
    "reply_delivered",
    "agent_message_mirrored",
    "case_opened",
    "chat_ended",
];

/// The handler of `{prefix}.events.case.>`.
#[derive(Debug, Clone)]
pub struct CaseEvents {
    store: Store,
    client_updates: ClientUpdates,
    metrics: AgentSyncMetrics,
    topology: Topology,
    visitors: Option<VisitorQueue>,
}

impl CaseEvents {
    /// A handler writing to `store` and calling Chatra through `chatra`.
    pub fn new(
        store: Store,
        chatra: ChatraClient,
        config: &AgentSyncConfig,
        metrics: AgentSyncMetrics,
        topology: Topology,
    ) -> Self {
        let client_updates = ClientUpdates {
            store: store.clone(),
            chatra,
            cipher: config.cipher.clone(),
            metrics: metrics.clone(),
        };
        Self {
            store,
            client_updates,
            metrics,
            topology,
            visitors: None,
        }
    }

    /// Also queues a visitor-card fetch for each `CaseOpened` and `ChatEnded`.
    pub fn with_visitors(mut self, queue: VisitorQueue) -> Self {
        self.visitors = Some(queue);
        self
    }

    /// Queues the fetch of round `round` for the case (acknowledged at once: the fetch
    /// loop calls Chatra, never this handler).
    async fn queue_visitor(
        &self,
        envelope: &Envelope,
        case_id: Uuid,
        round: String,
    ) -> Result<(), HandlerError> {
        let Some(queue) = &self.visitors else {
            return Ok(());
        };
        let fetch = NewFetch {
            case_id,
            round,
            causation_id: envelope.event_id.clone(),
            correlation_id: envelope.correlation_id.clone(),
        };
        queue.enqueue(&fetch).await.map_err(store_error)
    }

    /// Records the link `hint` stands for, if it is new.
    async fn learn(&self, hint: LinkHint, cause: &Envelope) -> Result<(), HandlerError> {
        match record_link(&self.store, &hint, cause)
            .await
            .map_err(store_error)?
        {
            Linked::Recorded => {
                self.metrics.link(hint.learnt_from);
                tracing::info!(agent_id = %hint.agent_id, integration_id = %hint.integration_id,
                    chatra_agent_id = %hint.chatra_agent_id, learnt_from = hint.learnt_from,
                    "Chatra agent linked");
            }
            Linked::AlreadyKnown => {}
            Linked::NoSuchAgent => {
                tracing::warn!(agent_id = %hint.agent_id, "a case event names an unknown agent; no link");
            }
        }
        Ok(())
    }

    /// The integration of the case (from the case read model, which its writer updated in
    /// the transaction that appended the event).
    async fn integration_of(&self, case_id: Uuid) -> Result<Uuid, HandlerError> {
        let case = cases::get(self.store.pool(), case_id)
            .await
            .map_err(store_error)?;
        case.map(|c| c.integration_id)
            .ok_or_else(|| HandlerError::Retry {
                reason: format!("case {case_id} is not in the read model yet"),
                after: None,
            })
    }

    async fn on_reply_delivered(
        &self,
        envelope: &Envelope,
        case_id: Uuid,
        delivered: &ReplyDelivered,
    ) -> Result<(), HandlerError> {
        let (Some(agent_id), Some(chatra_agent_id)) =
            (&delivered.agent_id, &delivered.chatra_agent_id)
        else {
            return Ok(());
        };
        let (Ok(agent_id), false) = (agent_id.parse(), chatra_agent_id.trim().is_empty()) else {
            return Ok(());
        };
        let hint = LinkHint {
            agent_id,
            integration_id: self.integration_of(case_id).await?,
            chatra_agent_id: chatra_agent_id.clone(),
            learnt_from: "delivery",
            case_id,
        };
        self.learn(hint, envelope).await
    }

    async fn on_agent_message_mirrored(
        &self,
        envelope: &Envelope,
        case_id: Uuid,
        mirrored: &AgentMessageMirrored,
    ) -> Result<(), HandlerError> {
        let Some(email) = &mirrored.agent_email else {
            return Ok(());
        };
        if mirrored.chatra_agent_id.trim().is_empty() {
            return Ok(());
        }
        let agent = agents::enabled_by_email(self.store.pool(), email)
            .await
            .map_err(store_error)?;
        let Some(agent) = agent else {
            return Ok(());
        };
        let hint = LinkHint {
            agent_id: agent.id,
            integration_id: self.integration_of(case_id).await?,
            chatra_agent_id: mirrored.chatra_agent_id.clone(),
            learnt_from: "mirrored_message",
            case_id,
        };
        self.learn(hint, envelope).await
    }
}

impl Handler for CaseEvents {
    /// One case's events are handled in order: its customer edits reach Chatra in order.
    fn lane(&self, message: &async_nats::jetstream::Message) -> Option<String> {
        self.topology
            .stream_id_of_event_subject(&message.subject)
            .map(str::to_owned)
    }

    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let event_type = delivery
            .headers
            .as_ref()
            .and_then(|h| h.get(EVENT_TYPE_HEADER))
            .map(|v| v.as_str());
        if event_type.is_some_and(|t| !HANDLED.contains(&t)) {
            return Ok(());
        }
        let envelope =
            Envelope::decode(delivery.payload.as_ref()).map_err(|e| HandlerError::Poison {
                reason: format!("payload is not a deskie.events.v1.Envelope: {e}"),
            })?;
        if envelope.stream_type != "case" {
            return Ok(());
        }
        let case_id: Uuid = envelope
            .stream_id
            .parse()
            .map_err(|_| HandlerError::Poison {
                reason: format!("case stream id {:?} is not a UUID", envelope.stream_id),
            })?;
        match &envelope.event {
            Some(Event::CustomerDataChanged(change)) => {
                self.client_updates
                    .on_customer_data_changed(&envelope, case_id, change)
                    .await
            }
            Some(Event::ReplyDelivered(delivered)) => {
                self.on_reply_delivered(&envelope, case_id, delivered).await
            }
            Some(Event::AgentMessageMirrored(mirrored)) => {
                self.on_agent_message_mirrored(&envelope, case_id, mirrored)
                    .await
            }
            Some(Event::CaseOpened(_)) => {
                self.queue_visitor(&envelope, case_id, "case_opened".into())
                    .await
            }
            Some(Event::ChatEnded(_)) => {
                let round = format!("chat_ended:{}", envelope.version);
                self.queue_visitor(&envelope, case_id, round).await
            }
            _ => Ok(()),
        }
    }
}
