//! The notification workers: each claimed row (see [`crate::claims`]) is decrypted, paced per
//! destination, sent, and its ledger row settled as the staff-notification policy says. A
//! final outcome (sent or failed) is also recorded on the case (`NotificationDelivered`,
//! `NotificationFailed`) in the transaction that settles the row.

use std::time::Duration;

use deskie_config::Cipher;
use deskie_domain::case::{NotificationOutcome, decide_notification};
use deskie_store::outbox::{self, ClaimedIntent, Settlement};
use deskie_store::{Asking, Cause, Store, StoreError};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use super::{
    NotificationIntent, NotifyClient, SLACK_NOTIFICATION, TELEGRAM_NOTIFICATION, destination_key,
};
use crate::claims::Perform;
use crate::deliver::set_parent;
use crate::metrics::OutboundMetrics;
use crate::policy::{NextStep, RetryPolicy, Tries, after_notification_error};
use crate::rate_limit::KeyedLimiter;

/// Everything a notification task needs.
pub(crate) struct Notifier {
    pub store: Store,
    pub cipher: Cipher,
    pub client: NotifyClient,
    pub retry: RetryPolicy,
    /// The claims' lease: a task waits for its destination's turn at most half of it.
    pub lease: Duration,
    /// Per destination (a hash of it; see [`destination_key`]).
    pub limiter: KeyedLimiter<[u8; 32]>,
    pub metrics: OutboundMetrics,
}

/// How a claim ends.
enum Outcome {
    /// Settled as the policy says.
    Settle(Settlement),
    /// Given back untried: the destination's turn comes after this wait.
    Release(Duration),
}

impl Perform for Notifier {
    async fn perform(&self, claim: ClaimedIntent) {
        let kind = if claim.kind == SLACK_NOTIFICATION {
            "slack"
        } else {
            "telegram"
        };
        let intent: NotificationIntent = match serde_json::from_value(claim.payload.clone()) {
            Ok(intent) => intent,
            Err(error) => {
                tracing::error!(%error, key = %claim.intent_key, "unreadable ledger row");
                let failed = Settlement::Failed {
                    error: format!("unreadable ledger row: {error}"),
                };
                // Without the row, the case is unknown: the outcome stays in the ledger only.
                self.finish(&claim, kind, None, Outcome::Settle(failed))
                    .await;
                return;
            }
        };
        let span = tracing::info_span!(
            "notify",
            kind,
            case_id = %intent.case_id,
            notification_id = %intent.notification_id,
            rule_id = intent.rule_id.as_deref().unwrap_or_default(),
            attempt = claim.attempts,
        );
        set_parent(&span, &intent.trace);
        async {
            let outcome = self.attempt(&claim, &intent).await;
            self.finish(&claim, kind, Some(&intent), outcome).await;
        }
        .instrument(span)
        .await;
    }
}

impl Notifier {
    async fn attempt(&self, claim: &ClaimedIntent, intent: &NotificationIntent) -> Outcome {
        let fail = |error: &str| {
            Outcome::Settle(Settlement::Failed {
                error: error.to_owned(),
            })
        };
        let Some(secret) = self.destination(intent) else {
            return fail("the destination cannot be decrypted with DESKIE_ENCRYPTION_KEY");
        };
        let chat_id = intent.telegram_chat_id.as_deref();
        let telegram = claim.kind == TELEGRAM_NOTIFICATION;
        if telegram && chat_id.is_none_or(str::is_empty) {
            return fail("the notification names no Telegram chat");
        }
        let key = destination_key(&claim.kind, secret.expose_secret(), chat_id);
        // Waiting for the destination's turn must leave the lease room for the call itself,
        // else another claim would send it too; a longer wait puts the row back instead.
        if let Err(wait) = self.limiter.ready_within(&key, self.lease / 2).await {
            return Outcome::Release(wait);
        }
        // The last check before the request leaves: the claim is still ours, with a whole
        // lease ahead for the call. Else another worker may be sending it already.
        match self.renew_lease(claim).await {
            Ok(true) => {}
            Ok(false) => return Outcome::Release(Duration::ZERO),
            Err(error) => {
                tracing::warn!(%error, "cannot check the claim before the call; putting it back");
                return Outcome::Release(Duration::ZERO);
            }
        }
        let sent = match chat_id {
            Some(chat_id) if telegram => self.client.telegram(&secret, chat_id, &intent.text).await,
            _ => self.client.slack(&secret, &intent.text).await,
        };
        drop(secret);
        let Err(error) = sent else {
            return Outcome::Settle(Settlement::Sent);
        };
        if let super::NotifyError::RateLimited {
            retry_after: Some(wait),
        } = &error
        {
            // A 429 speaks for the destination: hold its other notifications back too.
            self.limiter.pause(&key, *wait);
        }
        let tries = Tries {
            attempts: claim.attempts,
            since_first: claim.tried_for,
        };
        Outcome::Settle(
            match after_notification_error(&error, tries, &self.retry, rand::random()) {
                NextStep::RetryAfter(after) => Settlement::Retry {
                    after,
                    error: error.to_string(),
                },
                NextStep::Fail(reason) | NextStep::Unknown(reason) => {
                    Settlement::Failed { error: reason }
                }
            },
        )
    }

