//! routing: `ChatraWebhookReceived` in, case events out (see `docs/services/routing.md`).
//!
//! Each webhook is handled in one transaction on its case's stream: the stream lock, the
//! inbox record of the webhook, the case's history, the pure decision
//! ([`deskie_domain::case::decide_webhook`]) and the new events commit together, then the
//! message is acknowledged. The case id is derived from the chat, so concurrent webhooks of a
//! new chat serialise on one stream and open exactly one case.

mod handler;

pub use handler::{ROUTING_CONSUMER, RouteWebhook};

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

/// Webhooks routed at once. Safe because each webhook's transaction takes its case's
/// stream lock first: webhooks of one chat still apply one after the other, while different
/// chats proceed in parallel (and PostgreSQL flushes their commits together).
pub const ROUTING_CONCURRENCY: usize = 16;

/// The consumer settings routing runs with.
pub fn consumer_spec(bus: &Bus) -> ConsumerSpec {
    let topology = bus.topology();
    let mut spec = ConsumerSpec::new(
        topology.webhooks_stream(),
        topology.consumer_name(ROUTING_CONSUMER),
        topology.all_webhooks(),
    );
    spec.concurrency = ROUTING_CONCURRENCY;
    spec.max_ack_pending = 256;
    spec
}

/// Runs routing until `shutdown` is cancelled.
pub async fn run(config: RoutingConfig, store: Store, bus: Bus, shutdown: CancellationToken) {
    let spec = consumer_spec(&bus);
    let handler = RouteWebhook::new(store, config.received_from);
    consumer::run(bus, spec, handler, shutdown).await;
}
