//! Whether agents' online status reaches Chatra, as the integration's status shows it.
//!
//! The ping path is a guess (`deskie_chatra::DEFAULT_AGENT_ONLINE_PATH`). When Chatra answers
//! it with 404 or 405 it does not know the path, and agents are never shown online there: an
//! admin must see that at once. So each round of pings gives a verdict per integration
//! ([`verdict_of`]): `working` once Chatra accepted a ping, `failing` with the status code when
//! it refused every one with a 4xx (not 429). Failures that say nothing about the path
//! (timeouts, 5xx, 429) give no verdict. A verdict that differs from the integration's is
//! recorded as `IntegrationAgentStatusSyncChanged` ([`record_verdict`]), logged once at warn
//! when it becomes `failing`, and every refused ping is counted in
//! `agent_sync_pings_total{outcome="path_unknown"|"refused"}`.

use deskie_chatra::ChatraError;
use deskie_proto::Timestamp;
use deskie_proto::events::{Event, IntegrationAgentStatusSyncChanged};
use deskie_store::read_models::integrations::{self, Integration};
use deskie_store::{Store, StoreError, StreamKey};
use uuid::Uuid;

use crate::SERVICE;

/// The longest piece of Chatra's answer kept with a `failing` verdict.
const MAX_DETAIL_CHARS: usize = 200;

/// What one round of pings says about an integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingVerdict {
    /// Chatra accepted a ping.
    Working,
    /// Chatra refused every ping with this 4xx.
    Failing {
        /// The HTTP status (404/405: the path is unknown to Chatra).
        http_status: u16,
        /// What Chatra said, shortened.
        detail: String,
    },
}

impl PingVerdict {
    /// The stored status name.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::Failing { .. } => "failing",
        }
    }

    fn http_status(&self) -> Option<u16> {
        match self {
            Self::Working => None,
            Self::Failing { http_status, .. } => Some(*http_status),
        }
    }

    /// Whether the integration already shows this verdict.
    pub fn is_shown_by(&self, integration: &Integration) -> bool {
        integration.agent_sync_status == self.status()
            && integration.agent_sync_http_status == self.http_status().map(i32::from)
    }
}

/// The metric outcome of a refused ping: `path_unknown` for 404/405, else `refused`; `None`
/// for an error that is no refusal.
pub fn refusal_outcome(error: &ChatraError) -> Option<&'static str> {
    match error {
        ChatraError::Rejected {
            status: 404 | 405, ..
        } => Some("path_unknown"),
        ChatraError::Rejected { status, .. } if (400..500).contains(status) => Some("refused"),
        _ => None,
    }
}

/// The verdict of one integration's pings in a round, or `None` when they say nothing.
pub fn verdict_of<'a>(
    results: impl IntoIterator<Item = &'a Result<(), ChatraError>>,
) -> Option<PingVerdict> {
    let mut refusal = None;
    for result in results {
        match result {
            Ok(()) => return Some(PingVerdict::Working),
            Err(error @ ChatraError::Rejected { status, body })
                if refusal_outcome(error).is_some() =>
            {
                refusal.get_or_insert_with(|| PingVerdict::Failing {
                    http_status: *status,
                    detail: body.chars().take(MAX_DETAIL_CHARS).collect(),
                });
            }
            Err(_) => {}
        }
    }
    refusal
}

/// Records `verdict` on integration `id` unless it already shows it (checked again under the
/// stream's lock, so several instances record a change once). Returns whether it was new.
pub async fn record_verdict(
    store: &Store,
    id: Uuid,
    verdict: &PingVerdict,
) -> Result<bool, StoreError> {
    let mut tx = store
        .begin_stream(StreamKey::new("integration", id))
        .await?;
    let Some(integration) = integrations::get(tx.connection(), id).await? else {
        return Ok(false);
    };
    if verdict.is_shown_by(&integration) {
        return Ok(false);
    }
    let now = std::time::SystemTime::now();
    let event = Event::IntegrationAgentStatusSyncChanged(IntegrationAgentStatusSyncChanged {
        status: verdict.status().to_owned(),
        http_status: verdict.http_status().map(u32::from),
        since: Some(Timestamp::from(now)),
        detail: match verdict {
            PingVerdict::Working => None,
            PingVerdict::Failing { detail, .. } => Some(detail.clone()),
        },
    });
    let cause = format!("agent-online-ping:{id}:{}", Uuid::now_v7());
    tx.append_config_event(event, &cause, SERVICE).await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16) -> Result<(), ChatraError> {
        Err(ChatraError::Rejected {
            status,
            body: format!("HTTP {status} body"),
        })
    }

    #[test]
    fn one_accepted_ping_means_working() {
        let results = [refused(404), Ok(())];
        assert_eq!(verdict_of(&results), Some(PingVerdict::Working));
    }

    #[test]
    fn refusals_mean_failing_with_the_first_status() {
        let results = [refused(405), refused(404)];
        assert_eq!(
            verdict_of(&results),
            Some(PingVerdict::Failing {
                http_status: 405,
                detail: "HTTP 405 body".into()
            })
        );
    }

    #[test]
    fn transient_failures_say_nothing() {
        let results = [
            Err(ChatraError::RateLimited { retry_after: None }),
            Err(ChatraError::Unavailable {
                status: 503,
                retry_after: None,
            }),
            Err(ChatraError::NotSent {
                reason: "refused".into(),
            }),
        ];
        assert_eq!(verdict_of(&results), None);
        assert_eq!(verdict_of(&[]), None);
    }

    #[test]
    fn refusals_are_told_apart_for_the_metric() {
        assert_eq!(
            refusal_outcome(&ChatraError::Rejected {
                status: 404,
                body: String::new()
            }),
            Some("path_unknown")
        );
        assert_eq!(
            refusal_outcome(&ChatraError::Rejected {
                status: 400,
                body: String::new()
            }),
            Some("refused")
        );
        assert_eq!(
            refusal_outcome(&ChatraError::RateLimited { retry_after: None }),
            None
        );
    }
}
