//! agent-sync: Deskie agents, as Chatra sees them (see `docs/services/agent-sync.md`).
//!
//! - **Presence** ([`presence`]): every enabled agent who is `online` and has `live_chat`
//!   access is reported to Chatra with the agent-online ping, on every connected
//!   integration: at once when an agent event makes them pingable, then every
//!   [`AgentSyncConfig::ping_interval`] until they are not.
//! - **Customer edits** ([`client_updates`]): an agent's hand edit of a customer's name,
//!   e-mail or phone (`CustomerDataChanged`, source `agent`) is queued in the case's
//!   transaction; a sender beside the consumers sends it to Chatra as `PUT /clients/{id}`
//!   with only the changed fields, in the case's order.
//! - **Links** ([`links`]): `ReplyDelivered` and `AgentMessageMirrored` teach which Chatra
//!   agent a Deskie agent is; recorded once as `AgentChatraLinked` on the agent's stream.
//! - **Visitor details** ([`visitors`]): `CaseOpened` and `ChatEnded` queue a fetch of
//!   Chatra's visitor card (`GET /clients/{id}`); a background loop fetches it, rate limited
//!   per integration, and records it on the case as customer data (and maybe a group move).
//!
//! [`run`] consumes two durable consumers on the events stream (agent events; case events
//! through the case-event adapter, [`deskie_store::case_consumer`]) and runs the presence
//! loop, the customer-edit sender and the visitor fetch loop, until `shutdown` is
//! cancelled; [`run_serving`] does the same and serves `/healthz`, `/readyz` and `/metrics`
//! beside it (the `deskie-agent-sync` binary).

mod agent_events;
mod case_events;
pub mod client_updates;
mod config;
mod credentials;
pub mod links;
mod metrics;
pub mod presence;
pub mod status_sync;
pub mod visitors;
mod wake;

pub use agent_events::AgentEvents;
pub use case_events::CaseEvents;
pub use client_updates::ClientUpdateSender;
pub use config::{
    ADDR_VAR, AgentSyncConfig, ConfigError, DEFAULT_ADDR, DEFAULT_CHATRA_TIMEOUT,
    DEFAULT_PING_INTERVAL, http_addr_from_lookup,
};
pub use metrics::AgentSyncMetrics;
pub use presence::Presence;
pub use visitors::{VisitorFetchConfig, VisitorFetcher};
pub use wake::Wake;

use std::net::TcpListener;

use deskie_bus::Bus;
use deskie_bus::consumer::{self, ConsumerSpec};
use deskie_chatra::ChatraClient;
use deskie_store::Store;
use deskie_store::case_consumer::CaseEventHandler;
use deskie_store::startup::consumer_endpoints;
use deskie_telemetry::ops;
use tokio_util::sync::CancellationToken;

/// The service name, as `emitted_by` on its events and in its consumers' names.
pub const SERVICE: &str = "agent-sync";

/// Durable consumer of agent events: `{prefix}_agent_sync_agents`.
pub const AGENT_CONSUMER: &str = "agent_sync_agents";

/// Durable consumer of case events: `{prefix}_agent_sync_cases`.
pub const CASE_CONSUMER: &str = "agent_sync_cases";

/// The consumer settings of the agent events.
pub fn agent_consumer_spec(bus: &Bus) -> ConsumerSpec {
    let topology = bus.topology();
    ConsumerSpec::new(
        topology.events_stream(),
        topology.consumer_name(AGENT_CONSUMER),
        topology.events_of_type("agent"),
    )
}

/// The consumer settings of the case events.
pub fn case_consumer_spec(bus: &Bus) -> ConsumerSpec {
    deskie_store::case_consumer::consumer_spec(bus.topology(), CASE_CONSUMER)
}

/// Runs agent-sync until `shutdown` is cancelled, counting into `metrics` (for a caller that
/// mounts them on its own `/metrics`).
///
/// On shutdown each consumer finishes the message in hand, the sender and the fetch loop
/// finish the calls in hand (each bounded by [`AgentSyncConfig::chatra_timeout`]) and the
/// presence loop stops between pings.
pub async fn run(
    config: AgentSyncConfig,
    store: Store,
    bus: Bus,
    metrics: AgentSyncMetrics,
    shutdown: CancellationToken,
) {
    if let Err(error) = bus.provision().await {
        tracing::warn!(%error, "streams not provisioned yet; the consumers will retry");
    }
    let chatra = ChatraClient::new(&config.chatra_api_url, config.http_client())
        .with_agent_online_path(&config.agent_online_path);
    let (presence, wake) = Presence::new(store.clone(), chatra.clone(), &config, metrics.clone());
    let agents = consumer::run(
        bus.clone(),
        agent_consumer_spec(&bus),
        AgentEvents::new(wake),
        shutdown.clone(),
    );
    // Customer edits and visitor cards go to Chatra beside the consumers, never inside a
    // handler (which holds the case's lock).
    let (sender, client_updates) = ClientUpdateSender::new(
        store.clone(),
        chatra.clone(),
        config.cipher.clone(),
        config.chatra_timeout,
        metrics.clone(),
    );
    let case_event_metrics = metrics.case_events().clone();
    let mut case_events = CaseEvents::new(store.clone(), metrics.clone(), client_updates);
    let mut fetcher = None;
    if let Some(visitors) = config.visitors.clone() {
        let (loop_, queue) = VisitorFetcher::new(
            store.clone(),
            chatra,
            config.cipher.clone(),
            visitors,
            metrics,
        );
        case_events = case_events.with_visitors(queue);
        fetcher = Some(loop_);
    }
    let cases = consumer::run(
        bus.clone(),
        case_consumer_spec(&bus),
        CaseEventHandler::new(store, bus.topology().clone(), case_events)
            .with_metrics(case_event_metrics),
        shutdown.clone(),
    );
    let visitors = async {
        if let Some(fetcher) = fetcher {
            fetcher.run(shutdown.clone()).await;
        }
    };
    tokio::join!(
        presence.run(shutdown.clone()),
        agents,
        cases,
        sender.run(shutdown.clone()),
        visitors
    );
}

/// Runs agent-sync as [`run`] does, serving `/healthz`, `/readyz` and
/// `/metrics` (the `metrics`) on `listener` meanwhile; both stop with `shutdown`.
pub async fn run_serving(
    config: AgentSyncConfig,
    store: Store,
    bus: Bus,
    metrics: AgentSyncMetrics,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // Pings and edits can reach Chatra once agent-sync hears events (NATS connected) and
    // reads agents, integrations and cases (PostgreSQL answering).
    let endpoints = consumer_endpoints(&bus, &store, {
        let metrics = metrics.clone();
        move || metrics.render()
    });
    let work = run(config, store, bus, metrics, shutdown.clone());
    ops::serve_alongside(listener, endpoints, shutdown.cancelled(), work).await
}
