//! What a fetched card teaches, recorded on the case with the ledger row settled, in one
//! transaction under the case stream's lock (as every writer of case events does).

use deskie_domain::case::decide_visitor_details;
use deskie_domain::chatra::ChatraVisitor;
use deskie_store::read_models::integrations::Integration;
use deskie_store::visitor_fetches::{self, ClaimedFetch, FetchSettlement};
use deskie_store::{Asking, Cause, Store, StoreError};
use uuid::Uuid;

use crate::SERVICE;

/// What [`record_visitor`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// The row is done; this many events were appended (0: the case knew it all).
    Done(usize),
    /// The claim was no longer current (its lease ran out): nothing written.
    ClaimLost,
}

/// Settles `claim` as done and appends what `visitor` adds to the case (see
/// [`decide_visitor_details`]), projected into the case read model, then commits.
pub(crate) async fn record_visitor(
    store: &Store,
    claim: &ClaimedFetch,
    visitor: &ChatraVisitor,
    integration: &Integration,
) -> Result<Recorded, StoreError> {
    let mut case = store.open_case(claim.case_id).await?;
    if !visitor_fetches::settle(case.connection(), claim, &FetchSettlement::Done).await? {
        return Ok(Recorded::ClaimLost);
    }
    let state = case.state(&Asking::nothing()).await?;
    let mappings: Vec<(String, Uuid)> = integration
        .group_mappings
        .iter()
        .map(|m| (m.chatra_group_id.clone(), m.group_id))
        .collect();
    let events = decide_visitor_details(state, visitor, &mappings, integration.default_group_id);
    let cause = Cause {
        causation_id: &claim.causation_id,
        correlation_id: &claim.correlation_id,
        emitted_by: SERVICE,
    };
    let appended = case.record(events, &cause).await?.len();
    case.commit().await?;
    Ok(Recorded::Done(appended))
}

/// Settles `claim` without touching the case (a failed attempt); `false` when the claim was
/// lost.
pub(crate) async fn settle_only(
    store: &Store,
    claim: &ClaimedFetch,
    settlement: &FetchSettlement,
) -> Result<bool, StoreError> {
    let mut conn = store.pool().acquire().await?;
    visitor_fetches::settle(&mut conn, claim, settlement).await
}
