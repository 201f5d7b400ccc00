//! The periodic retention job.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{
    RetentionMetrics, prune_client_updates, prune_inbox, prune_outbox, prune_visitor_fetches,
};
use crate::{Store, StoreError};

/// How old a row of each table must be to be pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ages {
    /// `inbox`: the redelivery horizon.
    pub inbox: Duration,
    /// Settled `outbox` rows.
    pub outbox: Duration,
    /// Settled `agent_sync_visitor_fetches` rows.
    pub visitor_fetches: Duration,
}

/// Prunes every table once, logging and counting what was deleted; the rows deleted per
/// table, in the order inbox, outbox, visitor fetches, client updates (under the outbox's
/// age).
pub async fn run_once(
    store: &Store,
    ages: &Ages,
    metrics: Option<&RetentionMetrics>,
) -> Result<[(&'static str, u64); 4], StoreError> {
    let pool = store.pool();
    let counts = [
        ("inbox", prune_inbox(pool, ages.inbox).await?),
        ("outbox", prune_outbox(pool, ages.outbox).await?),
        (
            "agent_sync_visitor_fetches",
            prune_visitor_fetches(pool, ages.visitor_fetches).await?,
        ),
        (
            "agent_sync_client_updates",
            prune_client_updates(pool, ages.outbox).await?,
        ),
    ];
    for (table, rows) in counts {
        if let Some(metrics) = metrics {
            metrics.count(table, rows);
        }
    }
    let [
        (_, inbox),
        (_, outbox),
        (_, visitor_fetches),
        (_, client_updates),
    ] = counts;
    tracing::info!(
        inbox,
        outbox,
        visitor_fetches,
        client_updates,
        "retention: pruned old rows"
    );
    Ok(counts)
}

/// Runs [`run_once`] at start and then every `every` until `shutdown`; a failure is logged
/// and retried at the next tick.
pub async fn run(
    store: Store,
    ages: Ages,
    every: Duration,
    metrics: Option<RetentionMetrics>,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        if let Err(error) = run_once(&store, &ages, metrics.as_ref()).await {
            tracing::warn!(%error, "retention: pruning failed; retrying at the next tick");
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}
