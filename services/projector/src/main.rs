//! The projector binary: configuration from the environment, then
//! [`deskie_projector::Application`].

use deskie_config::Settings;
use deskie_projector::{Application, ProjectorConfig};
use deskie_store::startup::Backing;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let config = ProjectorConfig::from_env()?;
    let _telemetry = deskie_telemetry::init("projector", settings.otlp_endpoint.as_deref())?;
    let Backing { store, bus, .. } = Backing::open(
        &settings.database_url,
        &settings.nats_url,
        deskie_bus::Topology::configured(&settings),
        "deskie-projector",
    )
    .await?;
    let app = Application::build(config, store, bus).await?;
    tracing::info!(port = ?app.port(), "projector consuming case events");
    let shutdown = deskie_telemetry::cancel_on_shutdown_signal();
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
