//! What went wrong on a call, sorted by what the caller may safely do next.

use std::time::Duration;

/// How much of a peer's response body an error keeps.
const MAX_BODY_CHARS: usize = 512;

/// A failed Chatra call; each variant is a different next step (see the crate docs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatraError {
    /// The request never left (connect/DNS/TLS failure, or it could not be built): safe to retry.
    #[error("not sent to Chatra: {reason}")]
    NotSent {
        /// What stopped it.
        reason: String,
    },
    /// 429: refused before processing; retry after `retry_after` (or own backoff if absent).
    #[error("rate limited by Chatra (retry after {retry_after:?})")]
    RateLimited {
        /// The parsed `Retry-After`, clamped to an hour.
        retry_after: Option<Duration>,
    },
    /// 503: the request was turned away before Chatra processed it; retry with backoff. (A
    /// 502 or 504 is [`ChatraError::OutcomeUnknown`]: the gateway may have passed it on.)
    #[error("Chatra unavailable (HTTP {status}, retry after {retry_after:?})")]
    Unavailable {
        /// The HTTP status.
        status: u16,
        /// The parsed `Retry-After`, if one was sent.
        retry_after: Option<Duration>,
    },
    /// Any other 4xx (or an unexpected 1xx/3xx): permanent, do not retry.
    #[error("rejected by Chatra (HTTP {status}): {body}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The start of the response body, secret scrubbed.
        body: String,
    },
    /// 500, 502, 504 (any 5xx but 503), a timeout after the request left, or a reset
    /// mid-response: Chatra may have processed it. Never re-send blindly; settle by the echo
    /// webhook.
    #[error("outcome unknown: {reason}")]
    OutcomeUnknown {
        /// What happened.
        reason: String,
    },
    /// 2xx, but the body did not hold what we needed (the message id). Chatra accepted the
    /// call, so this is not retryable: the id arrives later with the echo webhook.
    #[error("Chatra accepted the call but its answer was unreadable: {reason}")]
    BadResponse {
        /// What was missing or malformed.
        reason: String,
    },
}

impl ChatraError {
    /// `true` when Chatra certainly did not process the request, so sending again cannot
    /// duplicate anything.
    pub fn is_retryable_safely(&self) -> bool {
        matches!(
            self,
            Self::NotSent { .. } | Self::RateLimited { .. } | Self::Unavailable { .. }
        )
    }

    /// The wait Chatra asked for, if it asked.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } | Self::Unavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// The first [`MAX_BODY_CHARS`] characters of `body`, with `secret` (if non-empty) removed.
pub(crate) fn excerpt(body: &str, secret: &str) -> String {
    let scrubbed = if secret.is_empty() {
        body.to_owned()
    } else {
        body.replace(secret, "[redacted]")
    };
    let mut chars = scrubbed.chars();
    let mut kept: String = chars.by_ref().take(MAX_BODY_CHARS).collect();
    if chars.next().is_some() {
        kept.push('…');
    }
    kept
}

/// A reqwest error and its causes on one line (reqwest's own text hides the cause).
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_truncates_on_a_char_boundary_and_scrubs_the_secret() {
        let body = format!("{}sekrit", "é".repeat(600));
        let kept = excerpt(&body, "sekrit");
        assert_eq!(kept.chars().count(), MAX_BODY_CHARS + 1);
        assert!(kept.ends_with('…'));
        assert_eq!(excerpt("key sekrit bad", "sekrit"), "key [redacted] bad");
    }

    #[test]
    fn only_unprocessed_outcomes_are_safely_retryable() {
        let wait = Some(Duration::from_secs(2));
        assert!(ChatraError::RateLimited { retry_after: wait }.is_retryable_safely());
        assert_eq!(
            ChatraError::Unavailable {
                status: 503,
                retry_after: wait
            }
            .retry_after(),
            wait
        );
        assert!(
            !ChatraError::OutcomeUnknown {
                reason: String::new()
            }
            .is_retryable_safely()
        );
        assert!(
            !ChatraError::BadResponse {
                reason: String::new()
            }
            .is_retryable_safely()
        );
        assert!(
            !ChatraError::Rejected {
                status: 400,
                body: String::new()
            }
            .is_retryable_safely()
        );
    }
}
