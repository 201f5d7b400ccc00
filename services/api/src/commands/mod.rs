//! Writes: each decides under its stream's lock, appends the events, and updates the read
//! models in the same transaction, so a response after commit shows them.

pub mod agents;
pub mod cases;
pub mod groups;
pub mod integrations;
pub mod rules;

use deskie_proto::events::Event;
use deskie_store::{StoreError, StreamTx};

/// Who decides the events this crate appends.
pub const EMITTED_BY: &str = "api";

/// Appends `event` after the version read under the lock, then projects it.
///
/// `cause` is the request id (or a key check's id): causation and correlation at once,
/// since every api write starts a chain of its own.
pub(crate) async fn append_and_project(
    tx: &mut StreamTx,
    event: Event,
    cause: &str,
) -> Result<(), StoreError> {
    tx.append_config_event(event, cause, EMITTED_BY)
        .await
        .map(|_| ())
}
