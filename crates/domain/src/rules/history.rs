//! The changes rules see in a case's history, each with the case as of that change: what the
//! rules service evaluates for a new event, and what a dry run replays.

use std::ops::Range;

use chrono::{DateTime, Utc};
use deskie_proto::events::{Envelope, Event};
use uuid::Uuid;

use super::batch::changes_to_evaluate;
use super::context::{CaseChange, RuleContext};
use crate::case::CaseState;

/// One event of a case's history, with the cause that wrote it.
#[derive(Debug, Clone, Copy)]
pub struct HistoryEvent<'a> {
    /// The causation id stored with the event (one writer, one cause, one batch).
    pub causation_id: &'a str,
    /// The event.
    pub event: &'a Event,
}

impl<'a> HistoryEvent<'a> {
    /// The envelope's event with its cause; `None` for an event this build cannot read.
    pub fn of(envelope: &'a Envelope) -> Option<Self> {
        envelope.event.as_ref().map(|event| Self {
            causation_id: &envelope.causation_id,
            event,
        })
    }
}

/// The rule context of the event at `index` of `history` (oldest first), or `None` when rules
/// do not evaluate it: it triggers none, or it is part of a change another event of its cause
/// stands for ([`changes_to_evaluate`]). The case is taken as of the end of that cause's
/// batch — everything that cause wrote, nothing later — and a new case's context carries
/// its opening message as `message.text`.
pub fn context_at(
    case_id: Uuid,
    history: &[HistoryEvent<'_>],
    index: usize,
    now: DateTime<Utc>,
) -> Option<RuleContext> {
    let batch = cause_batch(history, index)?;
    let in_batch = index - batch.start;
    if !evaluates(&history[batch.clone()], in_batch) {
        return None;
    }
    let as_of = CaseState::from_events(history[..batch.end].iter().map(|e| e.event));
    context_in_batch(case_id, &history[batch], in_batch, &as_of, now)
}

/// Where the cause of the event at `index` wrote: the run of its neighbours that share its
/// causation id (one writer, one cause, one batch). `None` when `index` is out of range.
pub fn cause_batch(history: &[HistoryEvent<'_>], index: usize) -> Option<Range<usize>> {
    let cause = history.get(index)?.causation_id;
    let same = |i: &usize| history[*i].causation_id == cause;
    let start = (0..index).rev().take_while(same).last().unwrap_or(index);
    let end = (index..history.len()).take_while(same).last()? + 1;
    Some(start..end)
}

/// Whether rules evaluate the event at `index` of its cause's `batch`.
pub fn evaluates(batch: &[HistoryEvent<'_>], index: usize) -> bool {
    let events: Vec<&Event> = batch.iter().map(|e| e.event).collect();
    changes_to_evaluate(&events).contains(&index)
}

/// The rule context of the event at `index` of its cause's `batch`, given the case `as_of`
/// the batch's end (the caller folds it, or has it from a snapshot).
pub fn context_in_batch(
    case_id: Uuid,
    batch: &[HistoryEvent<'_>],
    index: usize,
    as_of: &CaseState,
    now: DateTime<Utc>,
) -> Option<RuleContext> {
    let mut ctx = RuleContext::for_event(case_id, as_of, batch.get(index)?.event, now)?;
    if ctx.message_text.is_none() && ctx.change == CaseChange::Created {
        ctx.message_text = batch.iter().find_map(|e| match e.event {
            Event::CustomerMessageReceived(m) => Some(m.text.clone()),
            _ => None,
        });
    }
    Some(ctx)
}

#[cfg(test)]
mod tests {
    use deskie_proto::events::{
        CaseOpened, CaseStatusChanged, CustomerDataChanged, CustomerMessageReceived, OptionalText,
    };

    use super::*;
    use crate::rules::{Trigger, UpdateKind};

    #[test]
    fn each_cause_is_one_change_seen_as_of_its_end() {
        let events = [
            Event::CaseOpened(CaseOpened::default()),
            Event::CustomerDataChanged(CustomerDataChanged {
                name: Some(OptionalText {
                    value: Some("Maria".into()),
                }),
                ..Default::default()
            }),
            Event::CustomerMessageReceived(CustomerMessageReceived {
                text: "Where is my parcel?".into(),
                ..Default::default()
            }),
            Event::CaseStatusChanged(CaseStatusChanged {
                from: "open".into(),
                to: "pending".into(),
                by_agent_id: Some("agent".into()),
                ..Default::default()
            }),
        ];
        let causes = ["webhook-1", "webhook-1", "webhook-1", "request-2"];
        let history: Vec<HistoryEvent<'_>> = events
            .iter()
            .zip(causes)
            .map(|(event, causation_id)| HistoryEvent {
                causation_id,
                event,
            })
            .collect();
        let case = Uuid::from_u128(1);
        let now = Utc::now();
        let created = context_at(case, &history, 0, now).expect("the new case");
        assert_eq!(created.change.trigger(), Trigger::CaseCreated);
        assert_eq!(
            created.customer.name.as_deref(),
            Some("Maria"),
            "as of the batch end"
        );
        assert_eq!(created.message_text.as_deref(), Some("Where is my parcel?"));
        assert!(context_at(case, &history, 1, now).is_none());
        assert!(
            context_at(case, &history, 2, now).is_none(),
            "part of case_created"
        );
        let changed = context_at(case, &history, 3, now).expect("the agent's change");
        assert_eq!(changed.change.update(), Some(UpdateKind::StatusChanged));
        assert!(context_at(case, &history, 4, now).is_none());
    }
}
