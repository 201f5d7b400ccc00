//! outbound: delivers agent replies to Chatra, exactly once as the visitor sees it, and the
//! staff notifications rules ask for to Slack and Telegram (see `docs/services/outbound.md`).
//!
//! - **Intake** ([`intake`]): a JetStream consumer on case events writes one ledger row per
//!   `ReplyRequested` and per Slack/Telegram `NotificationRequested` (unique per message or
//!   notification, so redelivery adds nothing) and acknowledges at once: no JetStream
//!   message ever waits on a peer.
//! - **Delivery** (`claims`, `deliver`): workers claim due rows of one kind, one case's
//!   replies in order, each in a task of its own, paced per integration ([`rate_limit`]);
//!   a reply's outcome is recorded on the case and the row settled in one transaction.
//! - **Notifications** ([`notify`]): the same claim loop for `slack_notification` and
//!   `telegram_notification` rows, paced per destination; retried unless certainly refused.
//!   Sent or failed, the outcome is recorded on the case (`NotificationDelivered`,
//!   `NotificationFailed`) in the transaction that settles the row.
//! - **Policy** ([`policy`]): what certainly did not reach Chatra (not sent, 429, 503) is
//!   retried with capped exponential backoff and jitter (429 waits exactly `Retry-After`) for
//!   the retry window ([`RETRY_WINDOW_VAR`], a day by default), so an outage only delays a
//!   reply; other 4xx fail; a 500, 502, 504 or a timeout after the request left is `unknown`
//!   and never re-sent: the echo webhook settles it as sent, or after
//!   [`OutboundConfig::unknown_deadline`] it fails (`sweep`).

mod claims;
mod deliver;
pub mod intake;
mod metrics;
pub mod notify;
pub mod policy;
pub mod rate_limit;
mod startup;
mod sweep;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use deskie_config::Settings;

pub use intake::{CHATRA_REPLY, reply_intent_key};
pub use metrics::OutboundMetrics;
pub use notify::{
    DEFAULT_TELEGRAM_API_URL, SLACK_NOTIFICATION, TELEGRAM_NOTIFICATION, notification_intent_key,
};
pub use policy::RetryPolicy;
pub use rate_limit::RateLimit;
pub use startup::{Application, OutboundStartError};

/// Consumer and inbox name.
pub const SERVICE: &str = "outbound";

/// Where the `deskie-outbound` binary serves `/healthz`, `/readyz` and `/metrics`.
pub const ADDR_VAR: &str = "DESKIE_OUTBOUND_ADDR";
/// The default of [`ADDR_VAR`].
pub const DEFAULT_ADDR: &str = "127.0.0.1:8083";
/// Replies per second allowed to one Chatra account (also the burst).
pub const RATE_VAR: &str = "DESKIE_OUTBOUND_RATE_PER_SECOND";
/// Seconds an `unknown` reply waits for Chatra's echo before it becomes `failed`.
pub const UNKNOWN_DEADLINE_VAR: &str = "DESKIE_OUTBOUND_UNKNOWN_DEADLINE_SECS";
/// Seconds a claimed reply stays exclusive to its worker (see [`OutboundConfig::lease`]).
pub const LEASE_VAR: &str = "DESKIE_OUTBOUND_LEASE_SECS";
/// Seconds after its first attempt that a reply or staff notification which certainly did not
/// arrive is still retried (see [`RetryPolicy::window`]).
pub const RETRY_WINDOW_VAR: &str = "DESKIE_OUTBOUND_RETRY_WINDOW_SECS";

/// outbound's configuration.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Our `receivedFrom` tag (`DESKIE_CHATRA_RECEIVED_FROM`).
    pub received_from: String,
    /// Replies in flight at once (each in its own task).
    pub concurrency: usize,
    /// How long a claim is exclusive, and so how long a reply whose worker died waits
    /// before the next claim records it `unknown`. Keep it above the HTTP client's timeout
    /// (15 s): a call still running when its lease ends is recorded `unknown` by the next
    /// claim (never sent twice: the late answer is fenced off), not `sent`.
    pub lease: Duration,
    /// How long an `unknown` reply waits for its echo.
    pub unknown_deadline: Duration,
    /// Retries of what certainly did not arrive (for `retry.window` from the first attempt:
    /// `DESKIE_OUTBOUND_RETRY_WINDOW_SECS`).
    pub retry: RetryPolicy,
    /// Pace per Chatra account.
    pub rate: RateLimit,
    /// Telegram's Bot API base URL (`DESKIE_TELEGRAM_API_URL`).
    pub telegram_api_url: String,
    /// Pace per notification destination: a Slack webhook, a Telegram bot's chat (1/s).
    pub notification_rate: RateLimit,
    /// Retries of staff notifications (the same window as replies' unless set apart here).
    pub notification_retry: RetryPolicy,
    /// How often the ledger is looked at when nothing woke the workers (another instance's
    /// intake, retries coming due, the deadline sweep).
    pub poll_interval: Duration,
    /// Address of the HTTP endpoints; `None` serves none (as in `deskie run`).
    pub http_addr: Option<SocketAddr>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            received_from: "deskie".into(),
            concurrency: 64,
            lease: Duration::from_secs(60),
            unknown_deadline: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            rate: RateLimit::default(),
            telegram_api_url: DEFAULT_TELEGRAM_API_URL.to_owned(),
            notification_rate: RateLimit::paced(NonZeroU32::MIN),
            notification_retry: RetryPolicy::default(),
            poll_interval: claims::DEFAULT_POLL_INTERVAL,
            http_addr: None,
        }
    }
}

