//! Where a fetch that the rate limit held back goes in line.
//!
//! Such a fetch is put back due at its integration's next free slot, not merely after the
//! limiter's next token. Otherwise, with a backlog, every row held back would come due
//! again within a second, be claimed, and be put back again. `bench-cases` showed it: with
//! 10,000 new chats and 1 fetch/s, the fetcher claimed and released rows nonstop, and those
//! updates were the largest WAL writer after routing itself. Taking a slot spaces the rows
//! one interval apart, so each is claimed about once more, when a token should be there.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// The next free slot per integration, one `interval` apart.
#[derive(Debug)]
pub(crate) struct Slots {
    interval: Duration,
    next: Mutex<HashMap<Uuid, Instant>>,
}

impl Slots {
    /// Slots for `per_second` fetches per second.
    pub(crate) fn new(per_second: NonZeroU32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.get(),
            next: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `integration`'s next free slot that is at least `wait` after `now`; the wait
    /// until it.
    pub(crate) fn take(&self, integration: Uuid, now: Instant, wait: Duration) -> Duration {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        // Slots in the past are free again; forgetting them keeps the map as small as the
        // set of integrations with a backlog.
        next.retain(|_, slot| *slot > now);
        let slot = next.entry(integration).or_insert(now);
        let at = (*slot).max(now + wait);
        *slot = at + self.interval;
        at - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_second(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
    }

    #[test]
    fn rows_held_back_together_are_spaced_one_interval_apart() {
        let slots = Slots::new(per_second(2));
        let now = Instant::now();
        let integration = Uuid::now_v7();
        let waits: Vec<Duration> = (0..4)
            .map(|_| slots.take(integration, now, Duration::from_millis(300)))
            .collect();
        assert_eq!(
            waits,
            [300, 800, 1300, 1800].map(Duration::from_millis).to_vec()
        );
    }

    #[test]
    fn integrations_have_lines_of_their_own() {
        let slots = Slots::new(per_second(1));
        let now = Instant::now();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(slots.take(a, now, Duration::ZERO), Duration::ZERO);
        assert_eq!(slots.take(a, now, Duration::ZERO), Duration::from_secs(1));
        assert_eq!(slots.take(b, now, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_line_that_has_passed_starts_again_from_the_wait() {
        let slots = Slots::new(per_second(1));
        let now = Instant::now();
        let integration = Uuid::now_v7();
        for _ in 0..3 {
            slots.take(integration, now, Duration::ZERO);
        }
        let later = now + Duration::from_secs(10);
        assert_eq!(
            slots.take(integration, later, Duration::from_millis(200)),
            Duration::from_millis(200)
        );
    }
}
