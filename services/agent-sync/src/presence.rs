//! Keeping online agents shown online in Chatra.
//!
//! Chatra has no "offline" call (`chatra-api.md` §5): an agent stays online in Chatra for a
//! few minutes after each ping. So the policy is only about *whom to ping when*:
//!
//! - **Who**: every agent the read model has as enabled, `online` and with `live_chat`
//!   access ([`agents::online_with_access`]), on every integration that is connected and
//!   not known to hold invalid keys.
//! - **At once**: an agent event ([`Wake`]) re-reads that agent; if pingable and not being
//!   pinged yet, it is pinged right away on every integration.
//! - **Then**: a tick every quarter interval pings each (agent, integration) whose next ping
//!   is due: [`AgentSyncConfig::ping_interval`] after the last success, sooner after a
//!   failure (a quarter interval, or Chatra's `Retry-After`, at most one interval).
//! - **Stop**: an agent who goes offline, is disabled or loses `live_chat` access is no
//!   longer read, so nothing is sent and Chatra shows them offline a few minutes later.
//!
//! Pings are idempotent. Several instances each run this loop, so an online agent gets one
//! ping per instance per interval (harmless, only more calls); the immediate ping happens
//! once, on the instance the durable consumer hands the agent event to.

use std::collections::HashMap;
use std::time::Duration;

use deskie_chatra::{AgentPing, ChatraClient, ChatraCredentials, ChatraError};
use deskie_config::Cipher;
use deskie_store::Store;
use deskie_store::read_models::agents::{self, Agent};
use deskie_store::read_models::integrations::{self, Integration};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::credentials::{credentials, usable};
use crate::status_sync::{PingVerdict, record_verdict, refusal_outcome, verdict_of};
use crate::{AgentSyncConfig, AgentSyncMetrics};

/// The channel whose agents are reported to Chatra.
pub const LIVE_CHAT: &str = "live_chat";

/// Pings in flight at once.
const MAX_CONCURRENT_PINGS: usize = 16;

/// Agent ids queued for an immediate look before new ones are left to the tick.
const WAKE_QUEUE: usize = 1024;

/// The consumers' side: "agent `id` changed, look at it now". Never blocks.
#[derive(Debug, Clone)]
pub struct Wake(mpsc::Sender<Uuid>);

impl Wake {
    /// Asks the presence loop to look at agent `id` now. When the queue is full the next
    /// tick covers the agent.
    pub fn agent_changed(&self, id: Uuid) {
        if self.0.try_send(id).is_err() {
            tracing::debug!(agent_id = %id, "presence queue full; left to the tick");
        }
    }
}

/// One integration pings go to.
struct Target {
    credentials: ChatraCredentials,
    /// The integration as read for this round: its id, and what its status shows.
    integration: Integration,
}

/// The presence loop; see the module documentation.
pub struct Presence {
    store: Store,
    chatra: ChatraClient,
    cipher: Cipher,
    received_from: String,
    interval: Duration,
    metrics: AgentSyncMetrics,
    wake: mpsc::Receiver<Uuid>,
    /// When each (agent, integration) is due next; an agent absent here is pinged at once.
    due: HashMap<(Uuid, Uuid), Instant>,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("interval", &self.interval)
            .field("pinging", &self.due.len())
            .finish_non_exhaustive()
    }
}

impl Presence {
    /// The loop, and the handle through which agent events wake it.
    pub fn new(
        store: Store,
        chatra: ChatraClient,
        config: &AgentSyncConfig,
        metrics: AgentSyncMetrics,
    ) -> (Self, Wake) {
        let (sender, wake) = mpsc::channel(WAKE_QUEUE);
        let presence = Self {
            store,
            chatra,
            cipher: config.cipher.clone(),
            received_from: config.received_from.clone(),
            interval: config.ping_interval.max(Duration::from_millis(40)),
            metrics,
            wake,
            due: HashMap::new(),
        };
        (presence, Wake(sender))
    }