/// A malformed variable, named.
#[derive(Debug, thiserror::Error)]
#[error("{var} is invalid: {reason}")]
pub struct ConfigError {
    /// The variable.
    pub var: &'static str,
    /// Why.
    pub reason: String,
}

impl From<deskie_config::ConfigError> for ConfigError {
    fn from(error: deskie_config::ConfigError) -> Self {
        match error {
            deskie_config::ConfigError::Invalid { var, reason } => Self { var, reason },
            deskie_config::ConfigError::Missing { var, reason } => Self {
                var,
                reason: reason.to_owned(),
            },
        }
    }
}

impl OutboundConfig {
    /// The defaults with the shared `settings` outbound uses (`DESKIE_CHATRA_RECEIVED_FROM`,
    /// `DESKIE_TELEGRAM_API_URL`, read and checked once, there) and outbound's own variables
    /// read through `lookup`.
    pub fn from_lookup(
        settings: &Settings,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let read = |var| lookup(var).filter(|v: &String| !v.trim().is_empty());
        let mut config = Self {
            received_from: settings.chatra_received_from.clone(),
            telegram_api_url: settings.telegram_api_url.clone(),
            ..Self::default()
        };
        config.http_addr = Some(deskie_config::addr_var(&lookup, ADDR_VAR, DEFAULT_ADDR)?);
        if let Some(raw) = read(RATE_VAR) {
            let rate = raw.trim().parse::<NonZeroU32>().map_err(|e| ConfigError {
                var: RATE_VAR,
                reason: format!("{e} (expected a whole number of replies per second ≥ 1)"),
            })?;
            config.rate = RateLimit {
                per_second: rate,
                burst: rate,
            };
        }
        if let Some(raw) = read(UNKNOWN_DEADLINE_VAR) {
            config.unknown_deadline = seconds(UNKNOWN_DEADLINE_VAR, &raw, 0)?;
        }
        if let Some(raw) = read(LEASE_VAR) {
            config.lease = seconds(LEASE_VAR, &raw, 1)?;
        }
        if let Some(raw) = read(RETRY_WINDOW_VAR) {
            let window = seconds(RETRY_WINDOW_VAR, &raw, 0)?;
            config.retry.window = window;
            config.notification_retry.window = window;
        }
        Ok(config)
    }
}

/// Whole seconds, at least `min`.
fn seconds(var: &'static str, raw: &str, min: u64) -> Result<Duration, ConfigError> {
    match raw.trim().parse::<u64>() {
        Ok(secs) if secs >= min => Ok(Duration::from_secs(secs)),
        Ok(_) => Err(ConfigError {
            var,
            reason: format!("must be at least {min} s"),
        }),
        Err(e) => Err(ConfigError {
            var,
            reason: format!("{e} (expected whole seconds)"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values_are_named() {
        let settings = |var: &'static str, value: &'static str| {
            Settings::from_lookup(move |v| (v == var).then(|| value.to_owned())).expect("settings")
        };
        let defaults = settings("DESKIE_CHATRA_RECEIVED_FROM", "tag");
        let config = OutboundConfig::from_lookup(&defaults, |_| None).expect("defaults");
        assert_eq!(config.received_from, "tag");
        assert_eq!(config.http_addr, DEFAULT_ADDR.parse().ok());
        assert_eq!(config.rate, RateLimit::default());
        assert_eq!(config.unknown_deadline, Duration::from_secs(600));
        assert_eq!(config.retry.window, Duration::from_secs(24 * 3600));
        assert_eq!(config.notification_retry.window, config.retry.window);
        assert_eq!(config.telegram_api_url, "https://api.telegram.org");
        assert_eq!(config.notification_rate.per_second.get(), 1);

        let set = |var: &'static str, value: &'static str| {
            OutboundConfig::from_lookup(&defaults, move |v| (v == var).then(|| value.to_owned()))
        };
        let config = set(RATE_VAR, "3").expect("rate");
        assert_eq!(config.rate.per_second.get(), 3);
        assert_eq!(
            set(LEASE_VAR, "20").expect("lease").lease,
            Duration::from_secs(20)
        );
        assert_eq!(
            set(UNKNOWN_DEADLINE_VAR, "30")
                .expect("deadline")
                .unknown_deadline,
            Duration::from_secs(30)
        );
        let window = set(RETRY_WINDOW_VAR, "3600").expect("window");
        assert_eq!(window.retry.window, Duration::from_secs(3600));
        assert_eq!(window.notification_retry.window, Duration::from_secs(3600));
        let telegram = settings("DESKIE_TELEGRAM_API_URL", "http://127.0.0.1:9/");
        assert_eq!(
            OutboundConfig::from_lookup(&telegram, |_| None)
                .expect("telegram")
                .telegram_api_url,
            "http://127.0.0.1:9"
        );
        for (var, value) in [
            (RATE_VAR, "0"),
            (RATE_VAR, "fast"),
            (UNKNOWN_DEADLINE_VAR, "-1"),
            (LEASE_VAR, "0"),
            (LEASE_VAR, "1.5"),
            (RETRY_WINDOW_VAR, "1d"),
            (RETRY_WINDOW_VAR, "-5"),
            (ADDR_VAR, "nowhere"),
        ] {
            let error = set(var, value).expect_err(value);
            assert!(error.to_string().starts_with(var), "{error}");
        }
    }
}
