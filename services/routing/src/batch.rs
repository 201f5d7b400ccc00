//! Webhooks routed together: one transaction for a batch, one statement per step for all
//! its cases ([`deskie_store::CaseBatch`]).
//!
//! Each webhook is decided against its case's state as the webhooks before it in the batch
//! left it, so two webhooks of one chat in a batch apply in order. What cannot be routed
//! alone stays alone: an integration we do not know is that webhook's poison, and when the
//! batch's transaction fails for a reason that is not an outage (an event too large to
//! publish, say), each webhook is routed again in a transaction of its own, so only the one
//! at fault fails.

use std::collections::{BTreeMap, HashMap};

use deskie_bus::batch::BatchHandler;
use deskie_bus::consumer::HandlerError;
use deskie_domain::case::{RoutingContext, decide_webhook};
use deskie_domain::chatra::ChatraWebhook;
use deskie_proto::events::Event;
use deskie_store::read_models::integrations::Integration;
use deskie_store::read_models::{agent_links, integrations};
use deskie_store::{Asking, Cause, Store, StoreError};
use tracing::Instrument;
use uuid::Uuid;

use crate::handler::ROUTING_CONSUMER;

/// A parsed webhook, waiting for its batch.
#[derive(Debug)]
pub struct Routable {
    /// The integration it came in on.
    pub integration_id: Uuid,
    /// Its chat's case.
    pub case_id: Uuid,
    /// Its inbox entry (the `Nats-Msg-Id`).
    pub inbox_key: String,
    /// The webhook.
    pub webhook: ChatraWebhook,
    /// The delivery's span: the events it decides carry its trace.
    pub span: tracing::Span,
}

/// Routes batches of webhooks.
#[derive(Debug)]
pub struct RouteBatch {
    store: Store,
    received_from: String,
}

/// What one integration's webhooks are routed with.
struct Setting {
    integration: Integration,
    mappings: Vec<(String, Uuid)>,
    /// Chatra agent id → Deskie agent (agent-sync's links), for the decision to name them
    /// on mirrored messages. Read before the cases' locks: a link recorded meanwhile names
    /// the agent from the next message on.
    links: Vec<(String, Uuid)>,
}

/// What became of a routed webhook, for the log after the commit.
struct Routed {
    decided: usize,
    unmatched_echoes: Vec<String>,
}

impl RouteBatch {
    /// Routes into `store`, recognising our echoes by `received_from`.
    pub fn new(store: Store, received_from: String) -> Self {
        Self {
            store,
            received_from,
        }
    }

    /// The settings of every integration `items` came in on (an integration we do not
    /// know is left out).
    async fn settings(&self, items: &[Routable]) -> Result<HashMap<Uuid, Setting>, StoreError> {
        let mut agents: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
        for item in items {
            let named = agents.entry(item.integration_id).or_default();
            named.extend(
                item.webhook
                    .messages
                    .iter()
                    .filter_map(|m| m.agent_id.clone()),
            );
        }
        let mut settings = HashMap::new();
        for (integration_id, mut chatra_agents) in agents {
            let Some(integration) =
                integrations::get_including_disconnected(self.store.pool(), integration_id).await?
            else {
                continue;
            };
            chatra_agents.sort();
            chatra_agents.dedup();
            let links = if chatra_agents.is_empty() {
                Vec::new()
            } else {
                agent_links::for_chatra_agents(self.store.pool(), integration_id, &chatra_agents)
                    .await?
                    .into_iter()
                    .map(|link| (link.chatra_agent_id, link.agent_id))
                    .collect()
            };
            let mappings = integration
                .group_mappings
                .iter()
                .map(|m| (m.chatra_group_id.clone(), m.group_id))
                .collect();
            settings.insert(
                integration_id,
                Setting {
                    integration,
                    mappings,
                    links,
                },
            );
        }
        Ok(settings)
    }

