//! Reply delivery: each claimed reply (see [`crate::claims`]) is sent to Chatra, and the
//! outcome recorded on the case and the ledger row settled in one transaction.
//!
//! Every reply is its own task (bounded by `concurrency`), so a hanging Chatra call holds
//! only its own case back. A worker that dies between the last check before its call and
//! recording leaves its row claimed with the call marked started; when the lease runs out the
//! next claim sees `previous_claim_lost` and records `unknown` instead of sending again. One
//! that dies before that check never called: the next claim sends.
//!
//! Waiting never outlives a claim: a reply whose Chatra account is paused (a 429's
//! `Retry-After`) gives its claim back at once, and one whose turn under the account's pace
//! is further away than half the lease does too (`pending` again when its turn comes, the
//! attempt not counted), so a paused account holds no permit another account could use.
//! Right before the call leaves, the lease is checked again and renewed to a whole lease
//! (`outbox::renew_lease`); a claim whose lease ran out meanwhile never calls (another
//! claim may already count the reply as sent and lost).

use deskie_chatra::{ChatraClient, ChatraCredentials, ChatraError, OutgoingMessage, SentMessage};
use deskie_config::Cipher;
use deskie_domain::case::{CaseState, DeliveryOutcome, decide_delivery};
use deskie_store::outbox::{self, ClaimedIntent, Settlement};
use deskie_store::read_models::integrations::Sender;
use deskie_store::read_models::{agents, integrations};
use deskie_store::{Asking, CaseStream, Cause, Store, StoreError};
use secrecy::SecretString;
use tracing::Instrument;

use crate::OutboundConfig;
use crate::claims::Perform;
use crate::intake::ReplyIntent;
use crate::metrics::OutboundMetrics;
use crate::policy::{NextStep, Tries, after_error};
use crate::rate_limit::IntegrationLimiter;

/// Everything a delivery task needs.
pub(crate) struct Deliverer {
    pub config: OutboundConfig,
    pub store: Store,
    pub chatra: ChatraClient,
    pub cipher: Cipher,
    pub limiter: IntegrationLimiter,
    pub metrics: OutboundMetrics,
}

/// Why a reply cannot be sent at all, before any call.
#[derive(Debug, thiserror::Error)]
enum Unsendable {
    #[error("the case has no reply {0}")]
    NoSuchReply(String),
    #[error("the integration of this case is gone or disconnected")]
    IntegrationGone,
    #[error("the integration's secret key cannot be decrypted with DESKIE_ENCRYPTION_KEY")]
    SecretUnreadable,
    #[error("the agent {0} who wrote the reply is unknown")]
    AgentUnknown(String),
}

/// What the task decided to record.
struct Record {
    outcome: Option<DeliveryOutcome>,
    settlement: Settlement,
}

/// How a claim ends.
enum Step {
    /// Settled as decided, the outcome recorded on the case.
    Record(Record),
    /// Given back untried, due again after this wait (the account's pause or pace; zero when
    /// the lease ran out before the call).
    GiveBack(std::time::Duration),
}

impl Perform for Deliverer {
    async fn perform(&self, claim: ClaimedIntent) {
        self.deliver(claim).await;
    }
}

impl Deliverer {
    async fn deliver(&self, claim: ClaimedIntent) {
        let intent: ReplyIntent = match serde_json::from_value(claim.payload.clone()) {
            Ok(intent) => intent,
            Err(error) => {
                tracing::error!(%error, key = %claim.intent_key, "unreadable ledger row");
                self.settle_only(
                    &claim,
                    Settlement::Failed {
                        error: format!("unreadable ledger row: {error}"),
                    },
                )
                .await;
                return;
            }
        };
        let span = tracing::info_span!(
            "deliver_reply",
            case_id = %intent.case_id,
            message_id = %intent.message_id,
            attempt = claim.attempts,
        );
        set_parent(&span, &intent.trace);
        async {
            match self.attempt(&claim, &intent).await {
                Ok(Step::Record(record)) => self.record(&claim, &intent, record).await,
                Ok(Step::GiveBack(after)) => self.give_back(&claim, after).await,
                Err(error) => tracing::warn!(%error, "delivery attempt could not finish; the lease will bring it back"),
            }
        }
        .instrument(span)
        .await;
    }

