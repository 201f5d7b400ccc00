//! Visitor details from Chatra's visitor card (`GET /clients/{id}`).
//!
//! Webhooks carry the visitor's contact data but no key known for IP, browser, OS, language,
//! location, last visit or group (`chatra-api.md` §8.7), so the card is fetched once when a
//! case opens and again when the chat ends (`chatTranscript` → `ChatEnded`):
//!
//! 1. The case event enqueues a row in agent-sync's ledger (`agent_sync_visitor_fetches`,
//!    one per case and round) in the case's transaction, with the consumer's cursor, and
//!    is acknowledged at once: nothing waits on Chatra.
//! 2. The fetch loop ([`VisitorFetcher::run`]) claims due rows with a lease, holds each
//!    integration to its rate limit (a row over the limit is put back at the
//!    integration's next free slot ([`slots`]), not counted as an attempt), calls Chatra,
//!    and records what the card adds (`CustomerDataChanged` with source `chatra_visitor`,
//!    maybe `CaseGroupChanged`) with the row settled, in one transaction under the case's
//!    lock ([`record`]).
//! 3. A failure never reaches the case: it is kept in the row (`attempts`, `last_error`),
//!    counted and logged, and the row is due again after a doubling wait ([`policy`]),
//!    until it is given up (`failed`).
//!
//! Several instances share the ledger (`SKIP LOCKED`); each keeps its own rate limit.

mod policy;
mod record;
mod slots;

pub use policy::VisitorFetchConfig;

use std::time::Duration;

use deskie_chatra::ChatraClient;
use deskie_config::Cipher;
use deskie_domain::chatra::parse_visitor;
use deskie_store::Store;
use deskie_store::read_models::{cases, integrations};
use deskie_store::visitor_fetches::{self, ClaimedFetch, FetchSettlement};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::credentials::{credentials, usable};
use crate::{AgentSyncMetrics, Wake};
use policy::AfterFailure;
use record::{Recorded, record_visitor, settle_only};
use slots::Slots;

/// The fetch loop; see the module documentation.
pub struct VisitorFetcher {
    store: Store,
    chatra: ChatraClient,
    cipher: Cipher,
    config: VisitorFetchConfig,
    limiter: DefaultKeyedRateLimiter<Uuid>,
    slots: Slots,
    metrics: AgentSyncMetrics,
    wake: Wake,
}

impl std::fmt::Debug for VisitorFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisitorFetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed, and whether asking again may help.
struct Failure {
    error: String,
    next: AfterFailure,
}

impl VisitorFetcher {
    /// The loop and the queue that feeds it.
    pub fn new(
        store: Store,
        chatra: ChatraClient,
        cipher: Cipher,
        config: VisitorFetchConfig,
        metrics: AgentSyncMetrics,
    ) -> (Self, Wake) {
        let wake = Wake::default();
        let quota = Quota::per_second(config.per_second).allow_burst(config.burst);
        let slots = Slots::new(config.per_second);
        let fetcher = Self {
            store,
            chatra,
            cipher,
            config,
            limiter: RateLimiter::keyed(quota),
            slots,
            metrics,
            wake: wake.clone(),
        };
        (fetcher, wake)
    }

