//! Agents' edits of customer data, sent to Chatra's client card (`PUT /clients/{id}`).
//!
//! One case's edits are handled one after the other (the case consumer's lane is the case),
//! but a failed edit is retried later, after JetStream's delay, and a newer edit of the same
//! case may be handled first. So each send carries what Chatra is still missing up to the
//! edit in hand ([`pending_update`]), and agent-sync remembers per case the version it sent
//! up to (`agent_sync_client_updates`): an older edit arriving afterwards has been sent
//! already and is acknowledged without a call.
//!
//! | outcome of the call | what happens |
//! |---|---|
//! | 2xx | done: the case's sent-up-to version moves to this edit |
//! | not sent, 429, 503 | `Retry` after Chatra's `Retry-After` (at least 1 s), else the consumer's backoff |
//! | 500, 502, 504, timeout, reset (outcome unknown) | `Retry` as above: setting the same values again is harmless |
//! | other 4xx (rejected) | given up with a warning; done |

use std::time::Duration;

use deskie_bus::consumer::HandlerError;
use deskie_chatra::{ChatraClient, ChatraError, ClientUpdate};
use deskie_config::Cipher;
use deskie_proto::events::{CustomerDataChanged, Envelope, Event, OptionalText};
use deskie_store::Store;
use deskie_store::read_models::integrations;
use uuid::Uuid;

use crate::credentials::credentials;
use crate::{AgentSyncMetrics, store_error};

/// The shortest retry delay, even when Chatra says `Retry-After: 0` (no hot loop).
const MIN_RETRY: Duration = Duration::from_secs(1);

/// Sends agents' customer edits; see the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct ClientUpdates {
    pub store: Store,
    pub chatra: ChatraClient,
    pub cipher: Cipher,
    pub metrics: AgentSyncMetrics,
}

impl ClientUpdates {
    /// Handles one `CustomerDataChanged`; only `source: "agent"` edits go to Chatra.
    pub async fn on_customer_data_changed(
        &self,
        envelope: &Envelope,
        case_id: Uuid,
        change: &CustomerDataChanged,
    ) -> Result<(), HandlerError> {
        if change.source != "agent" {
            return Ok(());
        }
        let sent_up_to = self.sent_up_to(case_id).await.map_err(retry)?;
        if sent_up_to >= envelope.version {
            self.metrics.client_update("skipped");
            return Ok(());
        }
        let history: Vec<Envelope> = self
            .store
            .load_stream(case_id)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|stored| stored.envelope)
            .collect();
        let Some((integration_id, client_id)) = case_key(&history) else {
            return Err(HandlerError::Poison {
                reason: format!("case {case_id} has no case_opened"),
            });
        };
        let update = pending_update(&history, sent_up_to, envelope.version);
        if update.name.is_none() && update.email.is_none() && update.phone.is_none() {
            // Chatra already has a newer value for every field this edit touched.
            self.metrics.client_update("skipped");
            return self.mark_sent(case_id, envelope.version).await;
        }
        let integration = integrations::get(self.store.pool(), integration_id)
            .await
            .map_err(store_error)?;
        let Some(integration) = integration else {
            tracing::info!(%case_id, %integration_id, "integration disconnected; customer edit not sent to Chatra");
            self.metrics.client_update("skipped");
            return self.mark_sent(case_id, envelope.version).await;
        };
        let credentials =
            credentials(&self.cipher, &integration).map_err(|e| HandlerError::Poison {
                reason: format!("integration {integration_id}: {e}"),
            })?;
        match self
            .chatra
            .update_client(&credentials, &client_id, &update)
            .await
        {
            Ok(()) | Err(ChatraError::BadResponse { .. }) => {
                self.metrics.client_update("sent");
                tracing::info!(%case_id, version = envelope.version, "customer edit sent to Chatra");
            }
            Err(ChatraError::Rejected { status, body }) => {
                self.metrics.client_update("rejected");
                tracing::warn!(%case_id, %integration_id, status, %body, "Chatra rejected the customer edit; giving up");
            }
            Err(error) => {
                self.metrics.client_update("retried");
                return Err(HandlerError::Retry {
                    after: error.retry_after().map(|after| after.max(MIN_RETRY)),
                    reason: format!("customer edit of case {case_id}: {error}"),
                });
            }
        }
        self.mark_sent(case_id, envelope.version).await
    }

    async fn sent_up_to(&self, case_id: Uuid) -> Result<u64, sqlx::Error> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM agent_sync_client_updates WHERE case_id = $1")
                .bind(case_id)
                .fetch_optional(self.store.pool())
                .await?;
        Ok(version.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
    }

    async fn mark_sent(&self, case_id: Uuid, version: u64) -> Result<(), HandlerError> {
        sqlx::query(
            "INSERT INTO agent_sync_client_updates (case_id, version) VALUES ($1, $2)
             ON CONFLICT (case_id) DO UPDATE
                SET version = GREATEST(agent_sync_client_updates.version, EXCLUDED.version),
                    updated_at = now()",
        )
        .bind(case_id)
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .execute(self.store.pool())
        .await
        .map_err(retry)?;
        Ok(())
    }
}

