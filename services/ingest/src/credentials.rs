//! Which token each integration expects.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deskie_store::Store;
use deskie_store::read_models::integrations::{self, WebhookCredentials};
use uuid::Uuid;

/// How long a last-known answer may stand in while PostgreSQL is unreachable.
const STALE_FALLBACK: Duration = Duration::from_secs(300);

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

/// Reads the `integrations` read model on every request, so a new, edited or disconnected
/// integration takes effect at once; the last answer per integration is kept only to ride
/// out a short PostgreSQL outage.
pub(crate) struct CredentialLookup {
    store: Store,
    last_known: Mutex<HashMap<Uuid, (WebhookCredentials, Instant)>>,
}

impl CredentialLookup {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            last_known: Mutex::new(HashMap::new()),
        }
    }

    pub async fn lookup(&self, integration_id: Uuid) -> Lookup {
        match integrations::webhook_credentials(self.store.pool(), integration_id).await {
            Ok(Some(credentials)) => {
                if let Ok(mut cache) = self.last_known.lock() {
                    cache.insert(integration_id, (credentials.clone(), Instant::now()));
                }
                Lookup::Known(credentials)
            }
            Ok(None) => {
                if let Ok(mut cache) = self.last_known.lock() {
                    cache.remove(&integration_id);
                }
                Lookup::Unknown
            }
            Err(error) => {
                tracing::warn!(%error, "integration lookup failed; trying the last known answer");
                let cache = self.last_known.lock().ok();
                cache
                    .and_then(|c| c.get(&integration_id).cloned())
                    .filter(|(_, at)| at.elapsed() < STALE_FALLBACK)
                    .map_or(Lookup::Unavailable, |(credentials, _)| {
                        Lookup::Known(credentials)
                    })
            }
        }
    }
}
