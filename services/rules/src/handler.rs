//! One case event in: the rules that fire for it, and what they do, in one transaction.

use deskie_bus::consumer::HandlerError;
use deskie_config::Cipher;
use deskie_domain::case::CaseState;
use deskie_domain::rules::{
    EffectInputs, HistoryEvent, RenderedAction, Rotation, case_change, context_at,
    decide_rule_effects, evaluate,
};
use deskie_proto::events::{Envelope, Event};
use deskie_store::case_consumer::CaseEventConsumer;
use deskie_store::read_models::{agents, cases};
use deskie_store::{EventDraft, StoreError, StreamTx};
use uuid::Uuid;

use crate::SERVICE;
use crate::metrics::RulesMetrics;
use crate::rotation;
use crate::rule_book::RuleBook;

/// The rules consumer (run through [`deskie_store::case_consumer::CaseEventHandler`]).
#[derive(Debug, Clone)]
pub struct EvaluateRules {
    book: RuleBook,
    cipher: Cipher,
    metrics: RulesMetrics,
}

impl EvaluateRules {
    /// A consumer decrypting and sealing credentials with `cipher`, counting into `metrics`.
    pub fn new(cipher: Cipher, metrics: RulesMetrics) -> Self {
        Self {
            book: RuleBook::new(cipher.clone()),
            cipher,
            metrics,
        }
    }

    /// Evaluates the rules for one trigger, in the case's transaction; `None` when it was
    /// evaluated before, else how many rules fired.
    async fn evaluate(
        &self,
        tx: &mut StreamTx,
        case_id: Uuid,
        envelope: &Envelope,
        event: &Event,
    ) -> Result<Option<usize>, StoreError> {
        // Once per event (the cursor says so too; this also covers what was evaluated
        // before cursors existed).
        if !tx.record_processed(SERVICE, &envelope.event_id).await? {
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
        for firing in &firings {
            tracing::info!(%case_id, rule_id = %firing.rule_id, rule = %firing.rule_name, "rule fired");
        }
        Ok(Some(fired))
    }
}

impl CaseEventConsumer for EvaluateRules {
    fn name(&self) -> &'static str {
        SERVICE
    }

    /// Most events trigger nothing (and events caused by rules never do): no query.
    fn wants(&self, event: &Event) -> bool {
        case_change(event).is_some()
    }

    /// Rules see the case as it was at each change: one case's triggers in version order.
    async fn apply(
        &self,
        tx: &mut StreamTx,
        case_id: Uuid,
        envelope: &Envelope,
    ) -> Result<(), HandlerError> {
        let Some(event) = envelope.event.as_ref() else {
            return Ok(());
        };
        let (outcome, result) = match self.evaluate(tx, case_id, envelope, event).await {
            Ok(None) => ("skipped", Ok(())),
            Ok(Some(0)) => ("none", Ok(())),
            Ok(Some(_)) => ("fired", Ok(())),
            Err(error) => {
                let error = HandlerError::from(error);
                let outcome = match &error {
                    HandlerError::Poison { .. } => "poison",
                    HandlerError::Unavailable { .. } => "unavailable",
                    HandlerError::Retry { .. } => "retried",
                };
                (outcome, Err(error))
            }
        };
        self.metrics.count(outcome);
        result
    }
}
