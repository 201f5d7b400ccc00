//! Agents' edits of customer data, sent to Chatra's client card (`PUT /clients/{id}`).
//!
//! The case-event consumer ([`crate::CaseEvents`]) never calls Chatra: in the case's
//! transaction it records that the case's agent edits are due up to the edit's version
//! (`agent_sync_client_updates.due_up_to`, [`deskie_store::client_updates`]) and wakes the
//! [`ClientUpdateSender`]. The sender claims a due case with a lease, sends in one call what
//! Chatra is still missing between the version it sent up to and the due one
//! ([`pending_update`]), and settles the row. One row per case, claimed by one worker at a
//! time, so one case's edits reach Chatra in order; an edit recorded while a call is out is
//! carried by the next call.
//!
//! | outcome of the call | what happens |
//! |---|---|
//! | 2xx | done: the case's sent-up-to version moves to the due one |
//! | not sent, 429, 503 | retried after Chatra's `Retry-After` (at least 1 s), else after 1 s doubling per failure, at most 60 s |
//! | 500, 502, 504, timeout, reset (outcome unknown) | retried as above: setting the same values again is harmless |
//! | other 4xx (rejected) | given up with a warning; done |
//!
//! Retries go on for as long as Chatra fails (a newer edit joins the next attempt); each
//! failure waits in the row (`failures`, `last_error`, `next_attempt_at`).

mod sender;

pub use sender::ClientUpdateSender;

use deskie_chatra::ClientUpdate;
use deskie_proto::events::{CustomerDataChanged, Envelope, Event, OptionalText};

/// What Chatra must still be told of the agent edits up to `version`, given that everything
/// up to `sent_up_to` was sent: for each of name, e-mail and phone, the last change after
/// `sent_up_to` decides. An agent edit at or before `version` is sent (`null` clears); a
/// later agent edit is left to the send that covers it; a change that came from Chatra
/// means Chatra has the newer value already.
pub fn pending_update(history: &[Envelope], sent_up_to: u64, version: u64) -> ClientUpdate {
    type Field = fn(&CustomerDataChanged) -> Option<&OptionalText>;
    let pick = |field: Field| {
        let (at, by_agent, value) = history
            .iter()
            .rev()
            .filter(|envelope| envelope.version > sent_up_to)
            .filter_map(|envelope| match &envelope.event {
                Some(Event::CustomerDataChanged(change)) => field(change).map(|value| {
                    (
                        envelope.version,
                        change.source == "agent",
                        value.value.clone(),
                    )
                }),
                _ => None,
            })
            .next()?;
        (by_agent && at <= version).then_some(value)
    };
    ClientUpdate {
        name: pick(|c| c.name.as_ref()),
        email: pick(|c| c.email.as_ref()),
        phone: pick(|c| c.phone.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(
        version: u64,
        source: &str,
        name: Option<Option<&str>>,
        phone: Option<Option<&str>>,
    ) -> Envelope {
        let text = |v: Option<Option<&str>>| {
            v.map(|value| OptionalText {
                value: value.map(str::to_owned),
            })
        };
        Envelope {
            version,
            event: Some(Event::CustomerDataChanged(CustomerDataChanged {
                name: text(name),
                phone: text(phone),
                source: source.into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    type Sent = (
        Option<Option<String>>,
        Option<Option<String>>,
        Option<Option<String>>,
    );

    fn sent(update: &ClientUpdate) -> Sent {
        (
            update.name.clone(),
            update.email.clone(),
            update.phone.clone(),
        )
    }

    #[test]
    fn one_edit_sends_only_its_fields_and_null_clears() {
        let history = [change(2, "agent", Some(Some("Ann")), Some(None))];
        assert_eq!(
            sent(&pending_update(&history, 0, 2)),
            (Some(Some("Ann".into())), None, Some(None))
        );
    }

    #[test]
    fn a_newer_edit_also_carries_an_older_unsent_one_which_then_is_skipped() {
        let history = [
            change(2, "agent", None, Some(Some("+1"))),
            change(3, "agent", Some(Some("Ann")), None),
        ];
        // Edit 3 is handled while edit 2 waits for its retry: both go in one call.
        assert_eq!(
            sent(&pending_update(&history, 0, 3)),
            (Some(Some("Ann".into())), None, Some(Some("+1".into())))
        );
        // Edit 2 handled first: edit 3's name is left to edit 3.
        assert_eq!(
            sent(&pending_update(&history, 0, 2)),
            (None, None, Some(Some("+1".into())))
        );
        // Everything up to 2 sent: edit 3 carries only its own field.
        assert_eq!(
            sent(&pending_update(&history, 2, 3)),
            (Some(Some("Ann".into())), None, None)
        );
    }

    #[test]
    fn a_later_change_from_chatra_wins_over_an_unsent_agent_edit() {
        let history = [
            change(2, "agent", Some(Some("Ann")), Some(Some("+1"))),
            change(3, "chatra", Some(Some("Anna")), None),
        ];
        assert_eq!(
            sent(&pending_update(&history, 0, 2)),
            (None, None, Some(Some("+1".into())))
        );
    }
}