    /// Runs until `shutdown` is cancelled. A round of pings in progress is finished first
    /// (each call is bounded by the client's timeout).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval / 4);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(id) = self.wake.recv() => self.agent_changed(id).await,
                _ = tick.tick() => self.sweep().await,
            }
        }
    }

    /// An agent event: ping at once if the agent became pingable, forget it if it is not.
    async fn agent_changed(&mut self, id: Uuid) {
        let agent = match agents::get(self.store.pool(), id).await {
            Ok(agent) => agent,
            Err(error) => {
                tracing::warn!(agent_id = %id, %error, "cannot read the agent; left to the tick");
                return;
            }
        };
        match agent.filter(pingable) {
            Some(agent) if !self.due.keys().any(|(a, _)| *a == id) => {
                let targets = self.targets().await;
                let pings = targets.iter().map(|t| (&agent, t)).collect();
                self.ping_all(pings).await;
            }
            Some(_) => {}
            None => self.due.retain(|(a, _), _| *a != id),
        }
    }

    /// The tick: pings what is due, forgets agents who are no longer pingable.
    async fn sweep(&mut self) {
        let online = match agents::online_with_access(self.store.pool(), LIVE_CHAT).await {
            Ok(online) => online,
            Err(error) => {
                tracing::warn!(%error, "cannot read online agents; next tick");
                return;
            }
        };
        self.due
            .retain(|(agent, _), _| online.iter().any(|a| a.id == *agent));
        if online.is_empty() {
            return;
        }
        let targets = self.targets().await;
        let now = Instant::now();
        let pings = online
            .iter()
            .flat_map(|agent| targets.iter().map(move |target| (agent, target)))
            .filter(|(agent, target)| {
                self.due
                    .get(&(agent.id, target.integration.id))
                    .is_none_or(|due| *due <= now)
            })
            .collect();
        self.ping_all(pings).await;
    }

    /// Integrations to ping on, keys decrypted; one that cannot be read is skipped, logged.
    async fn targets(&self) -> Vec<Target> {
        let all = match integrations::list(self.store.pool()).await {
            Ok(all) => all,
            Err(error) => {
                tracing::warn!(%error, "cannot read integrations; no pings this round");
                return Vec::new();
            }
        };
        all.iter()
            .filter(|integration| usable(integration))
            .filter_map(|integration| match credentials(&self.cipher, integration) {
                Ok(credentials) => Some(Target {
                    credentials,
                    integration: integration.clone(),
                }),
                Err(error) => {
                    tracing::warn!(integration_id = %integration.id, %error, "secret key unusable; no pings");
                    None
                }
            })
            .collect()
    }

    /// Pings each (agent, integration), several at once, records when each is due next, and
    /// what the round says about each integration (see [`crate::status_sync`]).
    async fn ping_all(&mut self, pings: Vec<(&Agent, &Target)>) {
        let targets: HashMap<Uuid, Integration> = pings
            .iter()
            .map(|(_, target)| (target.integration.id, target.integration.clone()))
            .collect();
        // Owned futures, built before anything is awaited: nothing borrowed lives across
        // an await point, so the loop's future stays `Send` for `tokio::spawn`.
        let calls: Vec<_> = pings
            .into_iter()
            .map(|(agent, target)| {
                let chatra = self.chatra.clone();
                let credentials = target.credentials.clone();
                let key = (agent.id, target.integration.id);
                // No agent id in the ping: our replies reach Chatra by e-mail too, so the
                // e-mail names the same Chatra agent a link would.
                let ping = AgentPing {
                    agent_email: agent.email.clone(),
                    agent_name: agent.name.clone(),
                    received_from: self.received_from.clone(),
                };
                async move { (key, chatra.agent_online_ping(&credentials, &ping).await) }
            })
            .collect();
        let results: Vec<((Uuid, Uuid), Result<(), ChatraError>)> = futures::stream::iter(calls)
            .buffer_unordered(MAX_CONCURRENT_PINGS)
            .collect()
            .await;
        let now = Instant::now();
        for ((agent_id, integration_id), sent) in &results {
            let next = match sent {
                Ok(()) => {
                    self.metrics.ping("sent");
                    self.interval
                }
                Err(error) => {
                    match refusal_outcome(error) {
                        // Said once, when the integration's verdict turns (`settle`).
                        Some(outcome) => {
                            self.metrics.ping(outcome);
                            tracing::debug!(%agent_id, %integration_id, %error, "agent-online ping refused");
                        }
                        None => {
                            self.metrics.ping("failed");
                            tracing::warn!(%agent_id, %integration_id, %error, "agent-online ping failed");
                        }
                    }
                    error
                        .retry_after()
                        .unwrap_or(self.interval / 4)
                        .min(self.interval)
                }
            };
            self.due.insert((*agent_id, *integration_id), now + next);
        }
        for (integration_id, integration) in targets {
            let round = results
                .iter()
                .filter(|((_, i), _)| *i == integration_id)
                .map(|(_, sent)| sent);
            if let Some(verdict) = verdict_of(round) {
                self.settle(integration_id, &integration, &verdict).await;
            }
        }
    }

    /// Records a verdict the integration does not show yet; says so once in the log.
    async fn settle(&self, integration_id: Uuid, integration: &Integration, verdict: &PingVerdict) {
        if verdict.is_shown_by(integration) {
            return;
        }
        match record_verdict(&self.store, integration_id, verdict).await {
            Ok(false) => {}
            Ok(true) => match verdict {
                PingVerdict::Failing {
                    http_status,
                    detail,
                } => tracing::warn!(
                    %integration_id,
                    http_status,
                    %detail,
                    path = %self.chatra.agent_online_path(),
                    "Chatra refuses agent-online pings: agents are not shown online in Chatra; check DESKIE_CHATRA_AGENT_ONLINE_PATH"
                ),
                PingVerdict::Working => {
                    tracing::info!(%integration_id, "Chatra accepts agent-online pings")
                }
            },
            Err(error) => {
                tracing::warn!(%integration_id, %error, "cannot record the agent status sync; next round")
            }
        }
    }
}

/// Whether an agent is to be shown online in Chatra.
pub fn pingable(agent: &Agent) -> bool {
    agent.disabled_at.is_none() && agent.status == "online" && agent.has_access(LIVE_CHAT)
}
