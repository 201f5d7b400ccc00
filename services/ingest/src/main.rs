//! The ingest binary: configuration from the environment, then [`deskie_ingest::Application`].

use deskie_config::Settings;
use deskie_ingest::{Application, IngestConfig};
use deskie_store::startup::Backing;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let _telemetry = deskie_telemetry::init("ingest", settings.otlp_endpoint.as_deref())?;
    let Backing { store, bus, .. } = Backing::open(
        &settings.database_url,
        &settings.nats_url,
        deskie_bus::Topology::configured(&settings),
        "deskie-ingest",
    )
    .await?;
    let app = Application::build(IngestConfig::from_settings(&settings), store, bus).await?;
    tracing::info!(port = app.port(), "ingest listening");
    let shutdown = deskie_telemetry::cancel_on_shutdown_signal();
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
