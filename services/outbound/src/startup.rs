//! Building and running outbound: intake, reply and notification workers, the deadline
//! sweep and, optionally, its HTTP endpoints.

use std::net::TcpListener;
use std::sync::Arc;

use deskie_bus::Bus;
use deskie_bus::consumer;
use deskie_chatra::{ChatraClient, default_http_client};
use deskie_config::Cipher;
use deskie_store::Store;
use deskie_store::startup::consumer_endpoints;
use deskie_telemetry::ops::{self, BindError};
use tokio_util::sync::CancellationToken;

use crate::claims::{self, Lane};
use crate::deliver::Deliverer;
use crate::intake::{CHATRA_REPLY, Intake, Wakes};
use crate::notify::{Notifier, NotifyClient, SLACK_NOTIFICATION, TELEGRAM_NOTIFICATION};
use crate::rate_limit::{IntegrationLimiter, KeyedLimiter};
use crate::{OutboundConfig, OutboundMetrics, SERVICE, sweep};
use deskie_store::case_consumer::CaseEventHandler;

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
    notifier: Arc<Notifier>,
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
    /// consumed or sent until [`Application::run_until_stopped`]. Slack and Telegram are
    /// called with the same client settings as Chatra (5 s to connect, 15 s per call).
    pub fn build(
        config: OutboundConfig,
        store: Store,
        bus: Bus,
        chatra: ChatraClient,
        cipher: Cipher,
    ) -> Result<Self, OutboundStartError> {
        let listener = config.http_addr.map(ops::bind).transpose()?;
        let metrics = OutboundMetrics::new().map_err(OutboundStartError::Metrics)?;
        let notifier = Notifier {
            store: store.clone(),
            cipher: cipher.clone(),
            client: NotifyClient::new(default_http_client(), &config.telegram_api_url),
            retry: config.notification_retry,
            lease: config.lease,
            limiter: KeyedLimiter::new(config.notification_rate),
            metrics: metrics.clone(),
        };
        let deliverer = Deliverer {
            limiter: IntegrationLimiter::new(config.rate),
            metrics,
            config,
            store,
            chatra,
            cipher,
        };
        Ok(Self {
            deliverer: Arc::new(deliverer),
            notifier: Arc::new(notifier),
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
        let spec = deskie_store::case_consumer::consumer_spec(self.bus.topology(), SERVICE);
        let wakes = Wakes::default();
        let store = &self.deliverer.store;
        let intake = CaseEventHandler::new(
            store.clone(),
            self.bus.topology().clone(),
            Intake::new(wakes.clone()),
        )
        .with_metrics(self.deliverer.metrics.case_events().clone());
        let config = &self.deliverer.config;
        // One lane per kind, each with its own permits: a hanging Slack holds no reply back.
        let lane = |kind| {
            let lane = Lane {
                kind,
                concurrency: config.concurrency,
                lease: config.lease,
                poll_interval: config.poll_interval,
            };
            (lane, Arc::clone(wakes.of(kind)), shutdown.clone())
        };
        let notifications = |kind| {
            let (lane, wake, shutdown) = lane(kind);
            claims::run(
                Arc::clone(&self.notifier),
                store.clone(),
                lane,
                wake,
                shutdown,
            )
        };
        let (replies, reply_wake, reply_shutdown) = lane(CHATRA_REPLY);
        let work = async {
            tokio::join!(
                consumer::run(self.bus.clone(), spec, intake, shutdown.clone()),
                claims::run(
                    Arc::clone(&self.deliverer),
                    store.clone(),
                    replies,
                    reply_wake,
                    reply_shutdown
                ),
                notifications(SLACK_NOTIFICATION),
                notifications(TELEGRAM_NOTIFICATION),
                sweep::run(Arc::clone(&self.deliverer), shutdown.clone()),
            );
        };
        let Some((listener, _)) = self.listener else {
            work.await;
            return Ok(());
        };
        // Replies can be taken in and delivered: NATS connected and PostgreSQL answering.
        let metrics = self.deliverer.metrics.clone();
        let endpoints =
            consumer_endpoints(&self.bus, &self.deliverer.store, move || metrics.render());
        ops::serve_alongside(listener, endpoints, shutdown.cancelled(), work).await
    }
}
