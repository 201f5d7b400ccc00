//! The rules binary.

use deskie_bus::{Bus, Topology};
use deskie_config::Settings;
use deskie_store::Store;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let cipher = settings.require_cipher()?.clone();
    let addr = deskie_config::addr_var(
        |var| std::env::var(var).ok(),
        deskie_rules::ADDR_VAR,
        deskie_rules::DEFAULT_ADDR,
    )?;
    let _telemetry = deskie_telemetry::init("rules", settings.otlp_endpoint.as_deref())?;
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    let bus = Bus::connect(
        &settings.nats_url,
        Topology::new(&settings.nats_prefix),
        "deskie-rules",
    )
    .await?;
    let (listener, _port) = deskie_telemetry::ops::bind(addr)?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        deskie_telemetry::shutdown_signal().await;
        on_signal.cancel();
    });
    deskie_rules::run_serving(cipher, store, bus, listener, shutdown).await
}
