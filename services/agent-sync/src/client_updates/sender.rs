//! The worker that sends due customer edits to Chatra, and the queue that wakes it.

use std::time::Duration;

use deskie_chatra::{ChatraClient, ChatraError};
use deskie_config::Cipher;
use deskie_proto::events::Envelope;
use deskie_store::client_updates::{self, ClaimedUpdate, UpdateSettlement};
use deskie_store::read_models::integrations;
use deskie_store::{Asking, Store, StoreError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::pending_update;
use crate::credentials::credentials;
use crate::{AgentSyncMetrics, Wake};

/// The shortest retry wait, even when Chatra says `Retry-After: 0` (no hot loop).
const MIN_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two attempts when Chatra names none.
const MAX_RETRY: Duration = Duration::from_secs(60);
/// How often the queue is read when nothing wakes the sender (another instance's rows,
/// a lease that ran out).
const POLL: Duration = Duration::from_secs(5);
/// Cases claimed at once; their calls run side by side.
const BATCH: i64 = 20;
/// How much longer than one Chatra call a claim is held (reading the case, settling).
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// Sends what is due; see the module documentation of [`crate::client_updates`].
#[derive(Debug)]
pub struct ClientUpdateSender {
    store: Store,
    chatra: ChatraClient,
    cipher: Cipher,
    lease: Duration,
    metrics: AgentSyncMetrics,
    wake: Wake,
}

/// Why one attempt failed, and when to try again.
struct Failure {
    error: String,
    after: Duration,
}

impl ClientUpdateSender {
    /// The sender and the [`Wake`] of whoever queues edits for it
    /// ([`client_updates::mark_due`]); a claim outlives one Chatra call bounded by
    /// `chatra_timeout`.
    pub fn new(
        store: Store,
        chatra: ChatraClient,
        cipher: Cipher,
        chatra_timeout: Duration,
        metrics: AgentSyncMetrics,
    ) -> (Self, Wake) {
        let wake = Wake::default();
        let sender = Self {
            store,
            chatra,
            cipher,
            lease: chatra_timeout + LEASE_MARGIN,
            metrics,
            wake: wake.clone(),
        };
        (sender, wake)
    }

    /// Sends due edits until `shutdown`; the calls in hand are finished and settled first
    /// (each bounded by the client's timeout, below the lease).
    pub async fn run(self, shutdown: CancellationToken) {
        // The soonest retry this instance scheduled: a wake in between must not lose it.
        let mut retry_at: Option<Instant> = None;
        loop {
            if retry_at.is_some_and(|at| at <= Instant::now()) {
                retry_at = None; // due: the claim below takes it
            }
            let claimed =
                match client_updates::claim_due(self.store.pool(), BATCH, self.lease).await {
                    Ok(claimed) => claimed,
                    Err(error) => {
                        tracing::warn!(%error, "cannot claim customer edits; trying again later");
                        Vec::new()
                    }
                };
            let full = i64::try_from(claimed.len()).unwrap_or(i64::MAX) >= BATCH;
            let waits =
                futures::future::join_all(claimed.iter().map(|claim| self.send(claim))).await;
            let now = Instant::now();
            for at in waits.into_iter().flatten().map(|wait| now + wait) {
                retry_at = Some(retry_at.map_or(at, |soonest| soonest.min(at)));
            }
            if full {
                continue;
            }
            // Sleep until this instance's soonest retry is due, or the next poll.
            let until = retry_at.map_or(now + POLL, |at| at.min(now + POLL));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// One claimed case, from the call to the settled row; the wait before its retry, if
    /// it failed.
    async fn send(&self, claim: &ClaimedUpdate) -> Option<Duration> {
        let span = tracing::info_span!("client_update", case_id = %claim.case_id,
            sent_up_to = claim.sent_up_to, due_up_to = claim.due_up_to);
        async {
            let (settlement, retry) = match self.try_send(claim).await {
                Ok(()) => (UpdateSettlement::Settled, None),
                Err(Failure { error, after }) => {
                    tracing::warn!(%error, retry_in = ?after, "customer edit not sent to Chatra; will retry");
                    (UpdateSettlement::Retry { after, error }, Some(after))
                }
            };
            match client_updates::settle(self.store.pool(), claim, &settlement).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!("the claim ran out before it was settled; the later claim decides"),
                Err(error) => tracing::error!(%error, "cannot settle the customer edit; the lease will run out and it is claimed again"),
            }
            retry
        }
        .instrument(span)
        .await
    }

    /// Sends what Chatra is missing of the claimed edits; `Ok` when they are done with
    /// (sent, or given up for good).
    async fn try_send(&self, claim: &ClaimedUpdate) -> Result<(), Failure> {
        let case_id = claim.case_id;
        let case = self
            .store
            .case_state(case_id, &Asking::nothing())
            .await
            .map_err(|e| self.retry(claim, &e))?;
        let Some(integration_id) = case
            .opened
            .then(|| case.integration_id.parse::<Uuid>().ok())
            .flatten()
        else {
            tracing::warn!("the case has no case_opened; its customer edits are not sent");
            self.metrics.client_update("skipped");
            return Ok(());
        };
        let client_id = case.chatra_client_id;
        // Only what came after the last send decides what Chatra is missing.
        let history: Vec<Envelope> = self
            .store
            .stream_events_after(case_id, claim.sent_up_to)
            .await
            .map_err(|e| self.retry(claim, &e))?
            .into_iter()
            .map(|stored| stored.envelope)
            .collect();
        let update = pending_update(&history, claim.sent_up_to, claim.due_up_to);
        if update.name.is_none() && update.email.is_none() && update.phone.is_none() {
            // Chatra already has a newer value for every field these edits touched.
            self.metrics.client_update("skipped");
            return Ok(());
        }
        let integration = integrations::get(self.store.pool(), integration_id)
            .await
            .map_err(|e| self.retry(claim, &e))?;
        let Some(integration) = integration else {
            tracing::info!(%integration_id, "integration disconnected; customer edit not sent to Chatra");
            self.metrics.client_update("skipped");
            return Ok(());
        };
        let credentials = match credentials(&self.cipher, &integration) {
            Ok(credentials) => credentials,
            Err(error) => {
                tracing::warn!(%integration_id, %error, "the secret key does not decrypt; customer edit given up");
                self.metrics.client_update("skipped");
                return Ok(());
            }
        };
        match self
            .chatra
            .update_client(&credentials, &client_id, &update)
            .await
        {
            Ok(()) | Err(ChatraError::BadResponse { .. }) => {
                self.metrics.client_update("sent");
                tracing::info!("customer edit sent to Chatra");
                Ok(())
            }
            Err(ChatraError::Rejected { status, body }) => {
                self.metrics.client_update("rejected");
                tracing::warn!(%integration_id, status, %body, "Chatra rejected the customer edit; giving up");
                Ok(())
            }
            Err(error) => {
                self.metrics.client_update("retried");
                Err(Failure {
                    after: retry_wait(claim.failures, error.retry_after()),
                    error: error.to_string(),
                })
            }
        }
    }

    /// A store failure: tried again with the backoff (it is not Chatra's doing: not counted).
    fn retry(&self, claim: &ClaimedUpdate, error: &StoreError) -> Failure {
        Failure {
            error: error.to_string(),
            after: retry_wait(claim.failures, None),
        }
    }
}

/// The wait after a failed attempt that followed `failures` failed ones: Chatra's
/// `Retry-After` (at least [`MIN_RETRY`]), else [`MIN_RETRY`] doubled per earlier failure
/// up to [`MAX_RETRY`].
fn retry_wait(failures: i32, retry_after: Option<Duration>) -> Duration {
    retry_after.map_or_else(
        || {
            let doublings = u32::try_from(failures.clamp(0, 16)).unwrap_or(0);
            MIN_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
        },
        |after| after.max(MIN_RETRY),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_a_minute_and_chatra_may_name_it() {
        let waits: Vec<u64> = (0..8).map(|f| retry_wait(f, None).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(retry_wait(3, Some(Duration::ZERO)), MIN_RETRY);
        assert_eq!(
            retry_wait(0, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
    }
}
