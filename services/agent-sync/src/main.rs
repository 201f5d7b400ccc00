//! The agent-sync binary: the shared settings and [`deskie_agent_sync::ADDR_VAR`] from the
//! environment, then [`deskie_agent_sync::run_serving`].

use deskie_agent_sync::{AgentSyncConfig, AgentSyncMetrics};
use deskie_config::Settings;
use deskie_store::startup::Backing;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let config = AgentSyncConfig::from_settings(&settings)?;
    let http_addr = deskie_agent_sync::http_addr_from_lookup(|var| std::env::var(var).ok())?;
    let _telemetry = deskie_telemetry::init("agent-sync", settings.otlp_endpoint.as_deref())?;
    let Backing { store, bus, .. } = Backing::open(
        &settings.database_url,
        &settings.nats_url,
        deskie_bus::Topology::configured(&settings),
        "deskie-agent-sync",
    )
    .await?;
    let (listener, port) = deskie_telemetry::ops::bind(http_addr)?;
    let metrics = AgentSyncMetrics::new()?;
    let shutdown = deskie_telemetry::cancel_on_shutdown_signal();
    tracing::info!(port, "agent-sync started");
    deskie_agent_sync::run_serving(config, store, bus, metrics, listener, shutdown).await?;
    Ok(())
}