/// The integration and Chatra client id of a case, from its `CaseOpened`.
pub fn case_key(history: &[Envelope]) -> Option<(Uuid, String)> {
    history.iter().find_map(|envelope| match &envelope.event {
        Some(Event::CaseOpened(opened)) => Some((
            opened.integration_id.parse().ok()?,
            opened.chatra_client_id.clone(),
        )),
        _ => None,
    })
}

/// What Chatra must still be told when the agent edit at `version` is handled, given that
/// everything up to `sent_up_to` was sent: for each of name, e-mail and phone, the last
/// change after `sent_up_to` decides. An agent edit at or before `version` is sent (`null`
/// clears); a later agent edit is left to its own message; a change that came from Chatra
/// means Chatra has the newer value already.
pub fn pending_update(history: &[Envelope], sent_up_to: u64, version: u64) -> ClientUpdate {
    type Field = fn(&CustomerDataChanged) -> Option<&OptionalText>;
    let pick = |field: Field| {
        let (at, by_agent, value) = history
            .iter()
            .rev()
            .filter(|envelope| envelope.version > sent_up_to)
            .filter_map(|envelope| match &envelope.event {
                Some(Event::CustomerDataChanged(change)) => field(change).map(|value| {
                    (
                        envelope.version,
                        change.source == "agent",
                        value.value.clone(),
                    )
                }),
                _ => None,
            })
            .next()?;
        (by_agent && at <= version).then_some(value)
    };
    ClientUpdate {
        name: pick(|c| c.name.as_ref()),
        email: pick(|c| c.email.as_ref()),
        phone: pick(|c| c.phone.as_ref()),
    }
}

fn retry(error: sqlx::Error) -> HandlerError {
    store_error(error.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(
        version: u64,
        source: &str,
        name: Option<Option<&str>>,
        phone: Option<Option<&str>>,
    ) -> Envelope {
        let text = |v: Option<Option<&str>>| {
            v.map(|value| OptionalText {
                value: value.map(str::to_owned),
            })
        };
        Envelope {
            version,
            event: Some(Event::CustomerDataChanged(CustomerDataChanged {
                name: text(name),
                phone: text(phone),
                source: source.into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    type Sent = (
        Option<Option<String>>,
        Option<Option<String>>,
        Option<Option<String>>,
    );

    fn sent(update: &ClientUpdate) -> Sent {
        (
            update.name.clone(),
            update.email.clone(),
            update.phone.clone(),
        )
    }

    #[test]
    fn one_edit_sends_only_its_fields_and_null_clears() {
        let history = [change(2, "agent", Some(Some("Ann")), Some(None))];
        assert_eq!(
            sent(&pending_update(&history, 0, 2)),
            (Some(Some("Ann".into())), None, Some(None))
        );
    }

    #[test]
    fn a_newer_edit_also_carries_an_older_unsent_one_which_then_is_skipped() {
        let history = [
            change(2, "agent", None, Some(Some("+1"))),
            change(3, "agent", Some(Some("Ann")), None),
        ];
        // Edit 3 is handled while edit 2 waits for its retry: both go in one call.
        assert_eq!(
            sent(&pending_update(&history, 0, 3)),
            (Some(Some("Ann".into())), None, Some(Some("+1".into())))
        );
        // Edit 2 handled first: edit 3's name is left to edit 3.
        assert_eq!(
            sent(&pending_update(&history, 0, 2)),
            (None, None, Some(Some("+1".into())))
        );
        // Everything up to 2 sent: edit 3 carries only its own field.
        assert_eq!(
            sent(&pending_update(&history, 2, 3)),
            (Some(Some("Ann".into())), None, None)
        );
    }

    #[test]
    fn a_later_change_from_chatra_wins_over_an_unsent_agent_edit() {
        let history = [
            change(2, "agent", Some(Some("Ann")), Some(Some("+1"))),
            change(3, "chatra", Some(Some("Anna")), None),
        ];
        assert_eq!(
            sent(&pending_update(&history, 0, 2)),
            (None, None, Some(Some("+1".into())))
        );
    }
}
