//! The background check of integrations' API keys against Chatra.
//!
//! The admin never waits for Chatra: a connect or update only *requests* a check
//! ([`KeyCheckRequests`]) and answers with status `pending`. The [`KeyChecker`] task runs
//! the checks concurrently and records each result as `IntegrationKeysChecked`. A sweep
//! (at start, then every [`SWEEP_INTERVAL`]) catches whatever a request missed: integrations
//! still `pending` (a full queue, a restart mid-check) and `unreachable` ones whose last
//! check is older than [`UNREACHABLE_RECHECK_AFTER`].

mod probe;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deskie_config::Cipher;
use deskie_store::Store;
use deskie_store::read_models::integrations;
use secrecy::SecretString;
use tokio::sync::mpsc;
use tokio::task::{Id as TaskId, JoinSet};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use probe::{ChatraProbe, KEY_CHECK_PATH, KEY_CHECK_TIMEOUT, classify};

use crate::commands::integrations::{KeyStatus, record_key_check};
use crate::metrics::ApiMetrics;

/// How often the sweep looks for integrations due for a check.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// How long an `unreachable` result stands before the sweep checks again.
pub const UNREACHABLE_RECHECK_AFTER: Duration = Duration::from_secs(10 * 60);

/// Most checks running at once; the sweep leaves the rest for its next round.
const MAX_CONCURRENT_CHECKS: usize = 16;

/// Requests queued for the checker before new ones are left to the sweep.
const REQUEST_QUEUE: usize = 256;

/// The handlers' side: asks for a check without waiting for it.
#[derive(Debug, Clone)]
pub struct KeyCheckRequests(mpsc::Sender<Uuid>);

impl KeyCheckRequests {
    /// Asks for a check of integration `id`. Never blocks: when the queue is full the
    /// integration stays `pending` and the next sweep checks it.
    pub fn request(&self, id: Uuid) {
        if self.0.try_send(id).is_err() {
            tracing::debug!(integration_id = %id, "key check queue full; left to the sweep");
        }
    }
}

/// What every check needs, shared by the check tasks.
#[derive(Debug)]
struct CheckContext {
    store: Store,
    cipher: Cipher,
    probe: ChatraProbe,
    metrics: ApiMetrics,
}

/// The background task that checks keys; see the module documentation.
#[derive(Debug)]
pub struct KeyChecker {
    context: Arc<CheckContext>,
    requests: mpsc::Receiver<Uuid>,
}

impl KeyChecker {
    /// A checker and the handle through which handlers request checks.
    pub fn new(
        store: Store,
        cipher: Cipher,
        probe: ChatraProbe,
        metrics: ApiMetrics,
    ) -> (Self, KeyCheckRequests) {
        let (sender, requests) = mpsc::channel(REQUEST_QUEUE);
        let context = Arc::new(CheckContext {
            store,
            cipher,
            probe,
            metrics,
        });
        (Self { context, requests }, KeyCheckRequests(sender))
    }

    /// Runs until `shutdown` is cancelled.
    ///
    /// On shutdown, checks still waiting for Chatra are aborted rather than awaited (up to
    /// 10 s each): an aborted check recorded nothing, so its integration is still `pending`
    /// or stale `unreachable`, and the first sweep after the next start checks it again.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut checks = JoinSet::new();
        let mut in_flight: HashMap<TaskId, Uuid> = HashMap::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(id) = self.requests.recv() => {
                    // Requested checks always start: a second request for the same id means
                    // its settings changed, and the older check's result will not count.
                    let task = checks.spawn(check(Arc::clone(&self.context), id));
                    in_flight.insert(task.id(), id);
                }
                _ = sweep.tick() => {
                    for id in self.due(&in_flight).await {
                        let task = checks.spawn(check(Arc::clone(&self.context), id));
                        in_flight.insert(task.id(), id);
                    }
                }
                Some(done) = checks.join_next_with_id(), if !checks.is_empty() => {
                    let task = match done {
                        Ok((task, ())) => task,
                        Err(error) => {
                            tracing::error!(%error, "a key check task failed");
                            error.id()
                        }
                    };
                    in_flight.remove(&task);
                }
            }
        }
        checks.shutdown().await;
    }

    /// Integrations due for a check and not being checked, within the concurrency budget.
    async fn due(&self, in_flight: &HashMap<TaskId, Uuid>) -> Vec<Uuid> {
        let budget = MAX_CONCURRENT_CHECKS.saturating_sub(in_flight.len());
        if budget == 0 {
            return Vec::new();
        }
        let stale = chrono::Duration::from_std(UNREACHABLE_RECHECK_AFTER)
            .unwrap_or_else(|_| chrono::Duration::minutes(10));
        let due = integrations::due_for_key_check(
            self.context.store.pool(),
            chrono::Utc::now() - stale,
            i64::try_from(MAX_CONCURRENT_CHECKS).unwrap_or(16),
        )
        .await;
        match due {
            Ok(ids) => ids
                .into_iter()
                .filter(|id| !in_flight.values().any(|busy| busy == id))
                .take(budget)
                .collect(),
            Err(error) => {
                tracing::warn!(error = %error, "key check sweep cannot read integrations");
                Vec::new()
            }
        }
    }
}

/// Checks one integration's current keys and records the result.
async fn check(context: Arc<CheckContext>, id: Uuid) {
    let integration = match integrations::get(context.store.pool(), id).await {
        Ok(Some(integration)) => integration,
        Ok(None) => return, // disconnected meanwhile
        Err(error) => {
            tracing::warn!(integration_id = %id, error = %error, "key check cannot load the integration");
            return;
        }
    };
    let (status, detail) = match context
        .cipher
        .decrypt_string(&integration.secret_key_encrypted)
    {
        Ok(secret) => {
            let secret = SecretString::from(secret);
            context.probe.check(&integration.public_key, &secret).await
        }
        Err(error) => (
            KeyStatus::Unreachable,
            Some(format!("the stored secret key cannot be used: {error}")),
        ),
    };
    context.metrics.key_checked(status.as_str());
    let cause = format!("key-check-{}", Uuid::new_v4());
    let recorded = record_key_check(
        &context.store,
        id,
        integration.settings_version,
        status,
        detail.clone(),
        &cause,
    )
    .await;
    match recorded {
        Ok(()) => tracing::info!(
            integration_id = %id,
            settings_version = integration.settings_version,
            status = status.as_str(),
            detail = detail.as_deref().unwrap_or(""),
            "Chatra API keys checked"
        ),
        Err(error) => tracing::warn!(
            integration_id = %id,
            error = %error,
            "key check result cannot be recorded; the sweep will retry"
        ),
    }
}
