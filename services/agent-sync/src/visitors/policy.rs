//! How often and how fast visitor cards are fetched, and what a failed fetch leads to.

use std::num::NonZeroU32;
use std::time::Duration;

use deskie_chatra::ChatraError;

/// The visitor-card fetcher's settings ([`Default`]: the production values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorFetchConfig {
    /// Sustained `GET /clients/{id}` calls per second to one integration (Chatra account).
    pub per_second: NonZeroU32,
    /// Calls to one integration allowed at once after a quiet spell.
    pub burst: NonZeroU32,
    /// The wait after the first failed attempt; doubled after each further one.
    pub first_retry: Duration,
    /// The longest wait between two attempts.
    pub max_retry: Duration,
    /// Attempts before a fetch is given up (`failed`).
    pub max_attempts: i32,
    /// How often the ledger is read for due fetches (a new fetch also wakes the loop).
    pub poll: Duration,
    /// How long a claim is held; must exceed one Chatra call (`chatra_timeout`).
    pub lease: Duration,
    /// Fetches claimed at once.
    pub batch: i64,
}

impl Default for VisitorFetchConfig {
    fn default() -> Self {
        Self {
            per_second: NonZeroU32::MIN,
            burst: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            first_retry: Duration::from_secs(30),
            max_retry: Duration::from_secs(30 * 60),
            max_attempts: 10,
            poll: Duration::from_secs(5),
            lease: Duration::from_secs(60),
            batch: 20,
        }
    }
}

/// What to do after attempt `attempts` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterFailure {
    /// Try again after this wait.
    Retry(Duration),
    /// Give up.
    GiveUp,
}

impl VisitorFetchConfig {
    /// The next step after attempt number `attempts` (1 for the first) failed with `error`:
    /// a refusal (4xx) or an unreadable card will not change by asking again; anything else
    /// (not sent, 429, 5xx, timeout) is retried with doubling waits, Chatra's `Retry-After`
    /// if longer, until [`Self::max_attempts`].
    pub(crate) fn after_failure(&self, attempts: i32, error: &ChatraError) -> AfterFailure {
        if matches!(
            error,
            ChatraError::Rejected { .. } | ChatraError::BadResponse { .. }
        ) {
            return AfterFailure::GiveUp;
        }
        self.retry_after(attempts, error.retry_after())
    }

    /// [`AfterFailure::Retry`] with the backoff of attempt `attempts` (at least `asked`),
    /// or [`AfterFailure::GiveUp`] when it was the last.
    pub(crate) fn retry_after(&self, attempts: i32, asked: Option<Duration>) -> AfterFailure {
        if attempts >= self.max_attempts {
            return AfterFailure::GiveUp;
        }
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        let backoff = self
            .first_retry
            .saturating_mul(1 << doublings)
            .min(self.max_retry);
        AfterFailure::Retry(backoff.max(asked.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_then_the_fetch_is_given_up() {
        let config = VisitorFetchConfig::default();
        let unknown = ChatraError::OutcomeUnknown {
            reason: "HTTP 500".into(),
        };
        let waits: Vec<AfterFailure> = (1..=10)
            .map(|n| config.after_failure(n, &unknown))
            .collect();
        let secs = |s| AfterFailure::Retry(Duration::from_secs(s));
        assert_eq!(waits[..4], [secs(30), secs(60), secs(120), secs(240)]);
        assert_eq!(waits[7], secs(1800), "capped at 30 minutes");
        assert_eq!(
            waits[9],
            AfterFailure::GiveUp,
            "the 10th attempt was the last"
        );
    }

    #[test]
    fn chatras_wait_is_honoured_and_a_refusal_is_final() {
        let config = VisitorFetchConfig::default();
        let limited = ChatraError::RateLimited {
            retry_after: Some(Duration::from_secs(90)),
        };
        assert_eq!(
            config.after_failure(1, &limited),
            AfterFailure::Retry(Duration::from_secs(90))
        );
        let missing = ChatraError::Rejected {
            status: 404,
            body: String::new(),
        };
        assert_eq!(config.after_failure(1, &missing), AfterFailure::GiveUp);
    }
}
