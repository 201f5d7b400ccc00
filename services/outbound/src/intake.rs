//! Case events in: a ledger row per reply and per Slack/Telegram notification asked for, and
//! echoes settling `unknown` rows.
//!
//! The handler only writes to PostgreSQL and acknowledges, so no JetStream message waits on
//! Chatra, Slack or Telegram; the workers take it from the ledger.

use std::sync::Arc;

use deskie_bus::consumer::{Delivery, Handler, HandlerError};
use deskie_proto::Message;
use deskie_proto::events::{Envelope, Event};
use deskie_store::outbox::{self, NewIntent};
use deskie_store::{Store, StoreError, StreamKey};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::notify::{SLACK_NOTIFICATION, TELEGRAM_NOTIFICATION, notification_intent};

/// Ledger kind of a reply delivered through Chatra's `POST /messages/`.
pub const CHATRA_REPLY: &str = "chatra_reply";

/// The ledger key of the reply `message_id`.
pub fn reply_intent_key(message_id: &str) -> String {
    format!("{CHATRA_REPLY}:{message_id}")
}

/// What a `chatra_reply` ledger row holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyIntent {
    /// The case.
    pub case_id: Uuid,
    /// The reply (our message id).
    pub message_id: String,
    /// The trace context of the request, so the delivery continues its trace.
    #[serde(default)]
    pub trace: Vec<(String, String)>,
}

/// The workers to poke when a row of their kind is written, one per ledger kind.
#[derive(Debug, Clone, Default)]
pub struct Wakes {
    /// `chatra_reply`.
    pub replies: Arc<Notify>,
    /// `slack_notification`.
    pub slack: Arc<Notify>,
    /// `telegram_notification`.
    pub telegram: Arc<Notify>,
}

impl Wakes {
    /// The worker of `kind`'s rows.
    pub fn of(&self, kind: &str) -> &Arc<Notify> {
        match kind {
            SLACK_NOTIFICATION => &self.slack,
            TELEGRAM_NOTIFICATION => &self.telegram,
            _ => &self.replies,
        }
    }
}

/// The intake handler.
#[derive(Debug, Clone)]
pub struct Intake {
    store: Store,
    wakes: Wakes,
}

impl Intake {
    /// Writes through `store`; pokes the worker of a row's kind when it has something to do.
    pub fn new(store: Store, wakes: Wakes) -> Self {
        Self { store, wakes }
    }
}

impl Intake {
    async fn connection(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, HandlerError> {
        self.store
            .pool()
            .acquire()
            .await
            .map_err(|e| retry(e.into()))
    }
}

impl Handler for Intake {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let envelope =
            Envelope::decode(delivery.payload.as_ref()).map_err(|e| HandlerError::Poison {
                reason: format!("payload is not a deskie.events.v1.Envelope: {e}"),
            })?;
        if envelope.stream_type != "case" {
            return Ok(());
        }
        match &envelope.event {
            Some(Event::ReplyRequested(requested)) => {
                let case_id = case_id_of(&envelope)?;
                let intent = ReplyIntent {
                    case_id,
                    message_id: requested.message_id.clone(),
                    trace: deskie_telemetry::nats::current_context_pairs(),
                };
                let payload = serde_json::to_value(&intent).map_err(|e| HandlerError::Poison {
                    reason: format!("intent: {e}"),
                })?;
                let new = NewIntent {
                    intent_key: reply_intent_key(&requested.message_id),
                    kind: CHATRA_REPLY.into(),
                    stream_id: Some(case_id),
                    payload,
                };
                // Under the case's lock, as settling is: one open row per case at a time.
                let mut tx = self
                    .store
                    .begin_stream(StreamKey::new("case", case_id))
                    .await
                    .map_err(retry)?;
                let queued = outbox::enqueue(tx.connection(), &new)
                    .await
                    .map_err(retry)?;
                tx.commit().await.map_err(retry)?;
                if queued {
                    tracing::debug!(%case_id, message_id = %requested.message_id, "reply queued");
                    self.wakes.replies.notify_one();
                }
            }
            Some(Event::NotificationRequested(requested)) => {
                let case_id = case_id_of(&envelope)?;
                let trace = deskie_telemetry::nats::current_context_pairs();
                let Some(new) = notification_intent(case_id, requested, trace) else {
                    return Ok(()); // a sound: the api streams it to agents
                };
                let new = new.map_err(|e| HandlerError::Poison {
                    reason: format!("notification intent: {e}"),
                })?;
                // No stream: nothing to order against, so no lock to take.
                let mut conn = self.connection().await?;
                if outbox::enqueue(&mut conn, &new).await.map_err(retry)? {
                    tracing::debug!(%case_id, key = %new.intent_key, "notification queued");
                    self.wakes.of(&new.kind).notify_one();
                }
            }
            Some(Event::ReplyDelivered(delivered)) if delivered.settled_by == "echo" => {
                let mut conn = self.connection().await?;
                let key = reply_intent_key(&delivered.message_id);
                if outbox::resolve(&mut conn, &key, true, None)
                    .await
                    .map_err(retry)?
                {
                    tracing::info!(message_id = %delivered.message_id, "echo settled a reply");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn case_id_of(envelope: &Envelope) -> Result<Uuid, HandlerError> {
    envelope
        .stream_id
        .parse()
        .map_err(|_| HandlerError::Poison {
            reason: format!("stream id {:?} is not a UUID", envelope.stream_id),
        })
}

fn retry(error: StoreError) -> HandlerError {
    HandlerError::Retry {
        reason: error.to_string(),
        after: None,
    }
}
