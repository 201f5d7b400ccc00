//! The outbound binary.

use deskie_bus::{Bus, Topology};
use deskie_chatra::{ChatraClient, default_http_client};
use deskie_config::Settings;
use deskie_outbound::{Application, OutboundConfig};
use deskie_store::Store;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let config =
        OutboundConfig::from_lookup(&settings.chatra_received_from, |v| std::env::var(v).ok())?;
    let cipher = settings.require_cipher()?.clone();
    let _telemetry = deskie_telemetry::init("outbound", settings.otlp_endpoint.as_deref())?;
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    let bus = Bus::connect(
        &settings.nats_url,
        Topology::new(&settings.nats_prefix),
        "deskie-outbound",
    )
    .await?;
    let chatra = ChatraClient::new(&settings.chatra_api_url, default_http_client());
    let app = Application::build(config, store, bus, chatra, cipher)?;
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    deskie_telemetry::shutdown_signal().await;
    shutdown.cancel();
    running.await??;
    Ok(())
}
