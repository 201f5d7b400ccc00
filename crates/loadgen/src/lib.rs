//! The tools that prove the guarantees (issue 11): drive a running deskie suite with
//! simulated Chatra visitors, keep a ledger of every webhook and its answers, stand in for
//! Chatra, Slack and Telegram, and check afterwards that nothing acknowledged was lost and
//! nothing was done twice.
//!
//! - [`Plan`]: how many visitors, messages each, at what rate, and which extras (duplicate
//!   sends, poison bodies).
//! - [`Sinks`]: the Chatra, Slack and Telegram stand-ins the suite talks to.
//! - [`Target::connect`]: groups, a Chatra integration and a greeting rule set up through the
//!   API of a running suite.
//! - [`drive`]: sends the plan, resending like a provider (same body) on a non-2xx or a
//!   timeout, recording everything in the [`Ledger`]; echoes the replies Chatra got back
//!   through ingest as Chatra does; prints a progress line.
//! - [`Checker`]: waits for the suite to drain, then compares the ledger with the API and the
//!   stand-ins: a [`Report`] whose failure figures must all be zero.

mod checker;
mod dead_letters;
mod drive;
mod echo;
mod error;
mod ledger;
mod plan;
mod progress;
mod report;
mod sender;
mod sinks;
mod target;

pub use checker::Checker;
pub use dead_letters::dead_letter_count;
pub use drive::{Driven, drive};
pub use error::LoadError;
pub use ledger::{Answer, Attempt, Kind, Ledger, LedgerTotals, Record};
pub use plan::{Plan, Poison, Visitor};
pub use report::Report;
pub use sender::{ResendPolicy, Sender};
pub use sinks::Sinks;
pub use target::Target;
