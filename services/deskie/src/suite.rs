//! Every service in one process.

use anyhow::Context;
use deskie_agent_sync::AgentSyncConfig;
use deskie_api::{ApiConfig, Application as Api};
use deskie_bus::{Bus, Topology};
use deskie_chatra::{ChatraClient, default_http_client};
use deskie_config::Settings;
use deskie_ingest::{Application as Ingest, IngestConfig};
use deskie_outbound::{Application as Outbound, OutboundConfig};
use deskie_projector::{Application as Projector, ProjectorConfig};
use deskie_store::Store;
use deskie_store::relay::{Relay, RelayConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The services started by [`start_suite`].
#[derive(Debug)]
pub struct RunningSuite {
    /// Port ingest listens on.
    pub ingest_port: u16,
    /// Port the API listens on.
    pub api_port: u16,
    /// The store, for tests and admin commands.
    pub store: Store,
    /// The bus.
    pub bus: Bus,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl RunningSuite {
    /// Waits for every service to stop (after the shutdown token was cancelled).
    pub async fn wait(self) {
        for (name, task) in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(service = name, %error, "service ended abnormally");
            }
        }
    }
}

/// What runs besides the fixed services.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// outbound's configuration; `None` leaves outbound out (a test may run its own).
    pub outbound: Option<OutboundConfig>,
    /// agent-sync's configuration; `None` leaves it out.
    pub agent_sync: Option<AgentSyncConfig>,
    /// Whether the rules service runs.
    pub rules: bool,
}

impl SuiteOptions {
    /// Everything, configured from `settings` and outbound's own variables (no HTTP port of
    /// its own: one process, one set of ports).
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let mut outbound =
            OutboundConfig::from_lookup(&settings.chatra_received_from, |v| std::env::var(v).ok())?;
        outbound.http_addr = None;
        Ok(Self {
            outbound: Some(outbound),
            agent_sync: Some(AgentSyncConfig::from_settings(settings)?),
            rules: true,
        })
    }
}

/// Creates the database when missing, migrates, connects to NATS, then starts ingest, the
/// API, the relay, routing, the projector, outbound, agent-sync and rules, all stopping
/// when `shutdown` is cancelled.
pub async fn start_suite(
    settings: &Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningSuite> {
    start_suite_with(settings, SuiteOptions::from_settings(settings)?, shutdown).await
}

/// [`start_suite`] with explicit [`SuiteOptions`].
pub async fn start_suite_with(
    settings: &Settings,
    options: SuiteOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningSuite> {
    if Store::create_database_if_missing(&settings.database_url)
        .await
        .context("DESKIE_DATABASE_URL: cannot reach PostgreSQL")?
    {
        tracing::info!("created the database");
    }
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await.context("running migrations")?;
    let bus = Bus::connect(
        &settings.nats_url,
        Topology::new(&settings.nats_prefix),
        "deskie",
    )
    .await?;

    let ingest = Ingest::build(
        IngestConfig::from_settings(settings),
        store.clone(),
        bus.clone(),
    )
    .await?;
    let api = Api::build(
        ApiConfig::from_settings(settings)?,
        store.clone(),
        bus.clone(),
    )
    .await?;
    let (ingest_port, api_port) = (ingest.port(), api.port());
    let relay = Relay::new(store.url(), bus.clone(), RelayConfig::default());

    let mut tasks = Vec::new();
    let token = shutdown.clone();
    tasks.push((
        "ingest",
        tokio::spawn(async move {
            if let Err(error) = ingest.run_until_stopped(token).await {
                tracing::error!(%error, "ingest stopped");
            }
        }),
    ));
    let token = shutdown.clone();
    tasks.push((
        "api",
        tokio::spawn(async move {
            if let Err(error) = api.run_until_stopped(token).await {
                tracing::error!(%error, "api stopped");
            }
        }),
    ));
    tasks.push(("relay", tokio::spawn(relay.run(shutdown.clone()))));
    let routing = deskie_routing::RoutingConfig {
        received_from: settings.chatra_received_from.clone(),
    };
    tasks.push((
        "routing",
        tokio::spawn(deskie_routing::run(
            routing,
            store.clone(),
            bus.clone(),
            shutdown.clone(),
        )),
    ));
    // No HTTP port of its own here: one process, one set of ports.
    let projector =
        Projector::build(ProjectorConfig::default(), store.clone(), bus.clone()).await?;
    let token = shutdown.clone();
    tasks.push((
        "projector",
        tokio::spawn(async move {
            if let Err(error) = projector.run_until_stopped(token).await {
                tracing::error!(%error, "projector stopped");
            }
        }),
    ));
    if let Some(config) = options.outbound {
        let chatra = ChatraClient::new(&settings.chatra_api_url, default_http_client());
        let cipher = settings.require_cipher()?.clone();
        let outbound = Outbound::build(config, store.clone(), bus.clone(), chatra, cipher)?;
        let token = shutdown.clone();
        tasks.push((
            "outbound",
            tokio::spawn(async move {
                if let Err(error) = outbound.run_until_stopped(token).await {
                    tracing::error!(%error, "outbound stopped");
                }
            }),
        ));
    }
    if let Some(config) = options.agent_sync {
        tasks.push((
            "agent-sync",
            tokio::spawn(deskie_agent_sync::run(
                config,
                store.clone(),
                bus.clone(),
                shutdown.clone(),
            )),
        ));
    }
    if options.rules {
        tasks.push((
            "rules",
            tokio::spawn(deskie_rules::run(
                settings.require_cipher()?.clone(),
                store.clone(),
                bus.clone(),
                deskie_rules::RulesMetrics::new()?,
                shutdown.clone(),
            )),
        ));
    }
    Ok(RunningSuite {
        ingest_port,
        api_port,
        store,
        bus,
        tasks,
    })
}