    /// Renews the claim's lease right before the call ([`outbox::renew_lease`]).
    async fn renew_lease(&self, claim: &ClaimedIntent) -> Result<bool, StoreError> {
        let mut conn = self.store.pool().acquire().await?;
        outbox::renew_lease(&mut conn, claim, self.lease).await
    }

    /// The webhook URL or bot token in clear, for the one call.
    fn destination(&self, intent: &NotificationIntent) -> Option<SecretString> {
        let ciphertext = intent.destination_ciphertext().ok()?;
        let clear = self.cipher.decrypt_string(&ciphertext).ok()?;
        Some(SecretString::from(clear))
    }

    /// Settles (or releases) the claim, fenced by its attempt, and says so. A final outcome of
    /// a readable row is recorded on its case too ([`Self::settle_on_case`]).
    async fn finish(
        &self,
        claim: &ClaimedIntent,
        kind: &str,
        intent: Option<&NotificationIntent>,
        outcome: Outcome,
    ) {
        let result: Result<bool, StoreError> = async {
            if let (Outcome::Settle(settlement), Some(intent)) = (&outcome, intent)
                && let Some(on_case) = case_outcome(settlement)
            {
                return self
                    .settle_on_case(claim, intent, settlement, &on_case)
                    .await;
            }
            let mut tx = self.store.pool().begin().await?;
            let done = match &outcome {
                Outcome::Settle(settlement) => outbox::settle(&mut tx, claim, settlement).await?,
                Outcome::Release(after) => outbox::release(&mut tx, claim, *after).await?,
            };
            tx.commit().await?;
            Ok(done)
        }
        .await;
        let label = match (&outcome, &result) {
            (_, Err(_)) => "record_failed",
            (_, Ok(false)) => "claim_lost",
            (Outcome::Release(_), _) => "deferred",
            (Outcome::Settle(Settlement::Sent), _) => "sent",
            (Outcome::Settle(Settlement::Retry { .. }), _) => "retried",
            (Outcome::Settle(Settlement::Failed { .. } | Settlement::Unknown { .. }), _) => {
                "failed"
            }
        };
        self.metrics.notified(kind, label);
        match (&outcome, result) {
            (_, Err(error)) => {
                tracing::error!(%error, "cannot settle the notification; its lease brings it back");
            }
            (_, Ok(false)) => {
                tracing::warn!("the claim ran out before the notification was settled")
            }
            (Outcome::Settle(Settlement::Sent), _) => tracing::info!("notification sent"),
            (Outcome::Settle(Settlement::Retry { after, error }), _) => tracing::info!(
                %error,
                retry_in_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                "notification will be retried"
            ),
            (
                Outcome::Settle(Settlement::Failed { error } | Settlement::Unknown { error, .. }),
                _,
            ) => {
                tracing::warn!(%error, "notification failed");
            }
            (Outcome::Release(after), _) => tracing::debug!(
                wait_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                "destination busy; notification put back"
            ),
        }
    }

    /// In one transaction on the case's stream (its advisory lock first, as every writer of
    /// the case takes it): settles the row, fenced by the claim's attempt, then appends the
    /// outcome's event unless the case already has it ([`decide_notification`]) and projects
    /// it. `false`, writing nothing, when the claim was no longer current.
    async fn settle_on_case(
        &self,
        claim: &ClaimedIntent,
        intent: &NotificationIntent,
        settlement: &Settlement,
        outcome: &NotificationOutcome,
    ) -> Result<bool, StoreError> {
        let mut case = self.store.open_case(intent.case_id).await?;
        if !outbox::settle(case.transaction(), claim, settlement).await? {
            return Ok(false);
        }
        let state = case.state(&Asking::nothing()).await?;
        let attempts = u32::try_from(claim.attempts).unwrap_or(0);
        let events: Vec<_> = decide_notification(state, &intent.notification_id, attempts, outcome)
            .into_iter()
            .collect();
        let cause = Cause {
            causation_id: &claim.intent_key,
            correlation_id: &intent.notification_id,
            emitted_by: "outbound",
        };
        case.record(events, &cause).await?;
        case.commit().await?;
        Ok(true)
    }
}

/// What a settlement means for the case: only final outcomes are recorded there (a retry is
/// not an outcome yet).
fn case_outcome(settlement: &Settlement) -> Option<NotificationOutcome> {
    match settlement {
        Settlement::Sent => Some(NotificationOutcome::Delivered),
        Settlement::Failed { error } | Settlement::Unknown { error, .. } => {
            Some(NotificationOutcome::Failed {
                reason: error.clone(),
            })
        }
        Settlement::Retry { .. } => None,
    }
}
