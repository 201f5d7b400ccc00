//! Bounded growth: how much the JetStream streams hold, and how long the PostgreSQL
//! bookkeeping tables keep settled rows (`docs/operations.md`).

use std::time::Duration;

use crate::ConfigError;
use crate::settings::seconds_var;

const DAY: u64 = 24 * 60 * 60;
const MIB: i64 = 1024 * 1024;
const GIB: i64 = 1024 * MIB;

/// Byte and age limits of the streams (`DESKIE_NATS_*_MAX_BYTES`, `DESKIE_NATS_*_MAX_AGE_SECS`).
///
/// The streams are a transport window: PostgreSQL is the system of record, consumers of
/// case events fill gaps from the event store and `deskie replay` rebuilds every read model
/// from it. A stream at its byte limit refuses new messages (`discard: new`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// `DESKIE_NATS_WEBHOOKS_MAX_BYTES` (default 2 GiB).
    pub webhooks_max_bytes: i64,
    /// `DESKIE_NATS_WEBHOOKS_MAX_AGE_SECS` (default 7 days).
    pub webhooks_max_age: Duration,
    /// `DESKIE_NATS_EVENTS_MAX_BYTES` (default 4 GiB).
    pub events_max_bytes: i64,
    /// `DESKIE_NATS_EVENTS_MAX_AGE_SECS` (default 7 days).
    pub events_max_age: Duration,
    /// `DESKIE_NATS_DEAD_LETTERS_MAX_BYTES` (default 1 GiB). Dead letters never expire.
    pub dead_letters_max_bytes: i64,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            webhooks_max_bytes: 2 * GIB,
            webhooks_max_age: Duration::from_secs(7 * DAY),
            events_max_bytes: 4 * GIB,
            events_max_age: Duration::from_secs(7 * DAY),
            dead_letters_max_bytes: GIB,
        }
    }
}

/// How long settled rows of the bookkeeping tables are kept before the retention job
/// deletes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `DESKIE_INBOX_RETENTION_SECS` (default 14 days): the redelivery horizon. Must be
    /// longer than both streams' max age, so a redelivered message still finds its row.
    pub inbox: Duration,
    /// `DESKIE_OUTBOX_RETENTION_SECS` (default 30 days): `sent` and `failed` outbox rows,
    /// and settled `agent_sync_client_updates` rows.
    pub outbox: Duration,
    /// `DESKIE_VISITOR_FETCH_RETENTION_SECS` (default 30 days): `done` and `failed` rows of
    /// `agent_sync_visitor_fetches`.
    pub visitor_fetches: Duration,
    /// `DESKIE_RETENTION_INTERVAL_SECS` (default 1 hour): how often the job runs.
    pub interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            inbox: Duration::from_secs(14 * DAY),
            outbox: Duration::from_secs(30 * DAY),
            visitor_fetches: Duration::from_secs(30 * DAY),
            interval: Duration::from_secs(60 * 60),
        }
    }
}

/// The smallest byte limit a stream may be given: a full-size webhook (1 MiB body plus its
/// wrapper) and then some must fit.
pub const MIN_STREAM_BYTES: i64 = 8 * MIB;

impl StreamLimits {
    /// Reads the limits through `lookup`; unset or blank variables keep their defaults.
    pub(crate) fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            webhooks_max_bytes: bytes_var(
                lookup,
                "DESKIE_NATS_WEBHOOKS_MAX_BYTES",
                defaults.webhooks_max_bytes,
            )?,
            webhooks_max_age: seconds_var(
                lookup,
                "DESKIE_NATS_WEBHOOKS_MAX_AGE_SECS",
                defaults.webhooks_max_age,
            )?,
            events_max_bytes: bytes_var(
                lookup,
                "DESKIE_NATS_EVENTS_MAX_BYTES",
                defaults.events_max_bytes,
            )?,
            events_max_age: seconds_var(
                lookup,
                "DESKIE_NATS_EVENTS_MAX_AGE_SECS",
                defaults.events_max_age,
            )?,
            dead_letters_max_bytes: bytes_var(
                lookup,
                "DESKIE_NATS_DEAD_LETTERS_MAX_BYTES",
                defaults.dead_letters_max_bytes,
            )?,
        })
    }
}

