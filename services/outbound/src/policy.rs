//! The retry and `unknown` policy: what one failed call to Chatra, Slack or Telegram leads
//! to. Pure.

use std::fmt::Display;
use std::time::Duration;

use deskie_chatra::ChatraError;

use crate::notify::NotifyError;

/// How failed-but-certainly-not-delivered calls are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; then the reply is `failed`.
    pub max_attempts: i32,
    /// The wait after the first failure; doubled after each further one.
    pub base_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`: exponential, capped, with "equal jitter" (half
    /// fixed, half random by `jitter` in `0.0..1.0`), so a burst of failures does not come back
    /// as one burst.
    pub fn backoff(&self, attempts: i32, jitter: f64) -> Duration {
        let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let full = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// What to do after a failed call.
#[derive(Debug, Clone, PartialEq)]
pub enum NextStep {
    /// Chatra certainly did not process it: send again after this wait.
    RetryAfter(Duration),
    /// It will not reach the visitor: tell the agent.
    Fail(String),
    /// It may have reached the visitor: never re-send; wait for the echo.
    Unknown(String),
}

/// The policy (see `docs/services/outbound.md`):
///
/// | outcome | next |
/// |---|---|
/// | not sent (connect error) | retry with backoff |
/// | 429 | retry after exactly `Retry-After` (backoff when absent) |
/// | 502/503/504 | retry after `Retry-After`, else backoff |
/// | other 4xx | fail at once |
/// | 500, timeout or reset after the request left | unknown |
/// | 2xx with an unreadable body | unknown (Chatra took it; the echo brings the id) |
///
/// Retries stop after `max_attempts`; the reply then fails with the last error.
pub fn after_error(
    error: &ChatraError,
    attempts: i32,
    policy: &RetryPolicy,
    jitter: f64,
) -> NextStep {
    match error {
        ChatraError::Rejected { status: 400, body } if names_an_agent(body) => NextStep::Fail(
            format!("Chatra wants an agent identity on the message (HTTP 400): {body}"),
        ),
        ChatraError::Rejected { .. } => NextStep::Fail(error.to_string()),
        ChatraError::OutcomeUnknown { .. } | ChatraError::BadResponse { .. } => {
            NextStep::Unknown(error.to_string())
        }
        ChatraError::NotSent { .. }
        | ChatraError::RateLimited { .. }
        | ChatraError::Unavailable { .. } => {
            retry_or_give_up(error, error.retry_after(), attempts, policy, jitter)
        }
    }
}

/// Whether Chatra's refusal is about the message's agent (every reply carries one, so this
/// means Chatra did not accept the one we sent: `chatra-api.md` §8.3).
fn names_an_agent(body: &str) -> bool {
    body.to_ascii_lowercase().contains("agent")
}

/// The policy for staff notifications (Slack, Telegram): not customer-visible, so whatever
/// did not certainly fail is tried again — a duplicate in a staff channel is better than a
/// missed alert.
///
/// | outcome | next |
/// |---|---|
/// | no answer (connect error, timeout, reset) | retry with backoff |
/// | 429 | retry after exactly the wait asked for (backoff when absent) |
/// | 5xx | retry with backoff |
/// | other 4xx | fail at once |
///
/// Retries stop after `max_attempts`; the notification then fails with the last error.
/// (`Unknown` is never returned.)
pub fn after_notification_error(
    error: &NotifyError,
    attempts: i32,
    policy: &RetryPolicy,
    jitter: f64,
) -> NextStep {
    match error {
        NotifyError::Rejected { .. } => NextStep::Fail(error.to_string()),
        NotifyError::RateLimited { retry_after } => {
            retry_or_give_up(error, *retry_after, attempts, policy, jitter)
        }
        NotifyError::NoAnswer { .. } | NotifyError::ServerError { .. } => {
            retry_or_give_up(error, None, attempts, policy, jitter)
        }
    }
}

/// Retry after `asked` (else the backoff), unless the attempts are used up.
fn retry_or_give_up(
    error: &dyn Display,
    asked: Option<Duration>,
    attempts: i32,
    policy: &RetryPolicy,
    jitter: f64,
) -> NextStep {
    if attempts >= policy.max_attempts {
        return NextStep::Fail(format!("gave up after {attempts} attempts: {error}"));
    }
    NextStep::RetryAfter(asked.unwrap_or_else(|| policy.backoff(attempts, jitter)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    #[test]
    fn a_429_waits_exactly_retry_after() {
        let error = ChatraError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            after_error(&error, 1, &policy(), 0.9),
            NextStep::RetryAfter(Duration::from_secs(7))
        );
    }

    #[test]
    fn connection_errors_and_gateway_errors_back_off_then_give_up() {
        let errors = [
            ChatraError::NotSent {
                reason: "refused".into(),
            },
            ChatraError::Unavailable {
                status: 503,
                retry_after: None,
            },
            ChatraError::RateLimited { retry_after: None },
        ];
        for error in errors {
            assert_eq!(
                after_error(&error, 3, &policy(), 0.0),
                NextStep::RetryAfter(Duration::from_secs(2)),
                "{error}"
            );
            assert!(matches!(
                after_error(&error, 8, &policy(), 0.0),
                NextStep::Fail(reason) if reason.starts_with("gave up after 8 attempts")
            ));
        }
    }

    #[test]
    fn rejections_fail_and_a_500_or_timeout_is_unknown() {
        let rejected = ChatraError::Rejected {
            status: 400,
            body: "bad clientId".into(),
        };
        assert!(matches!(
            after_error(&rejected, 1, &policy(), 0.5),
            NextStep::Fail(_)
        ));
        for error in [
            ChatraError::OutcomeUnknown {
                reason: "HTTP 500".into(),
            },
            ChatraError::BadResponse {
                reason: "no id".into(),
            },
        ] {
            assert!(matches!(
                after_error(&error, 1, &policy(), 0.5),
                NextStep::Unknown(_)
            ));
        }
    }

    #[test]
    fn a_400_about_the_agent_says_so() {
        let missing_agent = ChatraError::Rejected {
            status: 400,
            body: r#"{"error":"agentId or agentEmail is required"}"#.into(),
        };
        assert_eq!(
            after_error(&missing_agent, 1, &policy(), 0.5),
            NextStep::Fail(
                r#"Chatra wants an agent identity on the message (HTTP 400): {"error":"agentId or agentEmail is required"}"#
                    .into()
            )
        );
        let other = ChatraError::Rejected {
            status: 400,
            body: "bad clientId".into(),
        };
        assert_eq!(
            after_error(&other, 1, &policy(), 0.5),
            NextStep::Fail("rejected by Chatra (HTTP 400): bad clientId".into())
        );
    }

    #[test]
    fn backoff_doubles_is_capped_and_jitter_stays_within_half() {
        let p = policy();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(4, 1.0), Duration::from_secs(8));
        assert_eq!(p.backoff(30, 1.0), Duration::from_secs(60));
        assert_eq!(p.backoff(1000, 0.0), Duration::from_secs(30));
        for n in 0..100 {
            let wait = p.backoff(3, f64::from(n) / 100.0);
            assert!(wait >= Duration::from_secs(2) && wait <= Duration::from_secs(4));
        }
    }

    #[test]
    fn staff_notifications_retry_what_did_not_certainly_fail() {
        let p = policy();
        let rate_limited = NotifyError::RateLimited {
            retry_after: Some(Duration::from_secs(5)),
        };
        assert_eq!(
            after_notification_error(&rate_limited, 1, &p, 0.3),
            NextStep::RetryAfter(Duration::from_secs(5))
        );
        for error in [
            NotifyError::NoAnswer {
                reason: "timed out".into(),
            },
            NotifyError::ServerError {
                status: 500,
                body: "rollup_error".into(),
            },
            NotifyError::RateLimited { retry_after: None },
        ] {
            assert_eq!(
                after_notification_error(&error, 2, &p, 1.0),
                NextStep::RetryAfter(Duration::from_secs(2)),
                "{error}"
            );
            assert!(matches!(
                after_notification_error(&error, 8, &p, 0.0),
                NextStep::Fail(reason) if reason.starts_with("gave up after 8 attempts")
            ));
        }
        let rejected = NotifyError::Rejected {
            status: 400,
            body: "Bad Request: chat not found".into(),
        };
        assert!(matches!(
            after_notification_error(&rejected, 1, &p, 0.5),
            NextStep::Fail(reason) if reason.contains("chat not found")
        ));
    }
}
