//! One delivery: decode and parse it alone, then route it in a batch ([`crate::batch`]).

use deskie_bus::batch::Batcher;
use deskie_bus::consumer::{Delivery, Handler, HandlerError};
use deskie_domain::case::case_id_for;
use deskie_domain::chatra::{ParsedWebhook, parse_webhook};
use deskie_proto::Message;
use deskie_proto::webhooks::ChatraWebhookReceived;
use deskie_store::Store;
use uuid::Uuid;

use crate::batch::{Routable, RouteBatch};

/// Inbox name of routing.
pub const ROUTING_CONSUMER: &str = "routing";

/// Batches routed at once, each in its own transaction: the cases of concurrent batches
/// are locked in one order, so they wait for each other only where they share a case.
pub const ROUTING_WORKERS: usize = 4;

/// The most webhooks one transaction routes.
pub const MAX_BATCH: usize = 64;

/// The handler: decode and parse, then hand the webhook to the batch workers.
#[derive(Debug, Clone)]
pub struct RouteWebhook {
    batcher: Batcher<Routable>,
}

impl RouteWebhook {
    /// A handler writing to `store`, recognising our echoes by `received_from`. Starts the
    /// batch workers (a Tokio runtime must be running).
    pub fn new(store: Store, received_from: String) -> Self {
        let batcher = Batcher::start(
            RouteBatch::new(store, received_from),
            ROUTING_WORKERS,
            MAX_BATCH,
        );
        Self { batcher }
    }
}

fn poison(reason: impl Into<String>) -> HandlerError {
    HandlerError::Poison {
        reason: reason.into(),
    }
}

impl Handler for RouteWebhook {
    /// Webhooks of one chat are routed in the order they were accepted.
    fn lane(&self, message: &async_nats::jetstream::Message) -> Option<String> {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(deskie_bus::CHAT_LANE_HEADER))
            .map(|v| v.as_str().to_owned())
    }

    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let received = ChatraWebhookReceived::decode(delivery.payload.as_ref())
            .map_err(|e| poison(format!("not a ChatraWebhookReceived: {e}")))?;
        let body = deskie_proto::webhook_body::decode(&received)
            .map_err(|e| poison(format!("body: {e}")))?;
        let webhook = match parse_webhook(&body) {
            Ok(ParsedWebhook::Known(webhook)) => *webhook,
            Ok(ParsedWebhook::UnknownEvent { event_name }) => {
                // Ingest said so at warn when it kept the body (`deskie webhooks dump`
                // shows it); nothing to route.
                tracing::debug!(%event_name, integration_id = %received.integration_id, "webhook with an eventName we do not route");
                return Ok(());
            }
            Err(e) => return Err(poison(format!("webhook body: {e}"))),
        };
        let integration_id: Uuid = received
            .integration_id
            .parse()
            .map_err(|_| poison("integration id is not a UUID"))?;
        let inbox_key = delivery
            .message_id()
            .unwrap_or(&received.dedupe_key)
            .to_owned();
        let case_id = case_id_for(integration_id, &webhook.client.id, &webhook.client.chat_id);
        self.batcher
            .submit(Routable {
                integration_id,
                case_id,
                inbox_key,
                webhook,
                span: tracing::Span::current(),
            })
            .await
    }
}
