//! Configuration writes: each decides under its stream's lock, appends the events, and
//! updates the read models in the same transaction, so a response after commit shows them.

pub mod groups;
pub mod integrations;

use deskie_proto::events::Event;
use deskie_store::read_models::apply_config_event;
use deskie_store::{EventDraft, StoreError, StreamTx};

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
    let expected = tx.version();
    let stored = tx
        .append(
            expected,
            vec![EventDraft {
                event,
                causation_id: cause.to_owned(),
                correlation_id: cause.to_owned(),
                emitted_by: EMITTED_BY,
            }],
        )
        .await?;
    for envelope in &stored {
        apply_config_event(tx.connection(), envelope).await?;
    }
    Ok(())
}
