//! Case events in: customer edits queued for Chatra, links learnt from replies and mirrored
//! messages, and visitor-card fetches queued for new and ended chats.
//!
//! Run through [`deskie_store::case_consumer::CaseEventHandler`]: decoding, per-case order
//! and gap fill happen there, and what [`CaseEvents::apply`] writes commits with the
//! consumer's cursor. Nothing here waits on Chatra: the [`ClientUpdateSender`] and the
//! visitor fetch loop make the calls, woken after the commit.
//!
//! [`ClientUpdateSender`]: crate::client_updates::ClientUpdateSender

use deskie_bus::consumer::HandlerError;
use deskie_proto::events::{AgentMessageMirrored, Envelope, Event, ReplyDelivered};
use deskie_store::case_consumer::{CaseEventConsumer, CaseHold};
use deskie_store::client_updates::mark_due;
use deskie_store::read_models::{agents, cases};
use deskie_store::visitor_fetches::{self, NewFetch};
use deskie_store::{CaseStream, Store};
use uuid::Uuid;

use crate::links::{LinkHint, Linked, record_link};
use crate::{AgentSyncMetrics, CASE_CONSUMER, Wake};

/// agent-sync's case-event consumer (cursors under [`CASE_CONSUMER`]).
#[derive(Debug, Clone)]
pub struct CaseEvents {
    store: Store,
    metrics: AgentSyncMetrics,
    /// The customer-edit sender's.
    client_updates: Wake,
    /// The visitor fetch loop's, when cards are fetched.
    visitors: Option<Wake>,
}

impl CaseEvents {
    /// A consumer queueing customer edits for the sender `client_updates` wakes and
    /// recording links in `store`.
    pub fn new(store: Store, metrics: AgentSyncMetrics, client_updates: Wake) -> Self {
        Self {
            store,
            metrics,
            client_updates,
            visitors: None,
        }
    }

    /// Also queues a visitor-card fetch for each `CaseOpened` and `ChatEnded`.
    pub fn with_visitors(mut self, fetch_loop: Wake) -> Self {
        self.visitors = Some(fetch_loop);
        self
    }

    /// Queues the fetch of round `round` for the case in its transaction (the fetch loop
    /// calls Chatra, never this consumer).
    async fn queue_visitor(
        &self,
        case: &mut CaseStream,
        envelope: &Envelope,
        case_id: Uuid,
        round: String,
    ) -> Result<(), HandlerError> {
        if self.visitors.is_none() {
            return Ok(());
        }
        let fetch = NewFetch {
            case_id,
            round,
            causation_id: envelope.event_id.clone(),
            correlation_id: envelope.correlation_id.clone(),
        };
        visitor_fetches::enqueue(case.connection(), &fetch).await?;
        Ok(())
    }

