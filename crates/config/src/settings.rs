//! The environment variables and their defaults.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::{Cipher, Retention, StreamLimits, addr_var};

/// A variable that is missing or malformed, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The variable is set but its value cannot be used.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// What is wrong with it (never the value itself when it is a secret).
        reason: String,
    },
    /// The variable has no default and must be set.
    #[error("{var} must be set: {reason}")]
    Missing {
        /// The variable's name.
        var: &'static str,
        /// What it is for.
        reason: &'static str,
    },
}

/// Every setting a deskie service may need; each binary uses the parts it needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DESKIE_DATABASE_URL`.
    pub database_url: String,
    /// `DESKIE_NATS_URL`.
    pub nats_url: String,
    /// `DESKIE_NATS_PREFIX`: prefix of every stream, subject and consumer name.
    pub nats_prefix: String,
    /// `DESKIE_INGEST_ADDR`.
    pub ingest_addr: SocketAddr,
    /// `DESKIE_API_ADDR`.
    pub api_addr: SocketAddr,
    /// `DESKIE_GRPC_ADDR`.
    pub grpc_addr: SocketAddr,
    /// `DESKIE_PUBLIC_URL`, without a trailing slash: base of the webhook URLs.
    pub public_url: String,
    /// `DESKIE_ADMIN_TOKEN`.
    pub admin_token: Option<SecretString>,
    /// `DESKIE_ENCRYPTION_KEY`, parsed.
    pub encryption_key: Option<Cipher>,
    /// `DESKIE_CHATRA_API_URL`, without a trailing slash.
    pub chatra_api_url: String,
    /// `DESKIE_TELEGRAM_API_URL`, without a trailing slash.
    pub telegram_api_url: String,
    /// `DESKIE_CHATRA_RECEIVED_FROM`: the `receivedFrom` tag on our messages.
    pub chatra_received_from: String,
    /// `DESKIE_CHATRA_AGENT_ONLINE_PATH`: where agent-online pings go under the API URL;
    /// `None` keeps the client's default (an assumption: `deskie_chatra::DEFAULT_AGENT_ONLINE_PATH`).
    pub chatra_agent_online_path: Option<String>,
    /// `DESKIE_CHATRA_IDLE_CONNECTION_SECS`: how long an idle connection to Chatra is reused;
    /// `None` keeps the client's default (an assumption about Chatra's keep-alive:
    /// `deskie_chatra::IDLE_CONNECTION_REUSE`).
    pub chatra_idle_connection: Option<Duration>,
    /// `DESKIE_CHATRA_KEY_CHECK_PATH`: what the key check reads under the API URL; `None` keeps
    /// the api's default (an assumption: the api's `KEY_CHECK_PATH`).
    pub chatra_key_check_path: Option<String>,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: traces are exported only when it is set.
    pub otlp_endpoint: Option<String>,
    /// `DESKIE_IDEMPOTENCY_RETENTION_SECS`: how long the api replays the answer to a request
    /// with an `Idempotency-Key` (default 24 h).
    pub idempotency_retention: Duration,
    /// Byte and age limits of the streams (`DESKIE_NATS_*_MAX_BYTES`, `…_MAX_AGE_SECS`).
    pub streams: StreamLimits,
    /// How long settled bookkeeping rows are kept (`DESKIE_*_RETENTION_SECS`).
    pub retention: Retention,
}

