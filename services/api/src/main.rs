//! `deskie-api`: the HTTP API as a process of its own.

use std::process::ExitCode;

use deskie_api::{ApiConfig, Application};
use deskie_bus::{Bus, Topology};
use deskie_config::Settings;
use deskie_store::Store;
use tokio_util::sync::CancellationToken;

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
    Store::create_database_if_missing(&settings.database_url).await?;
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    // Returns at once even while NATS is down: the client keeps reconnecting, and live
    // updates answer 503 (and readiness fails) until it is back.
    let bus = Bus::connect(
        &settings.nats_url,
        Topology::new(&settings.nats_prefix),
        "deskie-api",
    )
    .await?;
    let application = Application::build(config, store, bus).await?;
    tracing::info!(port = application.port(), "api listening");
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            stop_requested().await;
            shutdown.cancel();
        }
    });
    application.run_until_stopped(shutdown).await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM from a service manager or container runtime.
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
