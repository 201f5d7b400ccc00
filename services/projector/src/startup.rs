//! Building and running the projector: the consumer and, optionally, its HTTP endpoints.

use std::net::TcpListener;

use deskie_bus::Bus;
use deskie_bus::consumer::{self, ConsumerSpec};
use deskie_store::Store;
use deskie_store::startup::consumer_endpoints;
use deskie_telemetry::ops::{self, BindError};
use tokio_util::sync::CancellationToken;

use crate::handler::{MAX_BATCH, PROJECTOR_WORKERS};
use crate::{ProjectCases, ProjectorConfig, ProjectorMetrics, SERVICE};

/// Why the projector cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorStartError {
    /// The HTTP address is taken or not ours.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// A metric was refused by the registry.
    #[error("cannot register metrics: {0}")]
    Metrics(#[source] prometheus::Error),
}

/// A projector ready to run.
pub struct Application {
    store: Store,
    bus: Bus,
    metrics: ProjectorMetrics,
    listener: Option<(TcpListener, u16)>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port())
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds the HTTP address when one is configured (port 0 picks a free port); nothing is
    /// consumed until [`Application::run_until_stopped`].
    pub async fn build(
        config: ProjectorConfig,
        store: Store,
        bus: Bus,
    ) -> Result<Self, ProjectorStartError> {
        let listener = config.http_addr.map(ops::bind).transpose()?;
        Ok(Self {
            store,
            bus,
            metrics: ProjectorMetrics::new().map_err(ProjectorStartError::Metrics)?,
            listener,
        })
    }

    /// The bound HTTP port, if the projector serves HTTP.
    pub fn port(&self) -> Option<u16> {
        self.listener.as_ref().map(|(_, port)| *port)
    }

    /// The metrics, to read or to mount elsewhere (`deskie run` serves no projector port).
    pub fn metrics(&self) -> &ProjectorMetrics {
        &self.metrics
    }

    /// Consumes case events until `shutdown` is cancelled.
    ///
    /// On shutdown the consumer finishes the event in hand (its transaction and its ack
    /// belong together) and the HTTP server, if any, stops after its in-flight requests.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        // Idempotent; if NATS is not up yet the consumer runner keeps retrying by itself.
        if let Err(error) = self.bus.provision().await {
            tracing::warn!(%error, "streams not provisioned yet; the consumer will retry");
        }
        let mut spec = ConsumerSpec::case_events(self.bus.topology(), SERVICE);
        // Enough in hand to fill every worker's batch; no lanes: the fence orders a case.
        spec.concurrency = PROJECTOR_WORKERS * MAX_BATCH;
        spec.max_ack_pending = i64::try_from(spec.concurrency).unwrap_or(256);
        let handler = ProjectCases::new(self.store.clone(), self.metrics.clone());
        let consume = consumer::run(self.bus.clone(), spec, handler, shutdown.clone());
        let Some((listener, _)) = self.listener else {
            consume.await;
            return Ok(());
        };
        // Events can be projected: NATS connected and PostgreSQL answering.
        let metrics = self.metrics;
        let endpoints = consumer_endpoints(&self.bus, &self.store, move || metrics.render());
        ops::serve_alongside(listener, endpoints, shutdown.cancelled(), consume).await
    }
}