    /// Decides what to record: sends when the reply is due, settles without a call, or gives
    /// the claim back when the call cannot leave yet.
    async fn attempt(
        &self,
        claim: &ClaimedIntent,
        intent: &ReplyIntent,
    ) -> Result<Step, StoreError> {
        let state = self
            .store
            .case_state(intent.case_id, &Asking::reply(&intent.message_id, None))
            .await?;
        let Some(reply) = state.reply(&intent.message_id) else {
            return Ok(Step::Record(fail(Unsendable::NoSuchReply(
                intent.message_id.clone(),
            ))));
        };
        if reply.chatra_message_id.is_some() {
            // The echo came first.
            return Ok(Step::Record(Record {
                outcome: None,
                settlement: Settlement::Sent,
            }));
        }
        if claim.previous_claim_lost {
            return Ok(Step::Record(self.unknown(
                "outbound stopped while sending this reply; the request may have reached Chatra"
                    .into(),
            )));
        }
        let (integration_id, creds, sender) = match self.credentials(&state).await? {
            Ok(found) => found,
            Err(why) => return Ok(Step::Record(fail(why))),
        };
        // Chatra needs an agent on every message (chatra-api.md §8.3): a reply without one
        // (a rule's, an admin's) goes under the integration's sender identity.
        let (agent_email, agent_name) = match &reply.agent_id {
            None => (sender.email, sender.name),
            Some(agent_id) => {
                let agent = match agent_id.parse() {
                    Ok(id) => agents::get(self.store.pool(), id).await?,
                    Err(_) => None,
                };
                match agent {
                    Some(agent) => (agent.email, agent.name),
                    None => {
                        return Ok(Step::Record(fail(Unsendable::AgentUnknown(
                            agent_id.clone(),
                        ))));
                    }
                }
            }
        };
        let message = OutgoingMessage {
            client_id: state.chatra_client_id.clone(),
            text: reply.text.clone(),
            agent_email,
            agent_name,
            received_from: self.config.received_from.clone(),
        };
        // The account's turn: a pause is never waited out holding the claim, and a pace only
        // within half the lease, so the call itself keeps the other half.
        if let Err(wait) = self
            .limiter
            .ready_within(&integration_id, self.config.lease / 2)
            .await
        {
            return Ok(Step::GiveBack(wait));
        }
        // The last check before the request leaves: the claim is still ours and has a whole
        // lease ahead for the call (the HTTP timeout is shorter).
        let mut conn = self.store.pool().acquire().await?;
        if !outbox::renew_lease(&mut conn, claim, self.config.lease).await? {
            return Ok(Step::GiveBack(std::time::Duration::ZERO));
        }
        drop(conn);
        let sent = self.chatra.send_message(&creds, &message).await;
        Ok(Step::Record(self.after_call(integration_id, claim, sent)))
    }

    /// Gives the claim back untried (fenced by its attempt); `claim_lost` when another claim
    /// holds the row by now.
    async fn give_back(&self, claim: &ClaimedIntent, after: std::time::Duration) {
        let released = async {
            let mut conn = self.store.pool().acquire().await?;
            outbox::release(&mut conn, claim, after).await
        }
        .await;
        let wait_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        match released {
            Ok(true) => {
                self.metrics.count("deferred");
                tracing::debug!(
                    wait_ms,
                    "reply put back untried (its Chatra account paused or busy, or its lease ran out)"
                );
            }
            Ok(false) => {
                self.metrics.count("claim_lost");
                tracing::warn!(
                    "the claim ran out before the reply was put back; the next claim settles it"
                );
            }
            Err(error) => {
                self.metrics.count("record_failed");
                tracing::error!(%error, "cannot put the reply back; its lease brings it back");
            }
        }
    }

    fn after_call(
        &self,
        integration_id: uuid::Uuid,
        claim: &ClaimedIntent,
        sent: Result<SentMessage, ChatraError>,
    ) -> Record {
        let error = match sent {
            Ok(sent) => {
                return Record {
                    outcome: Some(DeliveryOutcome::Delivered {
                        chatra_message_id: sent.id,
                        chatra_agent_id: sent.agent_id,
                    }),
                    settlement: Settlement::Sent,
                };
            }
            Err(error) => error,
        };
        if let ChatraError::RateLimited {
            retry_after: Some(wait),
        } = &error
        {
            // A 429 speaks for the whole account: hold its other replies back too.
            self.limiter.pause(&integration_id, *wait);
        }
        let tries = Tries {
            attempts: claim.attempts,
            since_first: claim.tried_for,
        };
        match after_error(&error, tries, &self.config.retry, rand::random()) {
            NextStep::RetryAfter(after) => {
                tracing::info!(%error, retry_in_ms = after.as_millis() as u64, "reply will be retried");
                self.metrics.count("retried");
                Record {
                    outcome: None,
                    settlement: Settlement::Retry {
                        after,
                        error: error.to_string(),
                    },
                }
            }
            NextStep::Fail(reason) => Record {
                outcome: Some(DeliveryOutcome::Failed {
                    reason: reason.clone(),
                }),
                settlement: Settlement::Failed { error: reason },
            },
            NextStep::Unknown(reason) => self.unknown(reason),
        }
    }

