//! Building and running the HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use deskie_bus::Bus;
use deskie_config::Settings;
use deskie_store::Store;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

use crate::credentials::CredentialLookup;
use crate::full_burst::FullBurst;
use crate::metrics::IngestMetrics;
use crate::routes;

/// Largest webhook body accepted (BRIEF §3): 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What ingest needs from the configuration.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Where to listen (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Largest body accepted.
    pub max_body_bytes: usize,
}

impl IngestConfig {
    /// From the shared settings.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            addr: settings.ingest_addr,
            max_body_bytes: MAX_BODY_BYTES,
        }
    }
}

/// Why ingest could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngestStartError {
    /// The address is taken or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Shared by every request.
pub(crate) struct State {
    pub bus: Bus,
    pub store: Store,
    pub credentials: CredentialLookup,
    pub metrics: IngestMetrics,
    pub max_body_bytes: usize,
    pub streams_ready: AtomicBool,
    pub full_burst: FullBurst,
}

/// The ingest service, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    port: u16,
    state: Arc<State>,
}

impl Application {
    /// Binds the listener; nothing is served until [`Application::run_until_stopped`].
    pub async fn build(
        config: IngestConfig,
        store: Store,
        bus: Bus,
    ) -> Result<Self, IngestStartError> {
        let listener = TcpListener::bind(config.addr).map_err(|source| IngestStartError::Bind {
            addr: config.addr,
            source,
        })?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(config.addr.port());
        let metrics = IngestMetrics::new();
        let state = Arc::new(State {
            credentials: CredentialLookup::new(store.clone(), metrics.credentials.clone()),
            bus,
            store,
            metrics,
            max_body_bytes: config.max_body_bytes,
            streams_ready: AtomicBool::new(false),
            full_burst: FullBurst::default(),
        });
        Ok(Self {
            listener,
            port,
            state,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then finishes in-flight requests (graceful stop).
    ///
    /// Streams are provisioned in the background, retried every second while NATS is away,
    /// so ingest starts (and answers 503) even before NATS does. The credential cache's
    /// change listener runs in the background too; until it listens, every webhook's token
    /// hash is read from PostgreSQL.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let state = self.state.clone();
        let provisioner = tokio::spawn(provision_until_ready(state.clone(), shutdown.clone()));
        let listener = tokio::spawn({
            let (state, shutdown) = (state.clone(), shutdown.clone());
            async move { state.credentials.follow_changes(shutdown).await }
        });
        let data = web::Data::from(state);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::<deskie_telemetry::http::RedactedRootSpan>::new())
                .app_data(data.clone())
                .configure(routes::configure)
        })
        .disable_signals()
        .client_request_timeout(Duration::from_secs(10))
        .keep_alive(Duration::from_secs(30))
        .listen(self.listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.stop(true).await;
        });
        let result = server.await;
        provisioner.abort();
        listener.abort();
        result
    }
}

async fn provision_until_ready(state: Arc<State>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match state.bus.provision().await {
            Ok(()) => {
                state.streams_ready.store(true, Ordering::Release);
                return;
            }
            Err(error) => tracing::warn!(%error, "streams not provisioned yet; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
