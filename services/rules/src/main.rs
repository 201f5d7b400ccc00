//! The rules binary.

use deskie_bus::{Bus, Topology};
use deskie_config::Settings;
use deskie_store::Store;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let cipher = settings.require_cipher()?.clone();
    let _telemetry = deskie_telemetry::init("rules", settings.otlp_endpoint.as_deref())?;
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    let bus = Bus::connect(
        &settings.nats_url,
        Topology::new(&settings.nats_prefix),
        "deskie-rules",
    )
    .await?;
    let shutdown = CancellationToken::new();
    let rules = tokio::spawn(deskie_rules::run(cipher, store, bus, shutdown.clone()));
    deskie_telemetry::shutdown_signal().await;
    shutdown.cancel();
    rules.await?;
    Ok(())
}
