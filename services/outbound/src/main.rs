//! The outbound binary.

use deskie_chatra::{CALL_TIMEOUT, ChatraClient, http_client};
use deskie_config::Settings;
use deskie_outbound::{Application, OutboundConfig};
use deskie_store::startup::Backing;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let config = OutboundConfig::from_lookup(&settings, |v| std::env::var(v).ok())?;
    let cipher = settings.require_cipher()?.clone();
    let _telemetry = deskie_telemetry::init("outbound", settings.otlp_endpoint.as_deref())?;
    let Backing { store, bus, .. } = Backing::open(
        &settings.database_url,
        &settings.nats_url,
        deskie_bus::Topology::configured(&settings),
        "deskie-outbound",
    )
    .await?;
    let http = http_client(CALL_TIMEOUT, settings.chatra_idle_connection);
    let chatra = ChatraClient::new(&settings.chatra_api_url, http);
    let app = Application::build(config, store, bus, chatra, cipher)?;
    let shutdown = deskie_telemetry::cancel_on_shutdown_signal();
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
