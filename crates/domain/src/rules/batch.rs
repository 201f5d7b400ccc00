//! Which events of one cause are evaluated: one webhook or one request can add several
//! triggering events to a case, and rules should see the change, not each of its parts.

use deskie_proto::events::Event;

use super::context::{CaseChange, UpdateKind, case_change};

/// The positions in `batch` (the events one cause appended to a case, in order) whose
/// change rules are evaluated for:
///
/// - a new case is one `case_created`: it absorbs everything else in its batch (the opening
///   message, the customer data);
/// - a customer writing to a closed case is one `customer_resumed`: it absorbs that
///   message and the automatic reopening (`CaseStatusChanged` by nobody);
/// - several customer messages of one webhook (a transcript) are one `customer_message`;
/// - anything else (an agent's reply, a status change and an assignment in one request)
///   is evaluated each on its own.
pub fn changes_to_evaluate(batch: &[&Event]) -> Vec<usize> {
    let changes: Vec<Option<CaseChange>> = batch.iter().map(|e| case_change(e)).collect();
    let has = |wanted: CaseChange| changes.contains(&Some(wanted));
    if let Some(created) = changes.iter().position(|c| *c == Some(CaseChange::Created)) {
        return vec![created];
    }
    let resumed = has(CaseChange::Updated(UpdateKind::CustomerResumed));
    let mut seen_message = false;
    let mut chosen = Vec::new();
    for (index, change) in changes.iter().enumerate() {
        let Some(CaseChange::Updated(update)) = change else {
            continue;
        };
        let keep = match update {
            UpdateKind::CustomerMessage => !resumed && !std::mem::replace(&mut seen_message, true),
            UpdateKind::StatusChanged => !(resumed && is_automatic_reopen(batch[index])),
            _ => true,
        };
        if keep {
            chosen.push(index);
        }
    }
    chosen
}

/// Routing's reopening of a closed case when the customer writes (no agent, no rule).
fn is_automatic_reopen(event: &Event) -> bool {
    matches!(event, Event::CaseStatusChanged(e) if e.by_agent_id.is_none() && e.by_rule_id.is_none())
}

#[cfg(test)]
mod tests {
    use deskie_proto::events::{
        CaseAssigned, CaseOpened, CaseResumed, CaseStatusChanged, CustomerDataChanged,
        CustomerMessageReceived, ReplyRequested,
    };

    use super::*;

    fn message() -> Event {
        Event::CustomerMessageReceived(CustomerMessageReceived::default())
    }

    fn chosen(batch: &[Event]) -> Vec<usize> {
        changes_to_evaluate(&batch.iter().collect::<Vec<_>>())
    }

    #[test]
    fn a_new_chat_is_one_case_created() {
        let batch = [
            Event::CaseOpened(CaseOpened::default()),
            Event::CustomerDataChanged(CustomerDataChanged::default()),
            message(),
            message(),
        ];
        assert_eq!(chosen(&batch), [0]);
    }

    #[test]
    fn a_resumed_case_is_one_customer_resumed() {
        let batch = [
            Event::CaseStatusChanged(CaseStatusChanged {
                from: "closed".into(),
                to: "open".into(),
                ..Default::default()
            }),
            Event::CaseResumed(CaseResumed::default()),
            message(),
        ];
        assert_eq!(chosen(&batch), [1]);
    }

    #[test]
    fn a_transcript_is_one_customer_message_and_an_agents_changes_are_each_evaluated() {
        assert_eq!(chosen(&[message(), message(), message()]), [0]);
        let by_agent = [
            Event::CaseStatusChanged(CaseStatusChanged {
                by_agent_id: Some("a".into()),
                ..Default::default()
            }),
            Event::CaseAssigned(CaseAssigned {
                by_agent_id: Some("a".into()),
                ..Default::default()
            }),
        ];
        assert_eq!(chosen(&by_agent), [0, 1]);
        let by_rule = [Event::ReplyRequested(ReplyRequested {
            source: "rule".into(),
            rule_id: Some("r".into()),
            ..Default::default()
        })];
        assert!(chosen(&by_rule).is_empty(), "rules never trigger rules");
    }
}