    fn unknown(&self, reason: String) -> Record {
        // Not retried: only the echo can tell whether the visitor got it.
        tracing::warn!(%reason, "the reply may or may not have reached Chatra; waiting for its echo");
        let settle_by = std::time::SystemTime::now() + self.config.unknown_deadline;
        Record {
            outcome: Some(DeliveryOutcome::Unknown {
                reason: reason.clone(),
                settle_by: deskie_proto::Timestamp::from(settle_by),
            }),
            settlement: Settlement::Unknown {
                settle_within: self.config.unknown_deadline,
                error: reason,
            },
        }
    }

    async fn credentials(
        &self,
        state: &CaseState,
    ) -> Result<Result<(uuid::Uuid, ChatraCredentials, Sender), Unsendable>, StoreError> {
        let Ok(integration_id) = state.integration_id.parse() else {
            return Ok(Err(Unsendable::IntegrationGone));
        };
        let Some(integration) = integrations::get(self.store.pool(), integration_id).await? else {
            return Ok(Err(Unsendable::IntegrationGone));
        };
        let Ok(secret) = self
            .cipher
            .decrypt_string(&integration.secret_key_encrypted)
        else {
            return Ok(Err(Unsendable::SecretUnreadable));
        };
        let sender = integration.sender();
        Ok(Ok((
            integration_id,
            ChatraCredentials {
                public_key: integration.public_key,
                secret_key: SecretString::from(secret),
            },
            sender,
        )))
    }

    /// Appends the outcome's events (if the case still needs them) and settles the claim, in
    /// one transaction on the case's stream; nothing is written when the claim was lost.
    async fn record(&self, claim: &ClaimedIntent, intent: &ReplyIntent, record: Record) {
        let result = self.try_record(claim, intent, &record).await;
        let label = match (&record.settlement, &result) {
            (_, Err(_)) => "record_failed",
            (_, Ok(false)) => "claim_lost",
            (Settlement::Sent, _) => "sent",
            (Settlement::Retry { .. }, _) => return,
            (Settlement::Failed { .. }, _) => "failed",
            (Settlement::Unknown { .. }, _) => "unknown",
        };
        self.metrics.count(label);
        match result {
            Ok(true) => tracing::info!(outcome = label, "reply delivery recorded"),
            Ok(false) => tracing::warn!(
                "the claim ran out before the outcome was recorded; the next claim settles it"
            ),
            Err(error) => {
                tracing::error!(%error, "cannot record the delivery outcome; the next claim settles it")
            }
        }
    }

    async fn try_record(
        &self,
        claim: &ClaimedIntent,
        intent: &ReplyIntent,
        record: &Record,
    ) -> Result<bool, StoreError> {
        let mut case = self.store.open_case(intent.case_id).await?;
        if !outbox::settle(case.transaction(), claim, &record.settlement).await? {
            return Ok(false);
        }
        if let Some(outcome) = &record.outcome {
            record_outcome(&mut case, intent, &claim.intent_key, outcome).await?;
        }
        case.commit().await?;
        Ok(true)
    }

    async fn settle_only(&self, claim: &ClaimedIntent, settlement: Settlement) {
        let settled = async {
            let mut tx = self.store.pool().begin().await?;
            let settled = outbox::settle(&mut tx, claim, &settlement).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(settled)
        }
        .await;
        if let Err(error) = settled {
            tracing::error!(%error, "cannot settle a ledger row");
        }
    }
}

/// Records what `outcome` adds to the case (see [`decide_delivery`]), in the caller's
/// transaction on the case.
pub(crate) async fn record_outcome(
    case: &mut CaseStream,
    intent: &ReplyIntent,
    intent_key: &str,
    outcome: &DeliveryOutcome,
) -> Result<(), StoreError> {
    let chatra_message_id = match outcome {
        DeliveryOutcome::Delivered {
            chatra_message_id, ..
        } => Some(chatra_message_id.as_str()),
        _ => None,
    };
    let asking = Asking::reply(&intent.message_id, chatra_message_id);
    let state = case.state(&asking).await?;
    let events = decide_delivery(state, &intent.message_id, outcome);
    let cause = Cause {
        causation_id: intent_key,
        correlation_id: &intent.message_id,
        emitted_by: "outbound",
    };
    case.record(events, &cause).await.map(drop)
}

fn fail(why: Unsendable) -> Record {
    let reason = why.to_string();
    Record {
        outcome: Some(DeliveryOutcome::Failed {
            reason: reason.clone(),
        }),
        settlement: Settlement::Failed { error: reason },
    }
}

/// Makes `span` a child of the trace carried in `trace` (the event's context).
pub(crate) fn set_parent(span: &tracing::Span, trace: &[(String, String)]) {
    if trace.is_empty() {
        return;
    }
    let mut headers = async_nats::HeaderMap::new();
    for (name, value) in trace {
        headers.insert(name.as_str(), value.as_str());
    }
    deskie_telemetry::nats::set_parent_from_headers(span, Some(&headers));
}
