//! What the checker found: the ledger's figures, and the failure counts that must be zero.

use std::fmt;
use std::time::Duration;

use crate::ledger::LedgerTotals;

/// The checker's findings. Every field under "must be 0" is a guarantee broken when it is not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The ledger's sums.
    pub ledger: LedgerTotals,
    /// Visitors with at least one accepted webhook (chats that must exist).
    pub chats: usize,
    /// Distinct visitor messages accepted at least once.
    pub messages_acked: usize,
    /// Replies Chatra received (`POST /messages/`).
    pub chatra_replies: usize,
    /// Posts Slack received.
    pub slack_posts: usize,
    /// `sendMessage` calls Telegram received.
    pub telegram_posts: usize,
    /// Of the calls above, those a stand-in refused or never answered (an injected fault
    /// before the effect): retried by design, so never counted as duplicates.
    pub calls_without_effect: usize,
    /// Greetings settled by Chatra's echo (their send's outcome was unknown) rather than by
    /// Chatra's answer.
    pub settled_by_echo: usize,
    /// Dead letters in the suite's dead-letter stream.
    pub dead_letters: u64,
    /// Poison bodies accepted (each must be one dead letter).
    pub poison_acked: usize,
    /// From the end of the last fault to the moment everything was settled; `None` when it
    /// did not settle before the checker's deadline.
    pub drain: Option<Duration>,
    /// From the end of the last fault to the first look at which every accepted message was
    /// in its case (replies and notifications may still have been on their way).
    pub messages_drain: Option<Duration>,

    // Must be 0.
    /// Accepted messages missing from their case (or whose case is missing).
    pub lost_messages: usize,
    /// Extra copies of a message in a case (the agents' view) or of its event in the history.
    pub duplicate_messages: usize,
    /// Extra replies Chatra received for one chat (the greeting must reach it exactly once).
    pub duplicate_replies: usize,
    /// Extra greetings the rule decided for one case (history).
    pub duplicate_greetings: usize,
    /// Extra Slack or Telegram notifications for one case.
    pub duplicate_notifications: usize,
    /// Chats with an accepted webhook that got no greeting at Chatra.
    pub missing_replies: usize,
    /// Chats of the sales group with an accepted webhook missing their Slack or Telegram
    /// notification.
    pub missing_notifications: usize,
    /// Greetings whose delivery is not `sent` (pending, unknown, failed).
    pub unsettled_replies: usize,
    /// Cases, replies or notifications for nothing the ledger sent (or, for a notification,
    /// for a chat no rule notifies about).
    pub effects_without_cause: usize,
    /// Cases in another group than their Chatra group maps to.
    pub wrong_groups: usize,
    /// Dead letters beyond the accepted poison bodies.
    pub unexpected_dead_letters: u64,
    /// Accepted poison bodies without their dead letter.
    pub missing_dead_letters: u64,
}

impl Report {
    /// The failure figures that are not zero, named.
    pub fn failures(&self) -> Vec<(&'static str, u64)> {
        let figures = [
            ("lost_messages", self.lost_messages as u64),
            ("duplicate_messages", self.duplicate_messages as u64),
            ("duplicate_replies", self.duplicate_replies as u64),
            ("duplicate_greetings", self.duplicate_greetings as u64),
            (
                "duplicate_notifications",
                self.duplicate_notifications as u64,
            ),
            ("missing_replies", self.missing_replies as u64),
            ("missing_notifications", self.missing_notifications as u64),
            ("unsettled_replies", self.unsettled_replies as u64),
            ("effects_without_cause", self.effects_without_cause as u64),
            ("wrong_groups", self.wrong_groups as u64),
            ("unexpected_dead_letters", self.unexpected_dead_letters),
            ("missing_dead_letters", self.missing_dead_letters),
        ];
        figures.into_iter().filter(|(_, n)| *n > 0).collect()
    }

    /// Whether every failure figure is zero.
    pub fn is_clean(&self) -> bool {
        self.failures().is_empty()
    }

    /// Whether the suite has done everything the ledger asked for (duplicates aside): the
    /// condition the checker waits for.
    pub(crate) fn settled(&self) -> bool {
        self.lost_messages == 0
            && self.missing_replies == 0
            && self.missing_notifications == 0
            && self.unsettled_replies == 0
            && self.missing_dead_letters == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.ledger;
        writeln!(
            f,
            "ledger: {} webhooks, {} attempts, {} acked, {} never acked; {} refused, {} timed out, {} unreachable; slowest answer {:.1} s",
            l.webhooks,
            l.attempts,
            l.acked,
            l.unacked,
            l.refusals,
            l.timeouts,
            l.transport_errors,
            l.max_latency.as_secs_f64()
        )?;
        writeln!(
            f,
            "suite: {} chats, {} messages acked; chatra {} replies ({} settled by echo), slack {}, telegram {} ({} calls refused or unanswered); dead letters {} ({} poison acked)",
            self.chats,
            self.messages_acked,
            self.chatra_replies,
            self.settled_by_echo,
            self.slack_posts,
            self.telegram_posts,
            self.calls_without_effect,
            self.dead_letters,
            self.poison_acked
        )?;
        let secs = |d: Option<Duration>| {
            d.map_or_else(
                || "not reached".to_owned(),
                |d| format!("{:.1} s", d.as_secs_f64()),
            )
        };
        writeln!(
            f,
            "drain after the fault: every message in its case {}, everything settled {}",
            secs(self.messages_drain),
            secs(self.drain)
        )?;
        write!(
            f,
            "must be 0: lost {} | dup messages {} | dup replies {} | dup greetings {} | dup notifications {} | missing replies {} | missing notifications {} | unsettled {} | without cause {} | wrong groups {} | unexpected dead letters {} | missing dead letters {}",
            self.lost_messages,
            self.duplicate_messages,
            self.duplicate_replies,
            self.duplicate_greetings,
            self.duplicate_notifications,
            self.missing_replies,
            self.missing_notifications,
            self.unsettled_replies,
            self.effects_without_cause,
            self.wrong_groups,
            self.unexpected_dead_letters,
            self.missing_dead_letters
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_every_non_zero_figure() {
        let mut report = Report::default();
        assert!(report.is_clean());
        report.duplicate_replies = 2;
        report.missing_dead_letters = 1;
        assert_eq!(
            report.failures(),
            [("duplicate_replies", 2), ("missing_dead_letters", 1)]
        );
        assert!(!report.settled(), "a missing dead letter is not settled");
    }
}
