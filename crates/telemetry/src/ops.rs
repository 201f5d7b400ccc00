//! `/healthz`, `/readyz` and `/metrics`: the small HTTP server of a service that has no
//! HTTP API of its own (projector, outbound, agent-sync).
//!
//! What "ready" means and which metrics exist is the service's business: it hands in a
//! readiness check and a renderer as closures, so this crate needs neither the store nor the
//! bus.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::http::RedactedRootSpan;

/// One named readiness check and whether it passed, e.g. `("database", true)`.
pub type Check = (&'static str, bool);

type Readiness = dyn Fn() -> Pin<Box<dyn Future<Output = Vec<Check>>>> + Send + Sync;

/// What the endpoints answer with: the service's readiness checks and its metrics page.
#[derive(Clone)]
pub struct OpsEndpoints {
    readiness: Arc<Readiness>,
    metrics: Arc<dyn Fn() -> String + Send + Sync>,
}

impl std::fmt::Debug for OpsEndpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsEndpoints").finish_non_exhaustive()
    }
}

impl OpsEndpoints {
    /// `readiness` runs on every `/readyz` (ready when every check passes); `metrics`
    /// renders the Prometheus text of every `/metrics`.
    pub fn new<R, F, C, M>(readiness: R, metrics: M) -> Self
    where
        R: Fn() -> F + Send + Sync + 'static,
        F: Future<Output = C> + 'static,
        C: IntoIterator<Item = Check>,
        M: Fn() -> String + Send + Sync + 'static,
    {
        let readiness = move || {
            let checks = readiness();
            Box::pin(async move { checks.await.into_iter().collect() }) as Pin<Box<_>>
        };
        Self {
            readiness: Arc::new(readiness),
            metrics: Arc::new(metrics),
        }
    }
}

/// The configured address is taken or not ours.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The configured address.
    pub addr: SocketAddr,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr` (port 0 picks a free port) and returns the listener with its port.
pub fn bind(addr: SocketAddr) -> Result<(TcpListener, u16), BindError> {
    let bind_error = |source| BindError { addr, source };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    Ok((listener, port))
}

/// Serves the three endpoints on `listener` until `stop` resolves.
///
/// One worker is plenty for probes and scrapes. The server ignores signals: the caller owns
/// shutdown, and once `stop` resolves the requests in flight are answered before this
/// returns. An error means the listener could not be served at all.
pub async fn serve(
    listener: TcpListener,
    endpoints: OpsEndpoints,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let endpoints = web::Data::new(endpoints);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(TracingLogger::<RedactedRootSpan>::new())
            .app_data(endpoints.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
    })
    .disable_signals()
    .workers(1)
    .listen(listener)?
    .run();
    let handle = server.handle();
    let stop_gracefully = async move {
        stop.await;
        handle.stop(true).await;
    };
    let (served, ()) = tokio::join!(server, stop_gracefully);
    served
}

/// Runs `work` with the endpoints served on `listener` beside it, until `stop` resolves
/// and `work` has finished (it watches its own shutdown signal).
///
/// A server that cannot start ends the service at once: `work` is dropped, which the
/// consumers tolerate (an unacknowledged message is redelivered).
pub async fn serve_alongside(
    listener: TcpListener,
    endpoints: OpsEndpoints,
    stop: impl Future<Output = ()>,
    work: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let work = async {
        work.await;
        Ok(())
    };
    tokio::try_join!(serve(listener, endpoints, stop), work)?;
    Ok(())
}

/// The process is up.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// 200 when every check passes, else 503; either way each check is named with its result.
async fn readyz(endpoints: web::Data<OpsEndpoints>) -> HttpResponse {
    let checks = (endpoints.readiness)().await;
    let ready = checks.iter().all(|(_, passed)| *passed);
    let checks: serde_json::Map<_, _> = checks
        .into_iter()
        .map(|(name, passed)| (name.to_owned(), passed.into()))
        .collect();
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": checks,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(endpoints: web::Data<OpsEndpoints>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body((endpoints.metrics)())
}