    /// Fetches due cards until `shutdown`; a fetch in hand is finished first (one Chatra
    /// call, bounded by the client's timeout, below the lease).
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            // Checked before every claim, not only when idle: with a backlog of due
            // fetches every batch is full, and `bench-cases` (15,000 new chats, Chatra
            // unreachable) kept a stopping suite busy for over ten minutes.
            if shutdown.is_cancelled() {
                return;
            }
            let claimed = match visitor_fetches::claim_due(
                self.store.pool(),
                self.config.batch,
                self.config.lease,
            )
            .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "cannot claim visitor fetches; trying again later");
                    Vec::new()
                }
            };
            let full = i64::try_from(claimed.len()).unwrap_or(i64::MAX) >= self.config.batch;
            // The batch's fetches run side by side, so the last one starts well within its
            // lease however slowly Chatra answers (each call is bounded by its timeout).
            let outcomes =
                futures::future::join_all(claimed.iter().map(|claim| self.fetch(claim))).await;
            // A full batch that the rate limit put back whole would only be claimed again at
            // once: wait as after a short one.
            let paced = outcomes.iter().all(|outcome| *outcome == RATE_LIMITED);
            if full && !paced {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    /// One claimed fetch, from the call to the settled row.
    async fn fetch(&self, claim: &ClaimedFetch) -> &'static str {
        let span = tracing::info_span!("visitor_fetch", case_id = %claim.case_id,
            round = %claim.round, attempt = claim.attempts);
        let outcome = async {
            match self.try_fetch(claim).await {
                Ok(outcome) => outcome,
                Err(failure) => self.fail(claim, failure).await,
            }
        }
        .instrument(span)
        .await;
        self.metrics.visitor_fetch(outcome);
        outcome
    }

    /// Calls Chatra and records the card; the label of what happened, or why it failed.
    async fn try_fetch(&self, claim: &ClaimedFetch) -> Result<&'static str, Failure> {
        let case = cases::get(self.store.pool(), claim.case_id)
            .await
            .map_err(|e| self.retry(claim, e.to_string()))?
            .ok_or_else(|| self.retry(claim, "the case is not in the read model".into()))?;
        let integration = integrations::get(self.store.pool(), case.integration_id)
            .await
            .map_err(|e| self.retry(claim, e.to_string()))?
            .ok_or_else(|| give_up("the integration is disconnected"))?;
        if !usable(&integration) {
            return Err(self.retry(claim, "the integration's keys are refused".into()));
        }
        let creds = credentials(&self.cipher, &integration)
            .map_err(|e| give_up(&format!("the secret key does not decrypt: {e}")))?;
        if let Err(not_until) = self.limiter.check_key(&case.integration_id) {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            let slot = self
                .slots
                .take(case.integration_id, std::time::Instant::now(), wait);
            return Ok(self.release(claim, slot).await);
        }
        let card = self
            .chatra
            .get_client(&creds, &case.chatra_client_id)
            .await
            .map_err(|e| Failure {
                next: self.config.after_failure(claim.attempts, &e),
                error: e.to_string(),
            })?;
        let visitor =
            parse_visitor(&card, &case.chatra_client_id).map_err(|e| give_up(&e.to_string()))?;
        match record_visitor(&self.store, claim, &visitor, &integration).await {
            Ok(Recorded::Done(events)) => {
                tracing::info!(events, "visitor card recorded");
                Ok("done")
            }
            Ok(Recorded::ClaimLost) => Ok("claim_lost"),
            Err(e) => Err(self.retry(claim, format!("recording the card: {e}"))),
        }
    }

    fn retry(&self, claim: &ClaimedFetch, error: String) -> Failure {
        Failure {
            next: self.config.retry_after(claim.attempts, None),
            error,
        }
    }

    /// Records a failed attempt in the row (never on the case).
    async fn fail(&self, claim: &ClaimedFetch, failure: Failure) -> &'static str {
        let Failure { error, next } = failure;
        let (settlement, label) = match next {
            AfterFailure::Retry(after) => {
                tracing::warn!(%error, retry_in = ?after, "visitor card not fetched; will retry");
                (FetchSettlement::Retry { after, error }, "retried")
            }
            AfterFailure::GiveUp => {
                tracing::warn!(%error, "visitor card not fetched; giving up");
                (FetchSettlement::Failed { error }, "failed")
            }
        };
        if let Err(error) = settle_only(&self.store, claim, &settlement).await {
            tracing::error!(%error, "cannot record the failed fetch; the lease will run out and it is claimed again");
        }
        label
    }

    /// Puts the row back untried, due after `wait`: the integration's rate limit held it
    /// back, and `wait` is its next free slot.
    async fn release(&self, claim: &ClaimedFetch, wait: Duration) -> &'static str {
        let released = async {
            let mut conn = self.store.pool().acquire().await?;
            visitor_fetches::release(&mut conn, claim, wait).await
        };
        if let Err(error) = released.await {
            tracing::error!(%error, "cannot put a rate-limited fetch back; the lease will run out");
        }
        RATE_LIMITED
    }
}

/// The outcome of a fetch the rate limit put back.
const RATE_LIMITED: &str = "rate_limited";

fn give_up(error: &str) -> Failure {
    Failure {
        error: error.to_owned(),
        next: AfterFailure::GiveUp,
    }
}
