//! The agent-sync binary: the shared settings and [`deskie_agent_sync::ADDR_VAR`] from the
//! environment, then [`deskie_agent_sync::run_serving`].

use anyhow::Context;
use deskie_agent_sync::{AgentSyncConfig, AgentSyncMetrics};
use deskie_bus::{Bus, Topology};
use deskie_config::Settings;
use deskie_store::Store;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let config = AgentSyncConfig::from_settings(&settings)?;
    let http_addr = deskie_agent_sync::http_addr_from_lookup(|var| std::env::var(var).ok())?;
    let _telemetry = deskie_telemetry::init("agent-sync", settings.otlp_endpoint.as_deref())?;
    Store::create_database_if_missing(&settings.database_url)
        .await
        .context("DESKIE_DATABASE_URL: cannot reach PostgreSQL")?;
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    let bus = Bus::connect(
        &settings.nats_url,
        Topology::new(&settings.nats_prefix),
        "deskie-agent-sync",
    )
    .await?;
    let (listener, port) = deskie_telemetry::ops::bind(http_addr)?;
    let metrics = AgentSyncMetrics::new()?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        deskie_telemetry::shutdown_signal().await;
        on_signal.cancel();
    });
    tracing::info!(port, "agent-sync started");
    deskie_agent_sync::run_serving(config, store, bus, metrics, listener, shutdown).await?;
    Ok(())
}
