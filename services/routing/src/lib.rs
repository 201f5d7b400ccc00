//! routing: `ChatraWebhookReceived` in, case events out (see `docs/services/routing.md`).
//!
//! Webhooks are routed in batches (`batch.rs`), each in one transaction over its cases'
//! streams: the stream locks, the inbox record of each webhook, each case's state, the pure
//! decisions ([`deskie_domain::case::decide_webhook`]) and the new events commit together,
//! then the messages are acknowledged. The case id is derived from the chat, so concurrent
//! webhooks of a new chat serialise on one stream and open exactly one case.

pub mod batch;
mod handler;

pub use handler::{MAX_BATCH, ROUTING_CONSUMER, ROUTING_WORKERS, RouteWebhook};

use deskie_bus::Bus;
use deskie_bus::consumer::{self, ConsumerSpec};
use deskie_store::Store;
use tokio_util::sync::CancellationToken;

/// What routing needs from the configuration.
#[derive(Debug, Clone)]
pub struct RoutingConfig {
    /// Our `receivedFrom` tag (`DESKIE_CHATRA_RECEIVED_FROM`).
    pub received_from: String,
}

/// Webhooks in hand at once: enough to fill [`ROUTING_WORKERS`] batches of [`MAX_BATCH`].
/// Webhooks of one chat still apply one after the other (their lane), and the cases of
/// concurrent batches are locked in one order.
pub const ROUTING_CONCURRENCY: usize = ROUTING_WORKERS * MAX_BATCH;

/// The consumer settings routing runs with.
pub fn consumer_spec(bus: &Bus) -> ConsumerSpec {
    let topology = bus.topology();
    let mut spec = ConsumerSpec::new(
        topology.webhooks_stream(),
        topology.consumer_name(ROUTING_CONSUMER),
        topology.all_webhooks(),
    );
    spec.concurrency = ROUTING_CONCURRENCY;
    spec.max_ack_pending = i64::try_from(ROUTING_CONCURRENCY).unwrap_or(256);
    spec
}

/// Runs routing until `shutdown` is cancelled.
pub async fn run(config: RoutingConfig, store: Store, bus: Bus, shutdown: CancellationToken) {
    let spec = consumer_spec(&bus);
    let handler = RouteWebhook::new(store, config.received_from);
    consumer::run(bus, spec, handler, shutdown).await;
}
