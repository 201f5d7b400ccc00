//! The routing binary.

use deskie_bus::{Bus, Topology};
use deskie_config::Settings;
use deskie_routing::RoutingConfig;
use deskie_store::Store;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let _telemetry = deskie_telemetry::init("routing", settings.otlp_endpoint.as_deref())?;
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    let bus = Bus::connect(
        &settings.nats_url,
        Topology::new(&settings.nats_prefix),
        "deskie-routing",
    )
    .await?;
    let shutdown = CancellationToken::new();
    let config = RoutingConfig {
        received_from: settings.chatra_received_from.clone(),
    };
    let routing = tokio::spawn(deskie_routing::run(config, store, bus, shutdown.clone()));
    deskie_telemetry::shutdown_signal().await;
    shutdown.cancel();
    routing.await?;
    Ok(())
}