    /// Routes `items` in one transaction; the outcome of each, or the transaction's error.
    async fn route_together(
        &self,
        items: &[Routable],
    ) -> Result<Vec<Result<(), HandlerError>>, StoreError> {
        let settings = self.settings(items).await?;
        let outcomes: Vec<Result<(), HandlerError>> = items
            .iter()
            .map(|item| match settings.contains_key(&item.integration_id) {
                true => Ok(()),
                false => Err(HandlerError::Poison {
                    reason: format!("unknown integration {}", item.integration_id),
                }),
            })
            .collect();
        let routable: Vec<usize> = (0..items.len()).filter(|&i| outcomes[i].is_ok()).collect();
        if routable.is_empty() {
            return Ok(outcomes);
        }
        let entries: Vec<(Uuid, &str)> = routable
            .iter()
            .map(|&i| (items[i].case_id, items[i].inbox_key.as_str()))
            .collect();
        let (mut batch, fresh) = self
            .store
            .open_cases_once(ROUTING_CONSUMER, &entries)
            .await?;
        let fresh: Vec<usize> = routable
            .into_iter()
            .zip(fresh)
            .filter_map(|(i, fresh)| {
                if !fresh {
                    tracing::debug!(parent: &items[i].span, case_id = %items[i].case_id, "webhook already routed");
                }
                fresh.then_some(i)
            })
            .collect();
        // Whether each case holds the webhooks' messages: one lookup for the whole batch.
        let mut asking: BTreeMap<Uuid, Asking<'_>> = BTreeMap::new();
        for &i in &fresh {
            let ids = items[i].webhook.messages.iter().map(|m| m.id.as_str());
            asking
                .entry(items[i].case_id)
                .or_default()
                .chatra_message_ids
                .extend(ids);
        }
        batch.load(&asking.into_iter().collect::<Vec<_>>()).await?;
        let mut routed = Vec::with_capacity(fresh.len());
        for &i in &fresh {
            let item = &items[i];
            let Some(setting) = settings.get(&item.integration_id) else {
                continue;
            };
            let context = RoutingContext {
                case_id: item.case_id,
                integration_id: item.integration_id,
                default_group_id: setting.integration.default_group_id,
                group_mappings: &setting.mappings,
                panel: &setting.integration.panel,
                received_from: &self.received_from,
                agent_links: &setting.links,
            };
            let state = batch.state(item.case_id, &Asking::nothing()).await?;
            let events = decide_webhook(state, &item.webhook, &context);
            let unmatched_echoes = events
                .iter()
                .filter_map(|event| match event {
                    Event::UnmatchedEchoReceived(echo) => Some(echo.chatra_message_id.clone()),
                    _ => None,
                })
                .collect();
            let decided = events.len();
            // The case read model moves in the same transaction: once the webhook is
            // routed, the API shows it (the projector finds nothing left to do for it).
            let cause = Cause::new_chain(&item.inbox_key, "routing");
            batch
                .record(item.case_id, events, &cause)
                .instrument(item.span.clone())
                .await?;
            routed.push((
                i,
                Routed {
                    decided,
                    unmatched_echoes,
                },
            ));
        }
        batch.commit().await?;
        // Logged after the commit, so a webhook retried after a failed transaction or
        // redelivered says it once.
        for (i, routed) in routed {
            log_routed(&items[i], &routed);
        }
        Ok(outcomes)
    }
}

impl BatchHandler for RouteBatch {
    type Item = Routable;
    type Output = ();

    async fn handle_batch(&self, items: Vec<Routable>) -> Vec<Result<(), HandlerError>> {
        let error = match self.route_together(&items).await {
            Ok(outcomes) => return outcomes,
            Err(error) => error,
        };
        // An outage fails every webhook alike; routing each alone would only fail again.
        if items.len() == 1 || error.is_transient() {
            let error = HandlerError::from(error);
            return items.iter().map(|_| Err(error.clone())).collect();
        }
        tracing::warn!(batch = items.len(), %error, "routing a batch failed; routing each webhook alone");
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let outcome = match self.route_together(std::slice::from_ref(&item)).await {
                Ok(mut alone) => alone.pop().unwrap_or(Ok(())),
                Err(error) => Err(error.into()),
            };
            outcomes.push(outcome);
        }
        outcomes
    }
}

fn log_routed(item: &Routable, routed: &Routed) {
    let _entered = item.span.enter();
    let case_id = item.case_id;
    for value in &item.webhook.unreadable {
        tracing::warn!(
            %case_id,
            chatra_message_id = %value.message_id,
            key = %value.key,
            found = %value.found,
            "webhook value in a form we do not read; left unknown"
        );
    }
    for chatra_message_id in &routed.unmatched_echoes {
        tracing::warn!(
            %case_id,
            %chatra_message_id,
            "a message with our receivedFrom matches no reply of the case waiting for its echo; recorded as an unmatched echo, not shown as a message"
        );
    }
    tracing::info!(%case_id, event_name = item.webhook.kind.event_name(), decided = routed.decided, "webhook routed");
}
