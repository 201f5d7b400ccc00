//! Building and running outbound: intake, delivery workers, the deadline sweep and,
//! optionally, its HTTP endpoints.

use std::net::TcpListener;
use std::sync::Arc;

use deskie_bus::Bus;
use deskie_bus::consumer::{self, ConsumerSpec};
use deskie_chatra::ChatraClient;
use deskie_config::Cipher;
use deskie_store::Store;
use deskie_telemetry::ops::{self, BindError, OpsEndpoints};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::deliver::{self, Deliverer};
use crate::intake::Intake;
use crate::rate_limit::IntegrationLimiter;
use crate::{OutboundConfig, OutboundMetrics, SERVICE, sweep};

/// Why outbound cannot start.
#[derive(Debug, thiserror::Error)]
pub enum OutboundStartError {
    /// The HTTP address is taken or not ours.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// A metric was refused by the registry.
    #[error("cannot register metrics: {0}")]
    Metrics(#[source] prometheus::Error),
}

/// outbound, ready to run.
pub struct Application {
    deliverer: Arc<Deliverer>,
    bus: Bus,
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
    /// Binds the HTTP address when one is configured (port 0 picks a free one); nothing is
    /// consumed or sent until [`Application::run_until_stopped`].
    pub fn build(
        config: OutboundConfig,
        store: Store,
        bus: Bus,
        chatra: ChatraClient,
        cipher: Cipher,
    ) -> Result<Self, OutboundStartError> {
        let listener = config.http_addr.map(ops::bind).transpose()?;
        let deliverer = Deliverer {
            limiter: IntegrationLimiter::new(config.rate),
            metrics: OutboundMetrics::new().map_err(OutboundStartError::Metrics)?,
            config,
            store,
            chatra,
            cipher,
        };
        Ok(Self {
            deliverer: Arc::new(deliverer),
            bus,
            listener,
        })
    }

    /// The bound HTTP port, if outbound serves HTTP.
    pub fn port(&self) -> Option<u16> {
        self.listener.as_ref().map(|(_, port)| *port)
    }

    /// The metrics.
    pub fn metrics(&self) -> &OutboundMetrics {
        &self.deliverer.metrics
    }

    /// Runs until `shutdown` is cancelled; calls in flight finish and are recorded first.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        if let Err(error) = self.bus.provision().await {
            tracing::warn!(%error, "streams not provisioned yet; the consumer will retry");
        }
        let topology = self.bus.topology();
        let spec = ConsumerSpec::new(
            topology.events_stream(),
            topology.consumer_name(SERVICE),
            topology.events_of_type("case"),
        );
        let wake = Arc::new(Notify::new());
        let intake = Intake::new(self.deliverer.store.clone(), Arc::clone(&wake));
        let work = async {
            tokio::join!(
                consumer::run(self.bus.clone(), spec, intake, shutdown.clone()),
                deliver::run(Arc::clone(&self.deliverer), wake, shutdown.clone()),
                sweep::run(Arc::clone(&self.deliverer), shutdown.clone()),
            );
        };
        let Some((listener, _)) = self.listener else {
            work.await;
            return Ok(());
        };
        // Replies can be taken in and delivered: NATS connected and PostgreSQL answering.
        let (bus, store, metrics) = (
            self.bus.clone(),
            self.deliverer.store.clone(),
            self.deliverer.metrics.clone(),
        );
        let endpoints = OpsEndpoints::new(
            move || {
                let (nats, store) = (bus.is_connected(), store.clone());
                async move { [("nats", nats), ("database", store.ping().await)] }
            },
            move || metrics.render(),
        );
        ops::serve_alongside(listener, endpoints, shutdown.cancelled(), work).await
    }
}
