//! The rules binary.

use deskie_config::Settings;
use deskie_store::startup::Backing;

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
    let Backing { store, bus, .. } = Backing::open(
        &settings.database_url,
        &settings.nats_url,
        deskie_bus::Topology::configured(&settings),
        "deskie-rules",
    )
    .await?;
    let (listener, _port) = deskie_telemetry::ops::bind(addr)?;
    let shutdown = deskie_telemetry::cancel_on_shutdown_signal();
    deskie_rules::run_serving(cipher, store, bus, listener, shutdown).await
}
