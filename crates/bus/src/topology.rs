//! Stream, subject and consumer names: the one place they are decided.

use std::time::Duration;

use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};
pub use deskie_config::StreamLimits;

/// Number of partitions case events are spread over (`{prefix}.events.case.{p}.…`).
/// Never change it without draining every consumer first (`reference/scale-out.md` §1.9).
pub const EVENT_PARTITIONS: u32 = 16;

/// The partition of a stream key: FNV-1a 32-bit modulo [`EVENT_PARTITIONS`], the same
/// hash NATS uses for its `partition()` subject transform.
pub fn partition_of(stream_id: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in stream_id.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % EVENT_PARTITIONS
}

/// Names of everything deskie creates in NATS, all under one prefix so several deployments
/// (and parallel tests) share a server without touching each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
    limits: StreamLimits,
}

/// A prefix with the default limits (tests; binaries use [`Topology::configured`]).
impl From<&str> for Topology {
    fn from(prefix: &str) -> Self {
        Self::new(prefix)
    }
}

impl Topology {
    /// Names under `prefix` (already validated by the config crate), with the default
    /// [`StreamLimits`].
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            limits: StreamLimits::default(),
        }
    }

    /// The deployment's topology: `DESKIE_NATS_PREFIX` with the configured stream limits.
    pub fn configured(settings: &deskie_config::Settings) -> Self {
        Self::new(settings.nats_prefix.as_str()).with_limits(settings.streams)
    }

    /// The same names with the streams bounded by `limits` (from the settings). Every
    /// process that provisions must use the same limits: provisioning updates the streams.
    pub fn with_limits(mut self, limits: StreamLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The streams' limits.
    pub fn limits(&self) -> &StreamLimits {
        &self.limits
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Stream of accepted Chatra webhooks.
    pub fn webhooks_stream(&self) -> String {
        format!("{}_webhooks", self.prefix)
    }

    /// Subject of one accepted webhook.
    pub fn webhook_subject(&self, integration_id: &str, event_name: &str) -> String {
        format!(
            "{}.webhooks.chatra.{integration_id}.{event_name}",
            self.prefix
        )
    }

    /// Subject filter for every webhook.
    pub fn all_webhooks(&self) -> String {
        format!("{}.webhooks.>", self.prefix)
    }

    /// Stream the relay publishes committed events into.
    pub fn events_stream(&self) -> String {
        format!("{}_events", self.prefix)
    }

    /// Subject of one relayed event.
    pub fn event_subject(&self, stream_type: &str, stream_id: &str, event_type: &str) -> String {
        format!(
            "{}.events.{stream_type}.{:02}.{stream_id}.{event_type}",
            self.prefix,
            partition_of(stream_id)
        )
    }

    /// The stream id in a subject made by [`Topology::event_subject`] (for a consumer's
    /// lane without decoding the payload); `None` for any other subject.
    pub fn stream_id_of_event_subject<'s>(&self, subject: &'s str) -> Option<&'s str> {
        let rest = subject
            .strip_prefix(&self.prefix)?
            .strip_prefix(".events.")?;
        let mut tokens = rest.split('.');
        let (_stream_type, _partition) = (tokens.next()?, tokens.next()?);
        let (stream_id, _event_type) = (tokens.next()?, tokens.next()?);
        tokens.next().is_none().then_some(stream_id)
    }

    /// Subject filter for every event of one stream type (e.g. `case`).
    pub fn events_of_type(&self, stream_type: &str) -> String {
        format!("{}.events.{stream_type}.>", self.prefix)
    }

    /// Subject filter for every relayed event.
    pub fn all_events(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// Stream of dead letters.
    pub fn dead_letter_stream(&self) -> String {
        format!("{}_dead_letters", self.prefix)
    }

    /// Subject of a dead letter from `consumer`.
    pub fn dead_letter_subject(&self, consumer: &str) -> String {
        format!("{}.dead_letters.{consumer}", self.prefix)
    }

    /// Durable consumer name for a service's consumer (`{prefix}_{service}`).
    pub fn consumer_name(&self, service: &str) -> String {
        format!("{}_{service}", self.prefix)
    }

    /// Every stream deskie needs, with its configuration.
    ///
    /// All are file-backed with `discard: new`: when a stream is full, publishing fails
    /// (ingest answers 503 and the sender retries; the relay backs off) instead of old
    /// messages being deleted. Messages older than the stream's max age expire; the byte
    /// limits and ages come from [`StreamLimits`].
    pub fn stream_configs(&self) -> Vec<Config> {
        let limits = &self.limits;
        let base = |name: String,
                    subjects: Vec<String>,
                    max_age: Duration,
                    max_bytes: i64,
                    dup: Duration| Config {
            name,
            subjects,
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::New,
            max_age,
            max_bytes,
            duplicate_window: dup,
            num_replicas: 1,
            deny_delete: true,
            ..Default::default()
        };
        vec![
            Config {
                // 1 MiB bodies plus the envelope around them (never above the stream's
                // own byte limit, which the server refuses).
                max_message_size: i32::try_from(limits.webhooks_max_bytes)
                    .map_or(1_200_000, |bytes| bytes.min(1_200_000)),
                description: Some("Chatra webhooks, durably accepted by ingest".into()),
                ..base(
                    self.webhooks_stream(),
                    vec![self.all_webhooks()],
                    limits.webhooks_max_age,
                    limits.webhooks_max_bytes,
                    Duration::from_secs(10 * 60),
                )
            },
            Config {
                description: Some(
                    "Committed events relayed from the PostgreSQL event store".into(),
                ),
                ..base(
                    self.events_stream(),
                    vec![self.all_events()],
                    limits.events_max_age,
                    limits.events_max_bytes,
                    Duration::from_secs(10 * 60),
                )
            },
            Config {
                description: Some("Messages a consumer gave up on, with the reason".into()),
                // Kept until an operator redrives or discards them: never expired (0).
                ..base(
                    self.dead_letter_stream(),
                    vec![format!("{}.dead_letters.>", self.prefix)],
                    Duration::ZERO,
                    limits.dead_letters_max_bytes,
                    Duration::from_secs(10 * 60),
                )
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_fnv1a_reference_values() {
        // FNV-1a 32 of "" is 0x811c9dc5, of "a" is 0xe40c292c.
        assert_eq!(partition_of(""), 0x811c_9dc5 % 16);
        assert_eq!(partition_of("a"), 0xe40c_292c % 16);
    }

    #[test]
    fn every_name_carries_the_prefix() {
        let t = Topology::new("acme");
        for config in t.stream_configs() {
            assert!(config.name.starts_with("acme_"));
            assert!(config.subjects.iter().all(|s| s.starts_with("acme.")));
            assert_eq!(config.discard, DiscardPolicy::New);
            assert_eq!(config.storage, StorageType::File);
        }
        let dead_letters = t
            .stream_configs()
            .into_iter()
            .find(|c| c.name == t.dead_letter_stream())
            .map(|c| c.max_age);
        assert_eq!(
            dead_letters,
            Some(Duration::ZERO),
            "dead letters never expire"
        );
        let limits = StreamLimits {
            webhooks_max_bytes: 10 << 20,
            webhooks_max_age: Duration::from_secs(60),
            events_max_bytes: 20 << 20,
            events_max_age: Duration::from_secs(120),
            dead_letters_max_bytes: 30 << 20,
        };
        let bounded = Topology::new("acme").with_limits(limits);
        let by_name = |name: String| {
            bounded
                .stream_configs()
                .into_iter()
                .find(|c| c.name == name)
                .map(|c| (c.max_bytes, c.max_age))
        };
        assert_eq!(
            by_name(bounded.webhooks_stream()),
            Some((10 << 20, Duration::from_secs(60)))
        );
        assert_eq!(
            by_name(bounded.events_stream()),
            Some((20 << 20, Duration::from_secs(120)))
        );
        assert_eq!(
            by_name(bounded.dead_letter_stream()),
            Some((30 << 20, Duration::ZERO))
        );
        assert!(
            t.webhook_subject("i", "chatStarted")
                .starts_with("acme.webhooks.")
        );
        assert!(
            t.event_subject("case", "c", "case_opened")
                .starts_with("acme.events.case.")
        );
        let subject = t.event_subject("case", "0191d2a4", "case_opened");
        assert_eq!(t.stream_id_of_event_subject(&subject), Some("0191d2a4"));
        for other in [
            "acme.events.case.07.x",
            "other.events.case.07.x.y",
            "acme.webhooks.a.b.c.d",
        ] {
            assert_eq!(t.stream_id_of_event_subject(other), None, "{other}");
        }
    }
}
