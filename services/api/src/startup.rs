//! Building and running the api: the HTTP server, the background key checker, the pruning
//! of expired idempotency keys, and the live-update streams' stop signal.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use deskie_bus::Bus;
use deskie_store::Store;
use deskie_telemetry::http::RedactedRootSpan;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

use crate::ApiConfig;
use crate::auth::AdminToken;
use crate::idempotency::Pruner;
use crate::key_check::{ChatraProbe, KEY_CHECK_TIMEOUT, KeyChecker};
use crate::metrics::{ApiMetrics, count_requests};
use crate::routes::{self, AppState};

/// Why the api cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ApiStartError {
    /// The address is taken or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client for Chatra cannot be built (TLS set-up).
    #[error("cannot build the HTTP client for Chatra: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// A metric was refused by the registry.
    #[error("cannot register metrics: {0}")]
    Metrics(#[source] prometheus::Error),
}

/// A bound, not yet running api.
pub struct Application {
    port: u16,
    server: Server,
    key_checker: KeyChecker,
    pruner: Pruner,
    live_streams: CancellationToken,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds `config.addr` (port 0 picks a free port) and assembles the server and checker.
    /// `bus` is where live updates come from (`GET /api/v1/stream`); it may still be
    /// connecting.
    pub async fn build(config: ApiConfig, store: Store, bus: Bus) -> Result<Self, ApiStartError> {
        let bind_error = |source| ApiStartError::Bind {
            addr: config.addr,
            source,
        };
        let listener = TcpListener::bind(config.addr).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        let metrics = ApiMetrics::new().map_err(ApiStartError::Metrics)?;
        // No redirects: a redirect would carry the Chatra credentials somewhere unchecked.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(KEY_CHECK_TIMEOUT)
            .build()
            .map_err(ApiStartError::HttpClient)?;
        let probe = ChatraProbe::new(
            client,
            &config.chatra_api_url,
            config.chatra_key_check_path.as_deref(),
        );
        let (key_checker, key_checks) =
            KeyChecker::new(store.clone(), config.cipher.clone(), probe, metrics.clone());
        let pruner = Pruner {
            store: store.clone(),
            retention: config.idempotency_retention,
            metrics: metrics.clone(),
        };
        let live_streams = CancellationToken::new();
        let state = web::Data::new(AppState {
            store,
            bus,
            cipher: config.cipher,
            public_url: config.public_url,
            key_checks,
            live_streams: live_streams.clone(),
            idempotency_retention: config.idempotency_retention,
        });
        let admin = web::Data::new(AdminToken::new(&config.admin_token));
        let metrics = web::Data::new(metrics);
        let extra_metrics = web::Data::new(config.extra_metrics);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(count_requests))
                .wrap(TracingLogger::<RedactedRootSpan>::new())
                .app_data(routes::json_config())
                .app_data(state.clone())
                .app_data(admin.clone())
                .app_data(metrics.clone())
                .app_data(extra_metrics.clone())
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
        })
        .listen(listener)
        .map_err(bind_error)?
        .disable_signals()
        .shutdown_timeout(10)
        .run();
        Ok(Self {
            port,
            server,
            key_checker,
            pruner,
            live_streams,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled (or the server fails), then stops gracefully:
    /// live-update streams end at once, other in-flight requests get up to 10 s, and the key
    /// checker stops with the server.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        // A child token, so a server that ends on its own also stops the checker without
        // cancelling the caller's token.
        let stopping = shutdown.child_token();
        let checker = tokio::spawn(self.key_checker.run(stopping.clone()));
        let pruner = tokio::spawn(self.pruner.run(stopping.clone()));
        let handle = self.server.handle();
        let live_streams = self.live_streams;
        let stopper = tokio::spawn({
            let stopping = stopping.clone();
            async move {
                stopping.cancelled().await;
                // A live stream never finishes by itself: ending them first lets the graceful
                // stop finish as soon as the ordinary requests have, instead of after 10 s.
                live_streams.cancel();
                handle.stop(true).await;
            }
        });
        let served = self.server.await;
        stopping.cancel();
        let _ = stopper.await;
        let _ = checker.await;
        let _ = pruner.await;
        tracing::info!("api stopped");
        served
    }
}
