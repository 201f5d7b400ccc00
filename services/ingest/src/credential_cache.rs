//! The answers of the credential lookup kept in process, and when one may be served.
//!
//! **The staleness bound.** A cached answer is served only while all of these hold:
//!
//! 1. the change listener is connected ([`CredentialCache::listening`]): every change of
//!    an integration's credentials committed since `LISTEN` took effect is announced and
//!    evicts that integration ([`CredentialCache::invalidate`]);
//! 2. the answer was read after the listener last connected: what was read while nobody
//!    listened, or before a reconnect, may have missed its announcement;
//! 3. no invalidation happened while it was being read: a read that raced a change may
//!    hold the row from before it, so it is not kept;
//! 4. its read *started* less than [`CACHE_TTL`] ago.
//!
//! (1)–(3) make a change take effect as soon as ingest hears of it (milliseconds after the
//! commit). (4) is the backstop for an announcement lost on a session that still looks
//! alive (a silently cut connection is noticed only by keepalives, seconds later): every
//! answer served reflects the database as it was less than [`CACHE_TTL`] before, so a
//! webhook arriving `CACHE_TTL` (500 ms, under a second) after a rotation or a disconnect
//! commits is refused, whatever happened to the notification.
//!
//! Outage fallback, apart from the above: while PostgreSQL cannot be read, the last
//! credentials read for an integration stand in for up to [`STALE_FALLBACK`], as before
//! the cache existed. Only answers the database gave are kept for that; an invalidation
//! removes them, so credentials known to be replaced never stand in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use deskie_store::read_models::integrations::WebhookCredentials;
use uuid::Uuid;

/// How long a cached answer may be served after its read started: the staleness bound
/// when a change's announcement is lost (module docs).
pub const CACHE_TTL: Duration = Duration::from_millis(500);

/// How long last-known credentials may stand in while PostgreSQL is unreachable.
pub(crate) const STALE_FALLBACK: Duration = Duration::from_secs(300);

/// Entries kept before the oldest are purged; negative answers (any id a sender makes up)
/// are not kept beyond it.
const MAX_ENTRIES: usize = 10_000;

/// What the database said: the credentials, or `None` for no such connected integration.
pub(crate) type Answer = Option<WebhookCredentials>;

/// When a database read started, in the cache's terms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadStart {
    at: Instant,
    invalidations: u64,
}

#[derive(Debug)]
struct Entry {
    answer: Answer,
    read: ReadStart,
}

/// The answers per integration, and what is known of their freshness.
#[derive(Debug, Default)]
pub(crate) struct CredentialCache {
    entries: HashMap<Uuid, Entry>,
    /// Counts every invalidation (one integration, everything, the listener's coming and
    /// going): a read during which it moved is not served.
    invalidations: u64,
    /// `invalidations` when the listener last connected; `None` while it is not connected.
    listening_since: Option<u64>,
    last_purge: Option<Instant>,
}

impl CredentialCache {
    /// The answer to serve without a database read, if one may be served at `now`.
    pub fn fresh(&self, id: Uuid, now: Instant) -> Option<&Answer> {
        let since = self.listening_since?;
        let entry = self.entries.get(&id)?;
        let servable = entry.read.invalidations >= since
            && now.saturating_duration_since(entry.read.at) < CACHE_TTL;
        servable.then_some(&entry.answer)
    }

    /// Marks the start of a database read (call before sending the query).
    pub fn begin_read(&self, at: Instant) -> ReadStart {
        ReadStart {
            at,
            invalidations: self.invalidations,
        }
    }

    /// Keeps what a read that started at `read` found, unless something was invalidated
    /// meanwhile.
    pub fn record(&mut self, id: Uuid, answer: Answer, read: ReadStart, now: Instant) {
        if read.invalidations != self.invalidations {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.purge(now);
        }
        if answer.is_some() || self.entries.len() < MAX_ENTRIES {
            self.entries.insert(id, Entry { answer, read });
        }
    }

    /// The credentials last read for `id`, if read less than [`STALE_FALLBACK`] before `now`
    /// and not invalidated since: the stand-in while PostgreSQL is unreachable.
    pub fn last_known(&self, id: Uuid, now: Instant) -> Option<&WebhookCredentials> {
        let entry = self.entries.get(&id)?;
        let recent = now.saturating_duration_since(entry.read.at) < STALE_FALLBACK;
        entry.answer.as_ref().filter(|_| recent)
    }

    /// Integration `id` changed: forget it.
    pub fn invalidate(&mut self, id: Uuid) {
        self.invalidations += 1;
        self.entries.remove(&id);
    }

    /// Anything may have changed: serve nothing read before now (still the outage
    /// fallback: those answers are old, not known to be wrong).
    pub fn invalidate_all(&mut self) {
        self.invalidations += 1;
        if self.listening_since.is_some() {
            self.listening_since = Some(self.invalidations);
        }
    }

    /// The listener is connected (again): changes from now on are heard.
    pub fn listening(&mut self) {
        self.invalidations += 1;
        self.listening_since = Some(self.invalidations);
    }

    /// The listener is gone: serve nothing until it is back.
    pub fn deaf(&mut self) {
        self.invalidations += 1;
        self.listening_since = None;
    }

    /// Whether the listener is connected.
    pub fn is_listening(&self) -> bool {
        self.listening_since.is_some()
    }

