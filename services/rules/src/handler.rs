//! One case event in: the rules that fire for it, and what they do, in one transaction.

use deskie_bus::consumer::HandlerError;
use deskie_config::Cipher;
use deskie_domain::case::CaseState;
use deskie_domain::rules::{
    EffectInputs, HistoryEvent, RenderedAction, Rotation, case_change, cause_batch,
    context_in_batch, decide_rule_effects, evaluate, evaluates,
};
use deskie_proto::events::{Envelope, Event};
use deskie_store::case_consumer::CaseEventConsumer;
use deskie_store::read_models::agents;
use deskie_store::{Asking, CaseStream, Cause, StoreError, StoredEvent};

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
        case: &mut CaseStream,
        envelope: &Envelope,
        event: &Event,
    ) -> Result<Option<usize>, StoreError> {
        // Once per event (the cursor says so too; this also covers what was evaluated
        // before cursors existed).
        if !case.first_time(SERVICE, &envelope.event_id).await? {
            return Ok(None);
        }
        let case_id = case.case_id();
        let Some(trigger) = Trigger::read(case, envelope).await? else {
            return Ok(None);
        };
        let seen = trigger.seen();
        if !evaluates(&seen[trigger.batch.clone()], trigger.in_batch()) {
            return Ok(None);
        }
        let as_of = trigger.case_as_of_batch_end(case).await?;
        let Some(mut ctx) = context_in_batch(
            case_id,
            &seen[trigger.batch.clone()],
            trigger.in_batch(),
            &as_of,
            chrono::Utc::now(),
        ) else {
            return Ok(None);
        };
        if ctx.agent_name.is_none()
            && let Event::ReplyRequested(reply) = event
            && let Some(agent) = reply.agent_id.as_deref().and_then(|a| a.parse().ok())
        {
            ctx.agent_name = agents::get(case.connection(), agent).await?.map(|a| a.name);
        }
        let rules = self
            .book
            .enabled(case.connection(), ctx.change.trigger())
            .await?;
        let firings = evaluate(&rules, &ctx);
        if firings.is_empty() {
            return Ok(Some(0));
        }
        let current = case.state(&Asking::nothing()).await?.clone();
        let group = current.group_id.parse().ok();
        let rotates = firings.iter().any(|f| {
            f.actions
                .iter()
                .any(|a| matches!(a, RenderedAction::AssignRoundRobin))
        });
        let rotation = if rotates {
            rotation::load(case.connection(), group).await?
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
        let cause = Cause {
            causation_id: &envelope.event_id,
            correlation_id: &envelope.correlation_id,
            emitted_by: SERVICE,
        };
        case.record(events, &cause).await?;
        if let (Some(group), Some(agent)) = (group, rotated) {
            rotation::advance(case.connection(), group, agent).await?;
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
    async fn apply(&self, case: &mut CaseStream, envelope: &Envelope) -> Result<(), HandlerError> {
        let Some(event) = envelope.event.as_ref() else {
            return Ok(());
        };
        let (outcome, result) = match self.evaluate(case, envelope, event).await {
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

/// How far around a trigger its cause's batch is looked for before the whole history is
/// read: a cause writes a handful of events (a webhook's messages, a rule's actions).
const BATCH_WINDOW: u64 = 64;

/// A trigger with the events around it, enough to hold its cause's batch.
struct Trigger {
    events: Vec<StoredEvent>,
    /// Of the readable events, the trigger's cause's.
    batch: std::ops::Range<usize>,
    /// The trigger's index among the readable events.
    index: usize,
}

impl Trigger {
    /// Reads the events within [`BATCH_WINDOW`] of the trigger, or the whole history when
    /// its batch reaches the window's edge; `None` when the trigger is not among them (an
    /// event this build cannot read).
    async fn read(case: &mut CaseStream, envelope: &Envelope) -> Result<Option<Self>, StoreError> {
        let after = envelope.version.saturating_sub(BATCH_WINDOW);
        let up_to = envelope.version.saturating_add(BATCH_WINDOW);
        let events = case.events_between(after, Some(up_to)).await?;
        let Some(trigger) = Self::around(events, &envelope.event_id) else {
            return Ok(None);
        };
        let reaches_start = trigger.batch.start == 0 && after > 0;
        let reaches_end = trigger.batch.end == trigger.seen().len()
            && trigger
                .events
                .last()
                .is_some_and(|e| e.envelope.version >= up_to);
        if !(reaches_start || reaches_end) {
            return Ok(Some(trigger));
        }
        let events = case.events_between(0, None).await?;
        Ok(Self::around(events, &envelope.event_id))
    }

    fn around(events: Vec<StoredEvent>, event_id: &str) -> Option<Self> {
        let mut trigger = Self {
            events,
            batch: 0..0,
            index: 0,
        };
        let seen = trigger.seen();
        // By id, not by version: an event this build cannot read is left out of `seen`.
        let index = trigger
            .readable()
            .position(|e| e.envelope.event_id == event_id)?;
        let batch = cause_batch(&seen, index)?;
        trigger.index = index;
        trigger.batch = batch;
        Some(trigger)
    }

    fn readable(&self) -> impl Iterator<Item = &StoredEvent> {
        self.events.iter().filter(|e| e.envelope.event.is_some())
    }

    fn seen(&self) -> Vec<HistoryEvent<'_>> {
        self.readable()
            .filter_map(|e| HistoryEvent::of(&e.envelope))
            .collect()
    }

    fn in_batch(&self) -> usize {
        self.index - self.batch.start
    }

    /// The case as of the end of the trigger's batch: the case's own state when nothing was
    /// written since (the usual case: rules keep up), else folded from the history.
    async fn case_as_of_batch_end(&self, case: &mut CaseStream) -> Result<CaseState, StoreError> {
        let end = self
            .readable()
            .nth(self.batch.end - 1)
            .map_or(0, |e| e.envelope.version);
        let current = case.state(&Asking::nothing()).await?;
        if current.version == end {
            return Ok(current.clone());
        }
        let history = case.events_between(0, Some(end)).await?;
        Ok(CaseState::from_events(
            history.iter().filter_map(|e| e.envelope.event.as_ref()),
        ))
    }
}