impl Retention {
    /// Reads the retentions through `lookup` and checks the inbox's against `streams`: a
    /// message JetStream may still redeliver must find its inbox row.
    pub(crate) fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
        streams: &StreamLimits,
    ) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let retention = Self {
            inbox: seconds_var(lookup, "DESKIE_INBOX_RETENTION_SECS", defaults.inbox)?,
            outbox: seconds_var(lookup, "DESKIE_OUTBOX_RETENTION_SECS", defaults.outbox)?,
            visitor_fetches: seconds_var(
                lookup,
                "DESKIE_VISITOR_FETCH_RETENTION_SECS",
                defaults.visitor_fetches,
            )?,
            interval: seconds_var(lookup, "DESKIE_RETENTION_INTERVAL_SECS", defaults.interval)?,
        };
        for (var, max_age) in [
            (
                "DESKIE_NATS_WEBHOOKS_MAX_AGE_SECS",
                streams.webhooks_max_age,
            ),
            ("DESKIE_NATS_EVENTS_MAX_AGE_SECS", streams.events_max_age),
        ] {
            if retention.inbox <= max_age {
                return Err(ConfigError::Invalid {
                    var: "DESKIE_INBOX_RETENTION_SECS",
                    reason: format!(
                        "{} s is not longer than {var} ({} s): a message the stream still \
                         holds could be redelivered after its inbox row was pruned and be \
                         handled twice; raise DESKIE_INBOX_RETENTION_SECS or lower {var}",
                        retention.inbox.as_secs(),
                        max_age.as_secs()
                    ),
                });
            }
        }
        Ok(retention)
    }
}

/// A byte size: a whole number of bytes, or one followed by `KiB`, `MiB` or `GiB`
/// (`512MiB`, `2GiB`); at least [`MIN_STREAM_BYTES`]. Unset or blank is `default`.
fn bytes_var(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: i64,
) -> Result<i64, ConfigError> {
    let Some(value) = lookup(var).map(|v| v.trim().to_owned()) else {
        return Ok(default);
    };
    if value.is_empty() {
        return Ok(default);
    }
    let (digits, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => value.split_at(at),
        None => (value.as_str(), ""),
    };
    let multiplier = match unit.trim() {
        "" | "B" => Some(1),
        "KiB" => Some(1024),
        "MiB" => Some(MIB),
        "GiB" => Some(GIB),
        _ => None,
    };
    let bytes = multiplier
        .zip(digits.parse::<i64>().ok())
        .and_then(|(multiplier, n)| n.checked_mul(multiplier));
    match bytes {
        Some(bytes) if bytes >= MIN_STREAM_BYTES => Ok(bytes),
        _ => Err(ConfigError::Invalid {
            var,
            reason: format!(
                "must be a size of at least 8MiB: bytes, or a whole number followed by KiB, \
                 MiB or GiB (e.g. 2GiB); the minimum is {MIN_STREAM_BYTES} bytes"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn sizes_take_bytes_or_binary_units() {
        for (value, bytes) in [
            ("2GiB", 2 * GIB),
            (" 512MiB ", 512 * MIB),
            ("8388608", 8 * MIB),
            ("16384 KiB", 16 * MIB),
        ] {
            let got = bytes_var(&lookup(&[("V", value)]), "V", 1);
            assert_eq!(got.expect(value), bytes, "{value}");
        }
        for bad in ["1MiB", "2GB", "-5", "lots", "9999999999999GiB"] {
            let error = bytes_var(&lookup(&[("V", bad)]), "V", 1).expect_err(bad);
            assert!(error.to_string().starts_with("V is invalid"), "{error}");
        }
        assert_eq!(bytes_var(&lookup(&[]), "V", 7).expect("default"), 7);
    }

    #[test]
    fn the_defaults_keep_a_week_of_each_stream_and_two_of_the_inbox() {
        let streams = StreamLimits::from_lookup(&lookup(&[])).expect("defaults");
        assert_eq!(streams, StreamLimits::default());
        assert_eq!(streams.webhooks_max_age, Duration::from_secs(7 * DAY));
        let retention = Retention::from_lookup(&lookup(&[]), &streams).expect("defaults");
        assert_eq!(retention, Retention::default());
        assert!(retention.inbox > streams.webhooks_max_age);
        assert!(retention.inbox > streams.events_max_age);
    }

    #[test]
    fn an_inbox_retention_not_longer_than_a_stream_window_is_refused_naming_both() {
        for (set, other) in [
            (
                ("DESKIE_NATS_WEBHOOKS_MAX_AGE_SECS", "1209600"),
                "DESKIE_NATS_WEBHOOKS_MAX_AGE_SECS",
            ),
            (
                ("DESKIE_NATS_EVENTS_MAX_AGE_SECS", "2000000"),
                "DESKIE_NATS_EVENTS_MAX_AGE_SECS",
            ),
        ] {
            let vars = lookup(&[set]);
            let streams = StreamLimits::from_lookup(&vars).expect("streams");
            let error = Retention::from_lookup(&vars, &streams)
                .expect_err("refused")
                .to_string();
            assert!(
                error.starts_with("DESKIE_INBOX_RETENTION_SECS is invalid"),
                "{error}"
            );
            assert!(error.contains(other), "{error}");
        }
        let vars = lookup(&[
            ("DESKIE_INBOX_RETENTION_SECS", "3600"),
            ("DESKIE_NATS_WEBHOOKS_MAX_AGE_SECS", "600"),
            ("DESKIE_NATS_EVENTS_MAX_AGE_SECS", "3599"),
        ]);
        let streams = StreamLimits::from_lookup(&vars).expect("streams");
        let retention = Retention::from_lookup(&vars, &streams).expect("longer is fine");
        assert_eq!(retention.inbox, Duration::from_secs(3600));
    }
}
