//! Case events in: a ledger row per reply and per Slack/Telegram notification asked for, and
//! echoes settling `unknown` rows.
//!
//! The handler only writes to PostgreSQL and acknowledges, so no JetStream message waits on
//! Chatra, Slack or Telegram; the workers take it from the ledger. Each case's events are
//! taken in version order, a missed one filled from the event store
//! ([`deskie_store::case_consumer`]), so no reply is left without its ledger row.

use std::sync::Arc;

use deskie_bus::consumer::HandlerError;
use deskie_proto::events::{Envelope, Event};
use deskie_store::CaseStream;
use deskie_store::case_consumer::{CaseEventConsumer, CaseHold};
use deskie_store::outbox::{self, NewIntent};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::SERVICE;
use crate::notify::{
    SLACK_NOTIFICATION, TELEGRAM_NOTIFICATION, notification_intent, notification_kind,
};

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

/// The intake consumer (run through [`deskie_store::case_consumer::CaseEventHandler`]).
#[derive(Debug, Clone)]
pub struct Intake {
    wakes: Wakes,
}

impl Intake {
    /// Pokes the worker of a row's kind when it has something to do.
    pub fn new(wakes: Wakes) -> Self {
        Self { wakes }
    }
}

impl CaseEventConsumer for Intake {
    fn name(&self) -> &'static str {
        SERVICE
    }

    /// Ledger rows only: the case's stream is neither read nor written here.
    fn hold(&self) -> CaseHold {
        CaseHold::Cursor
    }

    fn wants(&self, event: &Event) -> bool {
        match event {
            Event::ReplyRequested(_) | Event::NotificationRequested(_) => true,
            Event::ReplyDelivered(delivered) => delivered.settled_by == "echo",
            _ => false,
        }
    }

    /// Holding only the intake's cursor of the case; the ledger takes its own turn with
    /// settling ([`outbox::enqueue`]), so a case keeps one open row at a time.
    async fn apply(&self, case: &mut CaseStream, envelope: &Envelope) -> Result<(), HandlerError> {
        let case_id = case.case_id();
        match &envelope.event {
            Some(Event::ReplyRequested(requested)) => {
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
                if outbox::enqueue(case.transaction(), &new).await? {
                    tracing::debug!(%case_id, message_id = %requested.message_id, "reply queued");
                }
            }
            Some(Event::NotificationRequested(requested)) => {
                let trace = deskie_telemetry::nats::current_context_pairs();
                let Some(new) = notification_intent(case_id, requested, trace) else {
                    return Ok(()); // a sound: the api streams it to agents
                };
                let new = new.map_err(|e| HandlerError::Poison {
                    reason: format!("notification intent: {e}"),
                })?;
                if outbox::enqueue(case.transaction(), &new).await? {
                    tracing::debug!(%case_id, key = %new.intent_key, "notification queued");
                }
            }
            Some(Event::ReplyDelivered(delivered)) if delivered.settled_by == "echo" => {
                let key = reply_intent_key(&delivered.message_id);
                if outbox::resolve(case.connection(), &key, true, None).await? {
                    tracing::info!(message_id = %delivered.message_id, "echo settled a reply");
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Pokes the worker of each kind that got a row (a spare poke finds nothing to do).
    fn committed(&self, applied: &[Envelope]) {
        for envelope in applied {
            match &envelope.event {
                Some(Event::ReplyRequested(_)) => self.wakes.replies.notify_one(),
                Some(Event::NotificationRequested(requested)) => {
                    if let Some(kind) = notification_kind(requested) {
                        self.wakes.of(kind).notify_one();
                    }
                }
                _ => {}
            }
        }
    }
}
