//! A per-integration rate limit, so our replies never flood a Chatra account, and a pause
//! when Chatra says 429 for the whole account.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;
use uuid::Uuid;

/// Calls per second allowed to one Chatra account, and the burst above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained calls per second.
    pub per_second: NonZeroU32,
    /// Calls allowed at once after a quiet spell.
    pub burst: NonZeroU32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// The limiter shared by every delivery of one process.
pub struct IntegrationLimiter {
    limiter: DefaultKeyedRateLimiter<Uuid>,
    paused_until: Mutex<HashMap<Uuid, Instant>>,
}

impl std::fmt::Debug for IntegrationLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationLimiter").finish_non_exhaustive()
    }
}

impl IntegrationLimiter {
    /// A limiter allowing `limit` per integration.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limiter: RateLimiter::keyed(
                Quota::per_second(limit.per_second).allow_burst(limit.burst),
            ),
            paused_until: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until a call to `integration` is allowed.
    pub async fn until_ready(&self, integration: Uuid) {
        loop {
            let paused = self.paused(integration);
            match paused {
                Some(until) => tokio::time::sleep_until(until).await,
                None => break,
            }
        }
        self.limiter.until_key_ready(&integration).await;
    }

    /// Holds every call to `integration` back for `wait` (Chatra answered 429).
    pub fn pause(&self, integration: Uuid, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.lock();
        let entry = paused.entry(integration).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn paused(&self, integration: Uuid) -> Option<Instant> {
        let mut paused = self.lock();
        match paused.get(&integration) {
            Some(until) if *until > Instant::now() => Some(*until),
            Some(_) => {
                paused.remove(&integration);
                None
            }
            None => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Instant>> {
        self.paused_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_integration_is_paced_while_another_is_not_held_back() {
        let limit = RateLimit {
            per_second: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::MIN,
        };
        let limiter = IntegrationLimiter::new(limit);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let started = std::time::Instant::now();
        for _ in 0..5 {
            limiter.until_ready(a).await;
        }
        let paced = started.elapsed();
        assert!(
            paced >= Duration::from_millis(150),
            "5 calls at 20/s: {paced:?}"
        );
        assert!(
            limiter.limiter.check_key(&b).is_ok(),
            "another integration has its own budget"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_only_its_integration() {
        let limiter = IntegrationLimiter::new(RateLimit::default());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        limiter.pause(a, Duration::from_secs(5));
        limiter.pause(a, Duration::from_secs(1));
        assert!(limiter.paused(b).is_none());
        let started = Instant::now();
        limiter.until_ready(a).await;
        assert_eq!(started.elapsed().as_secs(), 5, "the longer pause wins");
        assert!(limiter.paused(a).is_none());
    }
}
