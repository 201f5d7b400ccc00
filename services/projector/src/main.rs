//! The projector binary: configuration from the environment, then
//! [`deskie_projector::Application`].

use anyhow::Context;
use deskie_bus::{Bus, Topology};
use deskie_config::Settings;
use deskie_projector::{Application, ProjectorConfig};
use deskie_store::Store;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let config = ProjectorConfig::from_env()?;
    let _telemetry = deskie_telemetry::init("projector", settings.otlp_endpoint.as_deref())?;
    Store::create_database_if_missing(&settings.database_url)
        .await
        .context("DESKIE_DATABASE_URL: cannot reach PostgreSQL")?;
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    let bus = Bus::connect(
        &settings.nats_url,
        Topology::new(&settings.nats_prefix),
        "deskie-projector",
    )
    .await?;
    let app = Application::build(config, store, bus).await?;
    tracing::info!(port = ?app.port(), "projector consuming case events");
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        deskie_telemetry::shutdown_signal().await;
        on_signal.cancel();
    });
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