    /// Drops what can no longer be served nor stand in; at most once per [`CACHE_TTL`], so
    /// a flood of made-up ids costs no more than one pass over the map per period.
    fn purge(&mut self, now: Instant) {
        if self
            .last_purge
            .is_some_and(|at| now.saturating_duration_since(at) < CACHE_TTL)
        {
            return;
        }
        self.last_purge = Some(now);
        self.entries.retain(|_, entry| {
            let age = now.saturating_duration_since(entry.read.at);
            age < CACHE_TTL || (entry.answer.is_some() && age < STALE_FALLBACK)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(byte: u8) -> Answer {
        Some(WebhookCredentials {
            token_sha256: vec![byte; 32],
        })
    }

    /// A listening cache holding `answer` for `id`, read at `at`.
    fn holding(id: Uuid, answer: Answer, at: Instant) -> CredentialCache {
        let mut cache = CredentialCache::default();
        cache.listening();
        let read = cache.begin_read(at);
        cache.record(id, answer, read, at);
        cache
    }

    #[test]
    fn an_answer_is_served_until_the_ttl_after_its_read_started() {
        let (id, t0) = (Uuid::new_v4(), Instant::now());
        let cache = holding(id, credentials(1), t0);
        assert_eq!(cache.fresh(id, t0), Some(&credentials(1)));
        let just_before = t0 + CACHE_TTL - Duration::from_millis(1);
        assert_eq!(cache.fresh(id, just_before), Some(&credentials(1)));
        assert_eq!(cache.fresh(id, t0 + CACHE_TTL), None);
        assert!(CACHE_TTL < Duration::from_secs(1), "the documented bound");
    }

    #[test]
    fn unknown_integrations_are_cached_too() {
        let (id, t0) = (Uuid::new_v4(), Instant::now());
        let cache = holding(id, None, t0);
        assert_eq!(cache.fresh(id, t0), Some(&None));
        assert_eq!(cache.last_known(id, t0), None, "no credentials to stand in");
    }

    #[test]
    fn nothing_is_served_while_the_listener_is_not_connected() {
        let (id, t0) = (Uuid::new_v4(), Instant::now());
        let mut never = CredentialCache::default();
        let read = never.begin_read(t0);
        never.record(id, credentials(1), read, t0);
        assert_eq!(never.fresh(id, t0), None, "not connected yet");

        let mut cache = holding(id, credentials(1), t0);
        cache.deaf();
        assert_eq!(cache.fresh(id, t0), None, "disconnected");
        cache.listening();
        assert_eq!(
            cache.fresh(id, t0),
            None,
            "read before the reconnect: its announcement may be lost"
        );
        assert_eq!(
            cache.last_known(id, t0),
            Some(&WebhookCredentials {
                token_sha256: vec![1; 32]
            })
        );
    }

    #[test]
    fn an_invalidated_integration_is_forgotten_even_as_a_fallback() {
        let (id, other, t0) = (Uuid::new_v4(), Uuid::new_v4(), Instant::now());
        let mut cache = holding(id, credentials(1), t0);
        let read = cache.begin_read(t0);
        cache.record(other, credentials(2), read, t0);
        cache.invalidate(id);
        assert_eq!(cache.fresh(id, t0), None);
        assert_eq!(cache.last_known(id, t0), None);
        assert_eq!(cache.fresh(other, t0), Some(&credentials(2)));
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_kept() {
        let (id, t0) = (Uuid::new_v4(), Instant::now());
        let mut cache = CredentialCache::default();
        cache.listening();
        let read = cache.begin_read(t0);
        // The change commits and is heard while the (old) row is on its way.
        cache.invalidate(id);
        cache.record(id, credentials(1), read, t0);
        assert_eq!(cache.fresh(id, t0), None);
        assert_eq!(cache.last_known(id, t0), None);
    }

    #[test]
    fn an_unreadable_announcement_stops_serving_everything_read_before_it() {
        let (id, t0) = (Uuid::new_v4(), Instant::now());
        let mut cache = holding(id, credentials(1), t0);
        cache.invalidate_all();
        assert_eq!(cache.fresh(id, t0), None);
        assert!(cache.is_listening());
        let read = cache.begin_read(t0);
        cache.record(id, credentials(3), read, t0);
        assert_eq!(cache.fresh(id, t0), Some(&credentials(3)));
    }

    #[test]
    fn last_known_credentials_stand_in_for_five_minutes() {
        let (id, t0) = (Uuid::new_v4(), Instant::now());
        let cache = holding(id, credentials(1), t0);
        let expected = WebhookCredentials {
            token_sha256: vec![1; 32],
        };
        let almost = t0 + STALE_FALLBACK - Duration::from_millis(1);
        assert_eq!(cache.last_known(id, almost), Some(&expected));
        assert_eq!(cache.last_known(id, t0 + STALE_FALLBACK), None);
    }

    #[test]
    fn made_up_ids_cannot_grow_the_cache_without_bound() {
        let t0 = Instant::now();
        let mut cache = CredentialCache::default();
        cache.listening();
        for _ in 0..MAX_ENTRIES + 100 {
            let read = cache.begin_read(t0);
            cache.record(Uuid::new_v4(), None, read, t0);
        }
        assert_eq!(cache.entries.len(), MAX_ENTRIES);
        // Credentials are always kept (they exist only for real integrations) ...
        let (known, read) = (Uuid::new_v4(), cache.begin_read(t0));
        cache.record(known, credentials(1), read, t0);
        assert_eq!(cache.fresh(known, t0), Some(&credentials(1)));
        // ... and once the negative answers expire, they are purged to make room.
        let later = t0 + CACHE_TTL;
        let (id, read) = (Uuid::new_v4(), cache.begin_read(later));
        cache.record(id, None, read, later);
        assert_eq!(cache.fresh(id, later), Some(&None));
        assert_eq!(cache.entries.len(), 2);
    }
}
