//! The routing binary.

use deskie_config::Settings;
use deskie_routing::RoutingConfig;
use deskie_store::startup::Backing;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let _telemetry = deskie_telemetry::init("routing", settings.otlp_endpoint.as_deref())?;
    let Backing { store, bus, .. } = Backing::open(
        &settings.database_url,
        &settings.nats_url,
        deskie_bus::Topology::configured(&settings),
        "deskie-routing",
    )
    .await?;
    let config = RoutingConfig {
        received_from: settings.chatra_received_from.clone(),
    };
    let shutdown = deskie_telemetry::cancel_on_shutdown_signal();
    deskie_routing::run(config, store, bus, shutdown).await;
    Ok(())
}
