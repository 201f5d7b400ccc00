//! Which token each integration expects: answered from the in-process cache when it may
//! be ([`crate::credential_cache`] argues the staleness bound), else from the
//! `integrations` read model.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use deskie_store::Store;
use deskie_store::read_models::integration_changes::{Heard, IntegrationChanges};
use deskie_store::read_models::integrations::{self, WebhookCredentials};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::credential_cache::{Answer, CredentialCache};
use crate::metrics::CredentialMetrics;

/// The `application_name` of the session that listens for integration changes.
pub const LISTENER_NAME: &str = "deskie-ingest-credentials";

/// How long opening the listening session may take before it counts as failed.
const LISTEN_DEADLINE: Duration = Duration::from_secs(10);

/// Pause before listening again after the listener's session was lost or could not be
/// opened; lookups read the database meanwhile.
const RELISTEN_PAUSE: Duration = Duration::from_secs(1);

/// The answer to "which token does this integration expect?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The integration is connected and expects this token.
    Known(WebhookCredentials),
    /// No such (connected) integration.
    Unknown,
    /// PostgreSQL is unreachable and nothing recent is known.
    Unavailable,
}

impl From<Answer> for Lookup {
    fn from(answer: Answer) -> Self {
        answer.map_or(Self::Unknown, Self::Known)
    }
}

/// Answers from the cache while the change listener ([`CredentialLookup::follow_changes`])
/// is connected, else with a primary-key read of the read model; keeps the last
/// credentials read to ride out a PostgreSQL outage.
pub(crate) struct CredentialLookup {
    store: Store,
    cache: Mutex<CredentialCache>,
    metrics: CredentialMetrics,
}

impl CredentialLookup {
    pub fn new(store: Store, metrics: CredentialMetrics) -> Self {
        Self {
            store,
            cache: Mutex::new(CredentialCache::default()),
            metrics,
        }
    }

    pub async fn lookup(&self, integration_id: Uuid) -> Lookup {
        let started = Instant::now();
        let read = {
            let cache = self.cache();
            if let Some(answer) = cache.fresh(integration_id, started) {
                self.metrics.looked_up("cache");
                return answer.clone().into();
            }
            cache.begin_read(started)
        };
        match integrations::webhook_credentials(self.store.pool(), integration_id).await {
            Ok(answer) => {
                self.metrics.looked_up("database");
                self.cache()
                    .record(integration_id, answer.clone(), read, Instant::now());
                answer.into()
            }
            Err(error) => {
                tracing::warn!(%error, %integration_id, "integration lookup failed; trying the last known answer");
                let last_known = self
                    .cache()
                    .last_known(integration_id, Instant::now())
                    .cloned();
                match last_known {
                    Some(credentials) => {
                        self.metrics.looked_up("last_known");
                        Lookup::Known(credentials)
                    }
                    None => {
                        self.metrics.looked_up("unavailable");
                        Lookup::Unavailable
                    }
                }
            }
        }
    }

    /// Listens for integration changes until `shutdown`, evicting each changed integration,
    /// and listens again whenever the session is lost. Between a loss and the next
    /// successful `LISTEN` the cache serves nothing (every lookup reads the database), and
    /// what it read before is not served afterwards: a notification missed meanwhile can
    /// never keep a stale answer alive.
    pub async fn follow_changes(&self, shutdown: CancellationToken) {
        let mut failing = false;
        while !shutdown.is_cancelled() {
            let listen = IntegrationChanges::listen(&self.store, LISTENER_NAME);
            let listened = tokio::select! {
                _ = shutdown.cancelled() => return,
                listened = tokio::time::timeout(LISTEN_DEADLINE, listen) => listened
                    .map_err(|_| format!("no answer within {LISTEN_DEADLINE:?}"))
                    .and_then(|result| result.map_err(|error| error.to_string())),
            };
            match listened {
                Ok(changes) => {
                    failing = false;
                    self.set_listening(true);
                    tracing::info!(
                        "listening for integration changes; serving token hashes from the cache"
                    );
                    let lost = self.hear(changes, &shutdown).await;
                    self.set_listening(false);
                    match lost {
                        None => return,
                        Some(reason) => tracing::warn!(
                            %reason,
                            "stopped hearing integration changes; every lookup reads the database until listening again"
                        ),
                    }
                }
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "cannot listen for integration changes; every lookup reads the database meanwhile");
                }
                Err(error) => {
                    tracing::debug!(%error, "still cannot listen for integration changes")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RELISTEN_PAUSE) => {}
            }
        }
    }

    /// Applies what `changes` hears until the session is lost (`Some(why)`) or `shutdown`
    /// (`None`).
    async fn hear(
        &self,
        mut changes: IntegrationChanges,
        shutdown: &CancellationToken,
    ) -> Option<String> {
        loop {
            let heard = tokio::select! {
                _ = shutdown.cancelled() => return None,
                heard = changes.next() => heard,
            };
            match heard {
                Ok(Heard::Changed(id)) => {
                    self.cache().invalidate(id);
                    self.metrics.invalidated("integration");
                    tracing::debug!(integration_id = %id, "integration changed; its cached token hash dropped");
                }
                Ok(Heard::Unreadable) => {
                    self.cache().invalidate_all();
                    self.metrics.invalidated("all");
                    tracing::warn!(
                        "a notification on the integrations channel names no integration; every cached token hash dropped"
                    );
                }
                Ok(Heard::Lost) => return Some("the listening session ended".to_owned()),
                Err(error) => return Some(error.to_string()),
            }
        }
    }

    fn set_listening(&self, listening: bool) {
        let mut cache = self.cache();
        if listening {
            cache.listening();
        } else {
            cache.deaf();
        }
        self.metrics.listening.set(i64::from(cache.is_listening()));
    }

    fn cache(&self) -> MutexGuard<'_, CredentialCache> {
        // No cache method panics, so a poisoned lock still holds a consistent map.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
