//! Keyed rate limits, so our calls never flood a peer, and a pause when the peer says 429:
//! per integration for replies (a Chatra account), per destination for notifications (a
//! Slack webhook, a Telegram chat — keyed by a hash, never by the secret itself).

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::Clock;
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

impl RateLimit {
    /// `n` calls per second, one at a time (no burst).
    pub fn paced(n: NonZeroU32) -> Self {
        Self {
            per_second: n,
            burst: NonZeroU32::MIN,
        }
    }
}

/// The limiter of one kind of peer, shared by every delivery of one process.
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    paused_until: Mutex<HashMap<K, Instant>>,
}

/// Replies, per Chatra account.
pub type IntegrationLimiter = KeyedLimiter<Uuid>;

impl<K: Hash + Eq + Clone> std::fmt::Debug for KeyedLimiter<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimiter").finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A limiter allowing `limit` per key.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limiter: RateLimiter::keyed(
                Quota::per_second(limit.per_second).allow_burst(limit.burst),
            ),
            paused_until: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until a call to `key` is allowed.
    pub async fn until_ready(&self, key: &K) {
        while let Some(until) = self.paused(key) {
            tokio::time::sleep_until(until).await;
        }
        self.limiter.until_key_ready(key).await;
    }

    /// Waits until a call to `key` is allowed, unless that takes longer than `budget`: then
    /// returns at once with how long it would take (the caller puts the work back for later
    /// rather than hold a claim past its lease). A pause (the peer said 429) is never waited
    /// out here, however short: it returns at once with what is left of it, so the callers
    /// of a paused key give their claims (and their permits) back and the work of other
    /// keys goes on meanwhile.
    pub async fn ready_within(&self, key: &K, budget: Duration) -> Result<(), Duration> {
        let deadline = Instant::now() + budget;
        loop {
            if let Some(until) = self.paused(key) {
                return Err(until - Instant::now());
            }
            let wait = match self.limiter.check_key(key) {
                Ok(()) => return Ok(()),
                Err(not_until) => not_until.wait_time_from(self.limiter.clock().now()),
            };
            let until = Instant::now() + wait;
            if until > deadline {
                return Err(wait);
            }
            tokio::time::sleep_until(until).await;
        }
    }

    /// Holds every call to `key` back for `wait` (the peer answered 429).
    pub fn pause(&self, key: &K, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.lock();
        let entry = paused.entry(key.clone()).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn paused(&self, key: &K) -> Option<Instant> {
        let mut paused = self.lock();
        match paused.get(key) {
            Some(until) if *until > Instant::now() => Some(*until),
            Some(_) => {
                paused.remove(key);
                None
            }
            None => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Instant>> {
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
            limiter.until_ready(&a).await;
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
        limiter.pause(&a, Duration::from_secs(5));
        limiter.pause(&a, Duration::from_secs(1));
        assert!(limiter.paused(&b).is_none());
        let started = Instant::now();
        limiter.until_ready(&a).await;
        assert_eq!(started.elapsed().as_secs(), 5, "the longer pause wins");
        assert!(limiter.paused(&a).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_is_handed_back_at_once_whatever_the_budget() {
        let limiter = KeyedLimiter::<u8>::new(RateLimit::default());
        limiter.pause(&1, Duration::from_secs(30));
        let started = Instant::now();
        for budget in [Duration::from_secs(10), Duration::from_secs(40)] {
            assert_eq!(
                limiter.ready_within(&1, budget).await,
                Err(Duration::from_secs(30))
            );
        }
        assert_eq!(started.elapsed(), Duration::ZERO, "nothing waited in place");
        assert_eq!(limiter.ready_within(&2, Duration::ZERO).await, Ok(()));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(limiter.ready_within(&1, Duration::ZERO).await, Ok(()));
    }

    // Real time: the pace is kept by governor's own clock.
    #[tokio::test]
    async fn a_pace_is_waited_within_the_budget_and_handed_back_beyond_it() {
        let one_a_second = RateLimit::paced(NonZeroU32::MIN);
        let limiter = KeyedLimiter::<u8>::new(one_a_second);
        assert_eq!(limiter.ready_within(&1, Duration::ZERO).await, Ok(()));
        let Err(wait) = limiter.ready_within(&1, Duration::ZERO).await else {
            panic!("the next call is up to a second away")
        };
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(
            limiter.ready_within(&1, Duration::from_secs(2)).await,
            Ok(()),
            "a wait within the budget is waited"
        );
    }
}