    /// Records the link `hint` stands for, if it is new.
    ///
    /// A known link is settled in the case's transaction. A new one is appended in a
    /// transaction of its own, under the agent stream's lock, not in the case's: an append
    /// must take its stream's lock before its transaction has an id (that is what keeps the
    /// relay's order per stream), and the case's transaction may have written already.
    /// Recording is idempotent, so a redelivery after a failed commit records nothing twice.
    async fn learn(
        &self,
        case: &mut CaseStream,
        hint: LinkHint,
        cause: &Envelope,
    ) -> Result<(), HandlerError> {
        match record_link(&self.store, case.connection(), &hint, cause).await? {
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
    async fn integration_of(
        &self,
        case: &mut CaseStream,
        case_id: Uuid,
    ) -> Result<Uuid, HandlerError> {
        let case = cases::get(case.connection(), case_id).await?;
        case.map(|c| c.integration_id)
            .ok_or_else(|| HandlerError::Retry {
                reason: format!("case {case_id} is not in the read model yet"),
                after: None,
            })
    }

    async fn on_reply_delivered(
        &self,
        case: &mut CaseStream,
        envelope: &Envelope,
        case_id: Uuid,
        delivered: &ReplyDelivered,
    ) -> Result<(), HandlerError> {
        let (Some(agent_id), Some(chatra_agent_id)) =
            (&delivered.agent_id, &delivered.chatra_agent_id)
        else {
            return Ok(());
        };
        let Ok(agent_id) = agent_id.parse() else {
            return Ok(());
        };
        let hint = LinkHint {
            agent_id,
            integration_id: self.integration_of(case, case_id).await?,
            chatra_agent_id: chatra_agent_id.clone(),
            learnt_from: "delivery",
            case_id,
        };
        self.learn(case, hint, envelope).await
    }

    async fn on_agent_message_mirrored(
        &self,
        case: &mut CaseStream,
        envelope: &Envelope,
        case_id: Uuid,
        mirrored: &AgentMessageMirrored,
    ) -> Result<(), HandlerError> {
        let Some(email) = &mirrored.agent_email else {
            return Ok(());
        };
        let Some(agent) = agents::enabled_by_email(case.connection(), email).await? else {
            return Ok(());
        };
        let hint = LinkHint {
            agent_id: agent.id,
            integration_id: self.integration_of(case, case_id).await?,
            chatra_agent_id: mirrored.chatra_agent_id.clone(),
            learnt_from: "mirrored_message",
            case_id,
        };
        self.learn(case, hint, envelope).await
    }
}

impl CaseEventConsumer for CaseEvents {
    fn name(&self) -> &'static str {
        CASE_CONSUMER
    }

    /// Agents' customer edits, replies and mirrored messages that can name a link, and the
    /// visitor-card rounds; every other case event costs no query.
    /// Links, fetches and client updates of its own: the case's stream is neither read
    /// nor written here.
    fn hold(&self) -> CaseHold {
        CaseHold::Cursor
    }

    fn wants(&self, event: &Event) -> bool {
        match event {
            Event::CustomerDataChanged(change) => change.source == "agent",
            Event::ReplyDelivered(delivered) => {
                delivered.agent_id.is_some()
                    && delivered
                        .chatra_agent_id
                        .as_deref()
                        .is_some_and(|id| !id.trim().is_empty())
            }
            Event::AgentMessageMirrored(mirrored) => {
                mirrored.agent_email.is_some() && !mirrored.chatra_agent_id.trim().is_empty()
            }
            Event::CaseOpened(_) | Event::ChatEnded(_) => true,
            _ => false,
        }
    }

    /// In the case's transaction, one case's events in version order.
    async fn apply(&self, case: &mut CaseStream, envelope: &Envelope) -> Result<(), HandlerError> {
        let case_id = case.case_id();
        match &envelope.event {
            Some(Event::CustomerDataChanged(change)) if change.source == "agent" => {
                mark_due(case.connection(), case_id, envelope.version).await?;
                Ok(())
            }
            Some(Event::ReplyDelivered(delivered)) => {
                self.on_reply_delivered(case, envelope, case_id, delivered)
                    .await
            }
            Some(Event::AgentMessageMirrored(mirrored)) => {
                self.on_agent_message_mirrored(case, envelope, case_id, mirrored)
                    .await
            }
            Some(Event::CaseOpened(_)) => {
                self.queue_visitor(case, envelope, case_id, "case_opened".into())
                    .await
            }
            Some(Event::ChatEnded(_)) => {
                let round = format!("chat_ended:{}", envelope.version);
                self.queue_visitor(case, envelope, case_id, round).await
            }
            _ => Ok(()),
        }
    }

    /// Wakes the sender and the fetch loop when they got work (a spare wake finds none).
    fn committed(&self, applied: &[Envelope]) {
        let any = |wanted: fn(&Event) -> bool| {
            applied.iter().any(|e| e.event.as_ref().is_some_and(wanted))
        };
        if any(|e| matches!(e, Event::CustomerDataChanged(_))) {
            self.client_updates.wake();
        }
        if let Some(visitors) = &self.visitors
            && any(|e| matches!(e, Event::CaseOpened(_) | Event::ChatEnded(_)))
        {
            visitors.wake();
        }
    }
}
