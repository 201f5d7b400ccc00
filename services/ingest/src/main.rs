//! The ingest binary: configuration from the environment, then [`deskie_ingest::Application`].

use anyhow::Context;
use deskie_bus::{Bus, Topology};
use deskie_config::Settings;
use deskie_ingest::{Application, IngestConfig};
use deskie_store::Store;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let _telemetry = deskie_telemetry::init("ingest", settings.otlp_endpoint.as_deref())?;
    Store::create_database_if_missing(&settings.database_url)
        .await
        .context("DESKIE_DATABASE_URL: cannot reach PostgreSQL")?;
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    let bus = Bus::connect(
        &settings.nats_url,
        Topology::new(&settings.nats_prefix),
        "deskie-ingest",
    )
    .await?;
    let app = Application::build(IngestConfig::from_settings(&settings), store, bus).await?;
    tracing::info!(port = app.port(), "ingest listening");
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        deskie_telemetry::shutdown_signal().await;
        on_signal.cancel();
    });
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