/// Default of `DESKIE_IDEMPOTENCY_RETENTION_SECS`: 24 hours, as Stripe keeps keys.
pub const DEFAULT_IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |var: &str, default: &str| {
            lookup(var)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let secret = |var: &str| {
            lookup(var)
                .filter(|v| !v.trim().is_empty())
                .map(SecretString::from)
        };
        let admin_token = secret("DESKIE_ADMIN_TOKEN");
        if let Some(token) = &admin_token
            && token.expose_secret().len() < 16
        {
            return Err(ConfigError::Invalid {
                var: "DESKIE_ADMIN_TOKEN",
                reason: "must be at least 16 characters".into(),
            });
        }
        let encryption_key = secret("DESKIE_ENCRYPTION_KEY")
            .map(|key| Cipher::from_encoded_key(key.expose_secret()))
            .transpose()
            .map_err(|e| ConfigError::Invalid {
                var: "DESKIE_ENCRYPTION_KEY",
                reason: e.to_string(),
            })?;
        let streams = StreamLimits::from_lookup(&lookup)?;
        let retention = Retention::from_lookup(&lookup, &streams)?;
        Ok(Self {
            database_url: url_var(
                "DESKIE_DATABASE_URL",
                get(
                    "DESKIE_DATABASE_URL",
                    "postgres://postgres@127.0.0.1:5432/deskie",
                ),
                &["postgres", "postgresql"],
            )?,
            nats_url: url_var(
                "DESKIE_NATS_URL",
                get("DESKIE_NATS_URL", "nats://127.0.0.1:4222"),
                &["nats", "tls", "ws", "wss"],
            )?,
            nats_prefix: prefix_var(get("DESKIE_NATS_PREFIX", "deskie"))?,
            ingest_addr: addr_var(&lookup, "DESKIE_INGEST_ADDR", "127.0.0.1:8080")?,
            api_addr: addr_var(&lookup, "DESKIE_API_ADDR", "127.0.0.1:8081")?,
            grpc_addr: addr_var(&lookup, "DESKIE_GRPC_ADDR", "127.0.0.1:50051")?,
            public_url: url_var(
                "DESKIE_PUBLIC_URL",
                get("DESKIE_PUBLIC_URL", "http://127.0.0.1:8080"),
                &["http", "https"],
            )?,
            admin_token,
            encryption_key,
            chatra_api_url: url_var(
                "DESKIE_CHATRA_API_URL",
                get("DESKIE_CHATRA_API_URL", "https://app.chatra.io/api"),
                &["http", "https"],
            )?,
            telegram_api_url: url_var(
                "DESKIE_TELEGRAM_API_URL",
                get("DESKIE_TELEGRAM_API_URL", "https://api.telegram.org"),
                &["http", "https"],
            )?,
            chatra_received_from: get("DESKIE_CHATRA_RECEIVED_FROM", "deskie"),
            chatra_agent_online_path: path_var(&lookup, "DESKIE_CHATRA_AGENT_ONLINE_PATH")?,
            chatra_idle_connection: optional_seconds_var(
                &lookup,
                "DESKIE_CHATRA_IDLE_CONNECTION_SECS",
            )?,
            chatra_key_check_path: path_var(&lookup, "DESKIE_CHATRA_KEY_CHECK_PATH")?,
            otlp_endpoint: lookup("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|v| !v.trim().is_empty()),
            idempotency_retention: seconds_var(
                &lookup,
                "DESKIE_IDEMPOTENCY_RETENTION_SECS",
                DEFAULT_IDEMPOTENCY_RETENTION,
            )?,
            streams,
            retention,
        })
    }

    /// The admin token, or an error naming the variable for binaries that need it.
    pub fn require_admin_token(&self) -> Result<&SecretString, ConfigError> {
        self.admin_token.as_ref().ok_or(ConfigError::Missing {
            var: "DESKIE_ADMIN_TOKEN",
            reason: "the admin API is refused to everyone without it",
        })
    }

    /// The encryption key, or an error naming the variable for binaries that need it.
    pub fn require_cipher(&self) -> Result<&Cipher, ConfigError> {
        self.encryption_key.as_ref().ok_or(ConfigError::Missing {
            var: "DESKIE_ENCRYPTION_KEY",
            reason: "32 bytes, as 64 hex characters or base64, to encrypt secrets at rest",
        })
    }
}

