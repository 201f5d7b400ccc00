//! `deskie-api`: the HTTP API as a process of its own.

use std::process::ExitCode;

use deskie_api::{ApiConfig, Application};
use deskie_config::Settings;
use deskie_store::startup::Backing;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("deskie-api: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_env()?;
    let config = ApiConfig::from_settings(&settings)?;
    let _telemetry = deskie_telemetry::init("api", settings.otlp_endpoint.as_deref())?;
    // The bus connects at once even while NATS is down: the client keeps reconnecting, and
    // live updates answer 503 (and readiness fails) until it is back.
    let Backing { store, bus, .. } = Backing::open(
        &settings.database_url,
        &settings.nats_url,
        deskie_bus::Topology::configured(&settings),
        "deskie-api",
    )
    .await?;
    let application = Application::build(config, store, bus).await?;
    tracing::info!(port = application.port(), "api listening");
    let shutdown = deskie_telemetry::cancel_on_shutdown_signal();
    application.run_until_stopped(shutdown).await?;
    Ok(())
}
