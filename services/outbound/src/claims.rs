//! The claim loop every kind of ledger row shares: claim due rows of one kind, perform each
//! in a task of its own (bounded), and come back when woken, when a task ends or after the
//! poll interval.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deskie_store::Store;
use deskie_store::outbox::{self, ClaimedIntent};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How the delivery loop sleeps when nothing woke it.
pub(crate) const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Performs one claimed ledger row and settles it (fenced by the claim's attempt).
pub(crate) trait Perform: Send + Sync + 'static {
    /// Performs `claim`; whatever happens, the row ends settled or its lease runs out.
    fn perform(&self, claim: ClaimedIntent) -> impl Future<Output = ()> + Send;
}

/// One kind of row and how many of it run at once.
#[derive(Debug, Clone)]
pub(crate) struct Lane {
    /// The ledger kind claimed.
    pub kind: &'static str,
    /// Rows performed at once (each in its own task).
    pub concurrency: usize,
    /// How long a claim is exclusive.
    pub lease: Duration,
    /// How long to sleep when nothing woke the loop.
    pub poll_interval: Duration,
}

/// Claims and performs `lane`'s rows until `shutdown`; then waits for the calls in flight
/// (bounded by the HTTP client's timeout) so their outcomes are recorded.
pub(crate) async fn run<P: Perform>(
    performer: Arc<P>,
    store: Store,
    lane: Lane,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(lane.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let free = permits.available_permits();
        if free > 0 {
            let limit = i64::try_from(free).unwrap_or(i64::MAX);
            match outbox::claim_due(store.pool(), lane.kind, limit, lane.lease).await {
                Ok(claims) => {
                    let claimed = claims.len();
                    for claim in claims {
                        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                            break;
                        };
                        let performer = Arc::clone(&performer);
                        let wake = Arc::clone(&wake);
                        tasks.spawn(async move {
                            performer.perform(claim).await;
                            drop(permit);
                            // The stream's next row may be due now.
                            wake.notify_one();
                        });
                    }
                    if claimed > 0 && claimed == free {
                        continue;
                    }
                }
                Err(error) => tracing::warn!(%error, kind = lane.kind, "cannot claim; retrying"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(lane.poll_interval) => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}