fn url_var(var: &'static str, value: String, schemes: &[&str]) -> Result<String, ConfigError> {
    let parsed = url::Url::parse(&value).map_err(|e| ConfigError::Invalid {
        var,
        reason: format!("not a URL ({e})"),
    })?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(ConfigError::Invalid {
            var,
            reason: format!("scheme must be one of {}", schemes.join(", ")),
        });
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// An optional path under a base URL: `/` first, then only URL path characters, no `..`
/// segment, no query or fragment.
fn path_var(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<String>, ConfigError> {
    let Some(value) = lookup(var).map(|v| v.trim().to_owned()) else {
        return Ok(None);
    };
    if value.is_empty() {
        return Ok(None);
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/-._~%".contains(c);
    let valid = value.starts_with('/')
        && value.len() <= 200
        && value.chars().all(allowed)
        && !value
            .split('/')
            .any(|segment| segment == "." || segment == "..");
    if valid {
        Ok(Some(value))
    } else {
        Err(ConfigError::Invalid {
            var,
            reason: "must be a path such as /agentOnlinePing: a leading '/', letters, digits, \
                     '/', '-', '.', '_', '~' or '%', no '.' or '..' segment"
                .into(),
        })
    }
}

/// A positive whole number of seconds; unset or blank is `default`.
pub(crate) fn seconds_var(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(value) = lookup(var).map(|v| v.trim().to_owned()) else {
        return Ok(default);
    };
    if value.is_empty() {
        return Ok(default);
    }
    match value.parse::<u32>() {
        Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs.into())),
        _ => Err(ConfigError::Invalid {
            var,
            reason: "must be a whole number of seconds, at least 1".into(),
        }),
    }
}

/// [`seconds_var`] without a default: unset or blank is `None`.
fn optional_seconds_var(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<Duration>, ConfigError> {
    match lookup(var) {
        Some(value) if !value.trim().is_empty() => {
            seconds_var(lookup, var, Duration::ZERO).map(Some)
        }
        _ => Ok(None),
    }
}

fn prefix_var(value: String) -> Result<String, ConfigError> {
    let valid = !value.is_empty()
        && value.len() <= 32
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            var: "DESKIE_NATS_PREFIX",
            reason:
                "use 1-32 letters, digits, '_' or '-' (it becomes a subject token and stream name)"
                    .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_public_contract() {
        let s = with(&[]).expect("defaults are valid");
        assert_eq!(s.database_url, "postgres://postgres@127.0.0.1:5432/deskie");
        assert_eq!(s.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(s.nats_prefix, "deskie");
        assert_eq!(s.ingest_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.api_addr.to_string(), "127.0.0.1:8081");
        assert_eq!(s.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert_eq!(s.chatra_api_url, "https://app.chatra.io/api");
        assert_eq!(s.telegram_api_url, "https://api.telegram.org");
        assert_eq!(s.chatra_received_from, "deskie");
        assert_eq!(s.chatra_agent_online_path, None);
        assert_eq!(s.chatra_idle_connection, None);
        assert_eq!(s.chatra_key_check_path, None);
        assert_eq!(s.idempotency_retention, Duration::from_secs(86_400));
        assert!(s.admin_token.is_none() && s.encryption_key.is_none());
        assert!(s.require_admin_token().is_err());
    }

    #[test]
    fn each_bad_variable_is_named_in_the_error() {
        for (var, value) in [
            ("DESKIE_NATS_URL", "http://x"),
            ("DESKIE_DATABASE_URL", "not a url"),
            ("DESKIE_API_ADDR", "localhost"),
            ("DESKIE_NATS_PREFIX", "a.b"),
            ("DESKIE_ENCRYPTION_KEY", "short"),
            ("DESKIE_ADMIN_TOKEN", "short"),
            ("DESKIE_PUBLIC_URL", "ftp://x"),
            ("DESKIE_CHATRA_AGENT_ONLINE_PATH", "agentOnlinePing"),
            ("DESKIE_CHATRA_AGENT_ONLINE_PATH", "/a/../b"),
            ("DESKIE_CHATRA_KEY_CHECK_PATH", "/messages/x?y=1"),
            ("DESKIE_CHATRA_KEY_CHECK_PATH", "https://elsewhere/x"),
            ("DESKIE_CHATRA_IDLE_CONNECTION_SECS", "0"),
            ("DESKIE_CHATRA_IDLE_CONNECTION_SECS", "4s"),
            ("DESKIE_IDEMPOTENCY_RETENTION_SECS", "0"),
            ("DESKIE_IDEMPOTENCY_RETENTION_SECS", "1h"),
            ("DESKIE_IDEMPOTENCY_RETENTION_SECS", "-5"),
            ("DESKIE_NATS_WEBHOOKS_MAX_BYTES", "1MiB"),
            ("DESKIE_NATS_EVENTS_MAX_BYTES", "4GB"),
            ("DESKIE_NATS_DEAD_LETTERS_MAX_BYTES", "-1"),
            ("DESKIE_NATS_EVENTS_MAX_AGE_SECS", "0"),
            ("DESKIE_OUTBOX_RETENTION_SECS", "30d"),
            ("DESKIE_VISITOR_FETCH_RETENTION_SECS", "0"),
            ("DESKIE_RETENTION_INTERVAL_SECS", "x"),
            ("DESKIE_INBOX_RETENTION_SECS", "604800"),
        ] {
            let err = with(&[(var, value)]).expect_err(var).to_string();
            assert!(err.starts_with(var), "{err}");
            if var == "DESKIE_ENCRYPTION_KEY" || var == "DESKIE_ADMIN_TOKEN" {
                assert!(!err.contains(value), "secret value leaked: {err}");
            }
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let s = with(&[
            ("DESKIE_ADMIN_TOKEN", "super-secret-admin-token"),
            ("DESKIE_ENCRYPTION_KEY", &"ab".repeat(32)),
        ])
        .expect("valid");
        let debug = format!("{s:?}");
        assert!(!debug.contains("super-secret-admin-token"));
        assert!(!debug.contains(&"ab".repeat(32)));
    }

    #[test]
    fn the_chatra_keep_alive_assumption_can_be_changed() {
        let s = with(&[("DESKIE_CHATRA_IDLE_CONNECTION_SECS", " 55 ")]).expect("valid");
        assert_eq!(s.chatra_idle_connection, Some(Duration::from_secs(55)));
    }

    #[test]
    fn chatra_paths_are_taken_as_given() {
        let s = with(&[
            (
                "DESKIE_CHATRA_AGENT_ONLINE_PATH",
                " /conversations/agentOnlinePing ",
            ),
            (
                "DESKIE_CHATRA_KEY_CHECK_PATH",
                "/messages/AbCdEfGhIjKlMnOpQ",
            ),
        ])
        .expect("valid");
        assert_eq!(
            s.chatra_agent_online_path.as_deref(),
            Some("/conversations/agentOnlinePing")
        );
        assert_eq!(
            s.chatra_key_check_path.as_deref(),
            Some("/messages/AbCdEfGhIjKlMnOpQ")
        );
    }

    #[test]
    fn the_idempotency_retention_is_taken_in_seconds() {
        let s = with(&[("DESKIE_IDEMPOTENCY_RETENTION_SECS", " 3600 ")]).expect("valid");
        assert_eq!(s.idempotency_retention, Duration::from_secs(3600));
    }

    #[test]
    fn trailing_slashes_are_trimmed_from_base_urls() {
        let s = with(&[
            ("DESKIE_PUBLIC_URL", "https://deskie.example/"),
            ("DESKIE_CHATRA_API_URL", "http://127.0.0.1:9/api/"),
        ])
        .expect("valid");
        assert_eq!(s.public_url, "https://deskie.example");
        assert_eq!(s.chatra_api_url, "http://127.0.0.1:9/api");
    }
}
