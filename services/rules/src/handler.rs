//! One case event in: the rules that fire for it, and what they do, in one transaction.

use deskie_bus::Topology;
use deskie_bus::consumer::{Delivery, Handler, HandlerError};
use deskie_config::Cipher;
use deskie_domain::case::CaseState;
use deskie_domain::rules::{
    EffectInputs, HistoryEvent, RenderedAction, Rotation, case_change, context_at,
    decide_rule_effects, evaluate,
};
use deskie_proto::Message;
use deskie_proto::events::{Envelope, Event};
use deskie_store::read_models::{self, agents, cases};
use deskie_store::{EventDraft, Store, StoreError, StreamKey};

use crate::SERVICE;
use crate::metrics::RulesMetrics;
use crate::rotation;
use crate::rule_book::RuleBook;

/// The rules handler.
#[derive(Debug, Clone)]
pub struct EvaluateRules {
    store: Store,
    topology: Topology,
    book: RuleBook,
    cipher: Cipher,
    metrics: RulesMetrics,
}

impl EvaluateRules {
    /// A handler over `store`, decrypting and sealing credentials with `cipher`, counting
    /// into `metrics`.
    pub fn new(store: Store, topology: Topology, cipher: Cipher, metrics: RulesMetrics) -> Self {
        Self {
            store,
            topology,
            book: RuleBook::new(cipher.clone()),
            cipher,
            metrics,
        }
    }

    async fn evaluate(
        &self,
        envelope: &Envelope,
        event: &Event,
    ) -> Result<Option<usize>, StoreError> {
        let case_id = read_models::stream_uuid(envelope)?;
        let mut tx = self
            .store
            .begin_stream(StreamKey::new("case", case_id))
            .await?;
        // Once per event, in the same transaction as what the rules did.
        if !tx.record_processed(SERVICE, &envelope.event_id).await? {
            tx.commit().await?;
            return Ok(None);
        }
        let history = tx.history().await?;
        let readable: Vec<&Envelope> = history
            .iter()
            .map(|e| &e.envelope)
            .filter(|e| e.event.is_some())
            .collect();
        let seen: Vec<HistoryEvent<'_>> = readable
            .iter()
            .filter_map(|e| HistoryEvent::of(e))
            .collect();
        // By id, not by version: an event this build cannot read is left out of `seen`.
        let index = readable
            .iter()
            .position(|e| e.event_id == envelope.event_id);
        let Some(mut ctx) =
            index.and_then(|index| context_at(case_id, &seen, index, chrono::Utc::now()))
        else {
            tx.commit().await?;
            return Ok(None);
        };
        if ctx.agent_name.is_none()
            && let Event::ReplyRequested(reply) = event
            && let Some(agent) = reply.agent_id.as_deref().and_then(|a| a.parse().ok())
        {
            ctx.agent_name = agents::get(tx.connection(), agent).await?.map(|a| a.name);
        }
        let rules = self
            .book
            .enabled(tx.connection(), ctx.change.trigger())
            .await?;
        let firings = evaluate(&rules, &ctx);
        if firings.is_empty() {
            tx.commit().await?;
            return Ok(Some(0));
        }
        let current =
            CaseState::from_events(history.iter().filter_map(|e| e.envelope.event.as_ref()));
        let group = current.group_id.parse().ok();
        let rotates = firings.iter().any(|f| {
            f.actions
                .iter()
                .any(|a| matches!(a, RenderedAction::AssignRoundRobin))
        });
        let rotation = if rotates {
            rotation::load(tx.connection(), group).await?
        } else {
            Rotation::default()
        };
        let seal = |secret: &str| self.cipher.encrypt(secret.as_bytes());
        let inputs = EffectInputs {
            cause_event_id: &envelope.event_id,
            rotation: &rotation,
            seal: &seal,
        };
        let (events, rotated) = decide_rule_effects(&current, &firings, &inputs);
        let fired = firings.len();
        let drafts = events
            .into_iter()
            .map(|event| EventDraft {
                event,
                causation_id: envelope.event_id.clone(),
                correlation_id: envelope.correlation_id.clone(),
                emitted_by: SERVICE,
            })
            .collect();
        let expected = tx.version();
        tx.append(expected, drafts).await?;
        cases::catch_up(tx.connection(), case_id).await?;
        if let (Some(group), Some(agent)) = (group, rotated) {
            rotation::advance(tx.connection(), group, agent).await?;
        }
        tx.commit().await?;
        for firing in &firings {
            tracing::info!(%case_id, rule_id = %firing.rule_id, rule = %firing.rule_name, "rule fired");
        }
        Ok(Some(fired))
    }
}

impl Handler for EvaluateRules {
    /// One case's events in order: rules see the case as it was at each change.
    fn lane(&self, message: &async_nats::jetstream::Message) -> Option<String> {
        self.topology
            .stream_id_of_event_subject(&message.subject)
            .map(str::to_owned)
    }

    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let envelope =
            Envelope::decode(delivery.payload.as_ref()).map_err(|e| HandlerError::Poison {
                reason: format!("payload is not a deskie.events.v1.Envelope: {e}"),
            })?;
        if envelope.stream_type != "case" {
            return Ok(());
        }
        // Most events trigger nothing (and events caused by rules never do): no query.
        let Some(event) = envelope.event.as_ref().filter(|e| case_change(e).is_some()) else {
            return Ok(());
        };
        let (outcome, result) = match self.evaluate(&envelope, event).await {
            Ok(None) => ("skipped", Ok(())),
            Ok(Some(0)) => ("none", Ok(())),
            Ok(Some(_)) => ("fired", Ok(())),
            Err(error @ StoreError::Corrupt { .. }) => (
                "poison",
                Err(HandlerError::Poison {
                    reason: error.to_string(),
                }),
            ),
            Err(error) => (
                "retried",
                Err(HandlerError::Retry {
                    reason: error.to_string(),
                    after: None,
                }),
            ),
        };
        self.metrics.count(outcome);
        result
    }
}
