//! One webhook, one transaction.

use deskie_bus::consumer::{Delivery, Handler, HandlerError};
use deskie_domain::case::{RoutingContext, case_id_for, decide_webhook};
use deskie_domain::chatra::{ChatraWebhook, ParsedWebhook, parse_webhook};
use deskie_proto::Message;
use deskie_proto::events::Event;
use deskie_proto::webhooks::ChatraWebhookReceived;
use deskie_store::read_models::{agent_links, integrations};
use deskie_store::{Asking, Cause, Store, StoreError};
use uuid::Uuid;

/// Inbox name of routing.
pub const ROUTING_CONSUMER: &str = "routing";

/// The handler: decode, find the case, decide, append.
#[derive(Debug, Clone)]
pub struct RouteWebhook {
    store: Store,
    received_from: String,
}

impl RouteWebhook {
    /// A handler writing to `store`, recognising our echoes by `received_from`.
    pub fn new(store: Store, received_from: String) -> Self {
        Self {
            store,
            received_from,
        }
    }
}

fn poison(reason: impl Into<String>) -> HandlerError {
    HandlerError::Poison {
        reason: reason.into(),
    }
}

fn store_error(error: StoreError) -> HandlerError {
    error.into()
}

/// The Deskie agents the webhook's Chatra agents are linked to (agent-sync's links), for
/// the decision to name them on mirrored messages. Read before the case's lock: a link
/// recorded meanwhile names the agent from the next message on.
async fn known_links(
    store: &Store,
    integration_id: Uuid,
    webhook: &ChatraWebhook,
) -> Result<Vec<(String, Uuid)>, StoreError> {
    let mut chatra_agents: Vec<String> = webhook
        .messages
        .iter()
        .filter_map(|m| m.agent_id.clone())
        .collect();
    chatra_agents.sort();
    chatra_agents.dedup();
    let links =
        agent_links::for_chatra_agents(store.pool(), integration_id, &chatra_agents).await?;
    Ok(links
        .into_iter()
        .map(|link| (link.chatra_agent_id, link.agent_id))
        .collect())
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
        let integration =
            integrations::get_including_disconnected(self.store.pool(), integration_id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| poison(format!("unknown integration {integration_id}")))?;
        let inbox_key = delivery
            .message_id()
            .unwrap_or(&received.dedupe_key)
            .to_owned();
        let case_id = case_id_for(integration_id, &webhook.client.id, &webhook.client.chat_id);
        let mappings: Vec<(String, Uuid)> = integration
            .group_mappings
            .iter()
            .map(|m| (m.chatra_group_id.clone(), m.group_id))
            .collect();
        let links = known_links(&self.store, integration_id, &webhook)
            .await
            .map_err(store_error)?;
        let context = RoutingContext {
            case_id,
            integration_id,
            default_group_id: integration.default_group_id,
            group_mappings: &mappings,
            panel: &integration.panel,
            received_from: &self.received_from,
            agent_links: &links,
        };

        let Some(mut case) = self
            .store
            .open_case_once(case_id, ROUTING_CONSUMER, &inbox_key)
            .await
            .map_err(store_error)?
        else {
            tracing::debug!(%case_id, "webhook already routed");
            return Ok(());
        };
        let asking = Asking::chatra_messages(webhook.messages.iter().map(|m| m.id.as_str()));
        let state = case.state(&asking).await.map_err(store_error)?;
        let events = decide_webhook(state, &webhook, &context);
        let decided = events.len();
        let unmatched_echoes: Vec<String> = events
            .iter()
            .filter_map(|event| match event {
                Event::UnmatchedEchoReceived(echo) => Some(echo.chatra_message_id.clone()),
                _ => None,
            })
            .collect();
        // The case read model moves in the same transaction: once the webhook is routed, the
        // API shows it (the projector finds nothing left to do for this case).
        let cause = Cause::new_chain(&inbox_key, "routing");
        case.record(events, &cause).await.map_err(store_error)?;
        case.commit().await.map_err(store_error)?;
        // Logged after the commit, so a webhook retried after a failed transaction or
        // redelivered says it once.
        for value in &webhook.unreadable {
            tracing::warn!(
                %case_id,
                chatra_message_id = %value.message_id,
                key = %value.key,
                found = %value.found,
                "webhook value in a form we do not read; left unknown"
            );
        }
        for chatra_message_id in &unmatched_echoes {
            tracing::warn!(
                %case_id,
                %chatra_message_id,
                "a message with our receivedFrom matches no reply of the case waiting for its echo; recorded as an unmatched echo, not shown as a message"
            );
        }
        tracing::info!(%case_id, event_name = webhook.kind.event_name(), decided, "webhook routed");
        Ok(())
    }
}
