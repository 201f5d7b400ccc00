//! Every service in one process.

use std::sync::Arc;

use deskie_agent_sync::AgentSyncConfig;
use deskie_api::{ApiConfig, Application as Api, ExtraMetrics};
use deskie_bus::Bus;
use deskie_chatra::{CALL_TIMEOUT, ChatraClient, http_client};
use deskie_config::Settings;
use deskie_ingest::{Application as Ingest, IngestConfig};
use deskie_outbound::{Application as Outbound, OutboundConfig};
use deskie_projector::{Application as Projector, ProjectorConfig};
use deskie_store::Store;
use deskie_store::relay::{Relay, RelayConfig, RelayMetrics};
use deskie_store::retention::RetentionMetrics;
use deskie_store::startup::Backing;
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
        let mut outbound = OutboundConfig::from_lookup(settings, |v| std::env::var(v).ok())?;
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
    let Backing {
        store,
        bus,
        created_database,
    } = Backing::open(
        &settings.database_url,
        &settings.nats_url,
        deskie_bus::Topology::configured(settings),
        "deskie",
    )
    .await?;
    if created_database {
        tracing::info!("created the database");
    }
    // No HTTP port of their own here (one process, one set of ports): the api's `/metrics`
    // shows theirs after its own.
    let projector =
        Projector::build(ProjectorConfig::default(), store.clone(), bus.clone()).await?;
    let outbound = match options.outbound {
        Some(config) => {
            let http = http_client(CALL_TIMEOUT, settings.chatra_idle_connection);
            let chatra = ChatraClient::new(&settings.chatra_api_url, http);
            let cipher = settings.require_cipher()?.clone();
            Some(Outbound::build(
                config,
                store.clone(),
                bus.clone(),
                chatra,
                cipher,
            )?)
        }
        None => None,
    };
    let agent_sync = match options.agent_sync {
        Some(config) => Some((config, deskie_agent_sync::AgentSyncMetrics::new()?)),
        None => None,
    };
    // Everything that can fail is resolved before the first task starts.
    let rules = match options.rules {
        true => Some((
            settings.require_cipher()?.clone(),
            deskie_rules::RulesMetrics::new()?,
        )),
        false => None,
    };
    let relay_metrics = RelayMetrics::new()?;
    let retention_metrics = RetentionMetrics::new()?;
    let pages = metrics_pages(
        &relay_metrics,
        &retention_metrics,
        &projector,
        outbound.as_ref(),
        agent_sync.as_ref().map(|(_, metrics)| metrics),
        rules.as_ref().map(|(_, metrics)| metrics),
    );
    let mut api_config = ApiConfig::from_settings(settings)?;
    api_config.extra_metrics = pages;

    let ingest = Ingest::build(
        IngestConfig::from_settings(settings),
        store.clone(),
        bus.clone(),
    )
    .await?;
    let api = Api::build(api_config, store.clone(), bus.clone()).await?;
    let (ingest_port, api_port) = (ingest.port(), api.port());
    let relay =
        Relay::new(store.url(), bus.clone(), RelayConfig::default()).with_metrics(relay_metrics);

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
    tasks.push((
        "retention",
        tokio::spawn(crate::retention_job(
            settings,
            store.clone(),
            retention_metrics,
            shutdown.clone(),
        )),
    ));
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
    let token = shutdown.clone();
    tasks.push((
        "projector",
        tokio::spawn(async move {
            if let Err(error) = projector.run_until_stopped(token).await {
                tracing::error!(%error, "projector stopped");
            }
        }),
    ));
    if let Some(outbound) = outbound {
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
    if let Some((config, metrics)) = agent_sync {
        tasks.push((
            "agent-sync",
            tokio::spawn(deskie_agent_sync::run(
                config,
                store.clone(),
                bus.clone(),
                metrics,
                shutdown.clone(),
            )),
        ));
    }
    if let Some((cipher, metrics)) = rules {
        tasks.push((
            "rules",
            tokio::spawn(deskie_rules::run(
                cipher,
                store.clone(),
                bus.clone(),
                metrics,
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

/// The `/metrics` pages of the services that have no port of their own under `deskie run`.
fn metrics_pages(
    relay: &RelayMetrics,
    retention: &RetentionMetrics,
    projector: &Projector,
    outbound: Option<&Outbound>,
    agent_sync: Option<&deskie_agent_sync::AgentSyncMetrics>,
    rules: Option<&deskie_rules::RulesMetrics>,
) -> ExtraMetrics {
    let mut pages: Vec<Arc<dyn Fn() -> String + Send + Sync>> = Vec::new();
    let metrics = relay.clone();
    pages.push(Arc::new(move || metrics.render()));
    let metrics = retention.clone();
    pages.push(Arc::new(move || metrics.render()));
    let metrics = projector.metrics().clone();
    pages.push(Arc::new(move || metrics.render()));
    if let Some(metrics) = outbound.map(|o| o.metrics().clone()) {
        pages.push(Arc::new(move || metrics.render()));
    }
    if let Some(metrics) = agent_sync.cloned() {
        pages.push(Arc::new(move || metrics.render()));
    }
    if let Some(metrics) = rules.cloned() {
        pages.push(Arc::new(move || metrics.render()));
    }
    ExtraMetrics(pages)
}
