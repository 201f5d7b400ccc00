//! The retry and `unknown` policy: what one failed call to Chatra, Slack or Telegram leads
//! to. Pure.

use std::fmt::Display;
use std::time::Duration;

use deskie_chatra::ChatraError;

use crate::notify::NotifyError;

/// How failed-but-certainly-not-delivered calls are retried: for as long as `window` lasts
/// from the first attempt (an outage of the peer only delays the work), waiting a capped,
/// jittered, doubling backoff between attempts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// How long after its first attempt a call is still retried; a failure after that is
    /// final (`failed`). Zero: the first failure is final.
    pub window: Duration,
    /// The wait after the first failure; doubled after each further one.
    pub base_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

/// The default of [`RetryPolicy::window`]: a day, longer than any outage worth waiting out.
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(24 * 3600);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            window: DEFAULT_RETRY_WINDOW,
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

/// Where an intent stands when its attempt failed: attempts made (this one included) and how
/// long ago the first one was made (the ledger's `first_attempt_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tries {
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// Time since the first attempt (zero on the first).
    pub since_first: Duration,
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
/// | 503 | retry after `Retry-After`, else backoff |
/// | other 4xx | fail at once |
/// | 500, 502, 504, timeout or reset after the request left | unknown |
/// | 2xx with an unreadable body | unknown (Chatra took it; the echo brings the id) |
///
/// Retries go on for [`RetryPolicy::window`] from the first attempt; a failure after that
/// fails the reply with the last error.
pub fn after_error(
    error: &ChatraError,
    tries: Tries,
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
            retry_or_give_up(error, error.retry_after(), tries, policy, jitter)
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
/// Retries go on for [`RetryPolicy::window`] from the first attempt; a failure after that
/// fails the notification with the last error. (`Unknown` is never returned.)
pub fn after_notification_error(
    error: &NotifyError,
    tries: Tries,
    policy: &RetryPolicy,
    jitter: f64,
) -> NextStep {
    match error {
        NotifyError::Rejected { .. } => NextStep::Fail(error.to_string()),
        NotifyError::RateLimited { retry_after } => {
            retry_or_give_up(error, *retry_after, tries, policy, jitter)
        }
        NotifyError::NoAnswer { .. } | NotifyError::ServerError { .. } => {
            retry_or_give_up(error, None, tries, policy, jitter)
        }
    }
}

/// Retry after `asked` (else the backoff), unless the window is over.
fn retry_or_give_up(
    error: &dyn Display,
    asked: Option<Duration>,
    tries: Tries,
    policy: &RetryPolicy,
    jitter: f64,
) -> NextStep {
    if tries.since_first >= policy.window {
        let attempts = tries.attempts;
        let plural = if attempts == 1 { "" } else { "s" };
        return NextStep::Fail(format!(
            "gave up after {attempts} attempt{plural} in {}: {error}",
            spoken(tries.since_first)
        ));
    }
    NextStep::RetryAfter(asked.unwrap_or_else(|| policy.backoff(tries.attempts, jitter)))
}

/// A span of time as a person reads it, rounded down to its largest unit: `0 s`, `42 s`,
/// `5 min`, `24 h`.
fn spoken(span: Duration) -> String {
    let secs = span.as_secs();
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        _ => format!("{} h", secs / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    /// The `attempts`-th attempt, `since_first` after the first.
    fn tries(attempts: i32, since_first: Duration) -> Tries {
        Tries {
            attempts,
            since_first,
        }
    }

    fn first() -> Tries {
        tries(1, Duration::ZERO)
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_429_waits_exactly_retry_after() {
        let error = ChatraError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            after_error(&error, first(), &policy(), 0.9),
            NextStep::RetryAfter(Duration::from_secs(7))
        );
    }

    #[test]
    fn what_certainly_did_not_arrive_is_retried_for_the_whole_window_then_fails() {
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
                after_error(&error, tries(3, Duration::from_secs(3)), &policy(), 0.0),
                NextStep::RetryAfter(Duration::from_secs(2)),
                "{error}"
            );
            // Long past 8 attempts, an hour into an outage: still retried, the wait capped.
            assert_eq!(
                after_error(&error, tries(80, HOUR), &policy(), 1.0),
                NextStep::RetryAfter(Duration::from_secs(60)),
                "{error}"
            );
            let almost = DEFAULT_RETRY_WINDOW - Duration::from_secs(1);
            assert!(matches!(
                after_error(&error, tries(1400, almost), &policy(), 0.5),
                NextStep::RetryAfter(_)
            ));
            assert_eq!(
                after_error(&error, tries(1441, DEFAULT_RETRY_WINDOW), &policy(), 0.5),
                NextStep::Fail(format!("gave up after 1441 attempts in 24 h: {error}")),
            );
        }
    }

    #[test]
    fn the_window_is_configurable_and_zero_fails_the_first_failure() {
        let error = ChatraError::NotSent {
            reason: "refused".into(),
        };
        let short = RetryPolicy {
            window: Duration::from_secs(300),
            ..policy()
        };
        assert!(matches!(
            after_error(&error, tries(5, Duration::from_secs(299)), &short, 0.5),
            NextStep::RetryAfter(_)
        ));
        assert_eq!(
            after_error(&error, tries(6, Duration::from_secs(301)), &short, 0.5),
            NextStep::Fail(format!("gave up after 6 attempts in 5 min: {error}"))
        );
        let none = RetryPolicy {
            window: Duration::ZERO,
            ..policy()
        };
        assert_eq!(
            after_error(&error, first(), &none, 0.5),
            NextStep::Fail(format!("gave up after 1 attempt in 0 s: {error}"))
        );
    }

    #[test]
    fn rejections_fail_and_a_500_502_504_or_timeout_is_unknown_even_past_the_window() {
        let rejected = ChatraError::Rejected {
            status: 400,
            body: "bad clientId".into(),
        };
        assert!(matches!(
            after_error(&rejected, first(), &policy(), 0.5),
            NextStep::Fail(_)
        ));
        for error in [
            ChatraError::OutcomeUnknown {
                reason: "HTTP 500".into(),
            },
            ChatraError::OutcomeUnknown {
                reason: "HTTP 502: bad gateway".into(),
            },
            ChatraError::OutcomeUnknown {
                reason: "HTTP 504: gateway timeout".into(),
            },
            ChatraError::BadResponse {
                reason: "no id".into(),
            },
        ] {
            for at in [first(), tries(2000, 2 * DEFAULT_RETRY_WINDOW)] {
                assert!(
                    matches!(
                        after_error(&error, at, &policy(), 0.5),
                        NextStep::Unknown(_)
                    ),
                    "{error}"
                );
            }
        }
    }

    #[test]
    fn a_400_about_the_agent_says_so() {
        let missing_agent = ChatraError::Rejected {
            status: 400,
            body: r#"{"error":"agentId or agentEmail is required"}"#.into(),
        };
        assert_eq!(
            after_error(&missing_agent, first(), &policy(), 0.5),
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
            after_error(&other, first(), &policy(), 0.5),
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
        assert_eq!(p.backoff(i32::MAX, 1.0), Duration::from_secs(60));
        for n in 0..100 {
            let wait = p.backoff(3, f64::from(n) / 100.0);
            assert!(wait >= Duration::from_secs(2) && wait <= Duration::from_secs(4));
        }
    }

    #[test]
    fn spans_read_in_their_largest_unit() {
        assert_eq!(spoken(Duration::from_millis(999)), "0 s");
        assert_eq!(spoken(Duration::from_secs(119)), "119 s");
        assert_eq!(spoken(Duration::from_secs(300)), "5 min");
        assert_eq!(spoken(Duration::from_secs(7199)), "119 min");
        assert_eq!(spoken(DEFAULT_RETRY_WINDOW), "24 h");
    }

    #[test]
    fn staff_notifications_retry_what_did_not_certainly_fail_for_the_window() {
        let p = policy();
        let rate_limited = NotifyError::RateLimited {
            retry_after: Some(Duration::from_secs(5)),
        };
        assert_eq!(
            after_notification_error(&rate_limited, first(), &p, 0.3),
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
                after_notification_error(&error, tries(2, Duration::from_secs(1)), &p, 1.0),
                NextStep::RetryAfter(Duration::from_secs(2)),
                "{error}"
            );
            assert_eq!(
                after_notification_error(&error, tries(50, HOUR), &p, 1.0),
                NextStep::RetryAfter(Duration::from_secs(60)),
                "{error}"
            );
            assert!(matches!(
                after_notification_error(&error, tries(1500, DEFAULT_RETRY_WINDOW), &p, 0.0),
                NextStep::Fail(reason) if reason.starts_with("gave up after 1500 attempts in 24 h")
            ));
        }
        let rejected = NotifyError::Rejected {
            status: 400,
            body: "Bad Request: chat not found".into(),
        };
        assert!(matches!(
            after_notification_error(&rejected, first(), &p, 0.5),
            NextStep::Fail(reason) if reason.contains("chat not found")
        ));
    }
}
