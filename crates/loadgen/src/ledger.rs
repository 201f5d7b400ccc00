//! The ledger: every webhook sent, each attempt and its answer.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;

/// What a webhook carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Message `message` of visitor `visitor`; `copy` > 0 for a duplicate delivery of the same body.
    Message {
        /// The visitor's number.
        visitor: usize,
        /// The message's number within the chat.
        message: usize,
        /// 0 for the first delivery, 1 and up for duplicates.
        copy: u8,
    },
    /// Poison body number `n`.
    Poison(usize),
    /// Chatra's echo of the message it stored under this id.
    Echo(String),
}

/// What an attempt got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP status.
    Status(u16),
    /// No answer within the attempt's timeout.
    Timeout,
    /// No HTTP exchange (refused, reset).
    Transport(String),
}

impl Answer {
    /// Whether it was a 2xx.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Status(code) if (200..300).contains(code))
    }
}

/// One attempt to deliver a webhook.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When it was sent, from the start of the ledger.
    pub sent_at: Duration,
    /// How long the answer took.
    pub latency: Duration,
    /// The answer.
    pub answer: Answer,
}

/// One webhook: its body and every attempt to deliver it.
#[derive(Debug, Clone)]
pub struct Record {
    /// What it carried.
    pub kind: Kind,
    /// The body, byte for byte what every attempt sent.
    pub body: String,
    /// The attempts, in order.
    pub attempts: Vec<Attempt>,
}

impl Record {
    /// Whether some attempt got a 2xx (the suite took responsibility for it).
    pub fn acked(&self) -> bool {
        self.attempts.iter().any(|a| a.answer.is_success())
    }
}

/// Sums over the ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    /// Webhooks recorded.
    pub webhooks: usize,
    /// Attempts in all.
    pub attempts: usize,
    /// Webhooks with a 2xx.
    pub acked: usize,
    /// Webhooks never answered 2xx (still being resent, or given up).
    pub unacked: usize,
    /// Non-2xx answers.
    pub refusals: usize,
    /// Attempts without an answer in time.
    pub timeouts: usize,
    /// Attempts without an HTTP exchange.
    pub transport_errors: usize,
    /// The slowest answer (or timeout) of any attempt.
    pub max_latency: Duration,
}

/// Shared record of every webhook; cheap to clone.
#[derive(Debug, Clone)]
pub struct Ledger {
    started: Instant,
    records: Arc<Mutex<Vec<Record>>>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new()
    }
}

impl Ledger {
    /// An empty ledger whose clock starts now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            records: Arc::default(),
        }
    }

    /// When the ledger's clock started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Records a new webhook; its index for [`Ledger::attempt`].
    pub fn open(&self, kind: Kind, body: String) -> usize {
        let mut records = self.lock();
        records.push(Record {
            kind,
            body,
            attempts: Vec::new(),
        });
        records.len() - 1
    }

    /// Records an attempt of webhook `index`.
    pub fn attempt(&self, index: usize, sent: Instant, answer: Answer) {
        let attempt = Attempt {
            sent_at: sent.saturating_duration_since(self.started),
            latency: sent.elapsed(),
            answer,
        };
        if let Some(record) = self.lock().get_mut(index) {
            record.attempts.push(attempt);
        }
    }

    /// A copy of every record.
    pub fn records(&self) -> Vec<Record> {
        self.lock().clone()
    }

    /// The sums.
    pub fn totals(&self) -> LedgerTotals {
        let records = self.lock();
        let mut totals = LedgerTotals {
            webhooks: records.len(),
            ..LedgerTotals::default()
        };
        for record in records.iter() {
            totals.attempts += record.attempts.len();
            if record.acked() {
                totals.acked += 1;
            } else {
                totals.unacked += 1;
            }
            for attempt in &record.attempts {
                totals.max_latency = totals.max_latency.max(attempt.latency);
                match attempt.answer {
                    Answer::Status(code) if !(200..300).contains(&code) => totals.refusals += 1,
                    Answer::Status(_) => {}
                    Answer::Timeout => totals.timeouts += 1,
                    Answer::Transport(_) => totals.transport_errors += 1,
                }
            }
        }
        totals
    }

    /// Writes one JSON line per attempt (`kind`, `attempt`, `sent_ms`, `latency_ms`,
    /// `answer`) to `out`.
    pub fn write_jsonl(&self, out: &mut impl Write) -> std::io::Result<()> {
        for record in self.records() {
            let kind = match &record.kind {
                Kind::Message {
                    visitor,
                    message,
                    copy,
                } => json!({"message": {"visitor": visitor, "message": message, "copy": copy}}),
                Kind::Poison(n) => json!({"poison": n}),
                Kind::Echo(id) => json!({"echo": id}),
            };
            for (n, attempt) in record.attempts.iter().enumerate() {
                let answer = match &attempt.answer {
                    Answer::Status(code) => json!(code),
                    Answer::Timeout => json!("timeout"),
                    Answer::Transport(error) => json!(error),
                };
                let line = json!({
                    "kind": kind, "attempt": n + 1,
                    "sent_ms": attempt.sent_at.as_millis() as u64,
                    "latency_ms": attempt.latency.as_millis() as u64,
                    "answer": answer,
                });
                writeln!(out, "{line}")?;
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Record>> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
