//! What agent-sync needs: the shared settings, plus two durations with defaults; and where
//! the `deskie-agent-sync` binary serves its endpoints.

use std::net::SocketAddr;
use std::time::Duration;

use deskie_config::{Cipher, Settings};

use crate::visitors::VisitorFetchConfig;

/// How often an online agent is reported to Chatra (Brevo's twin of the endpoint keeps an
/// agent online for 2–3 minutes and asks for a ping about every minute).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(60);

/// The longest one Chatra call may take, connecting included. No consumer waits on a
/// Chatra call any more (customer edits and visitor cards go through leased queues), and
/// each queue's lease is longer than this, so a claim outlives its call.
pub const DEFAULT_CHATRA_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the `deskie-agent-sync` binary serves `/healthz`, `/readyz` and `/metrics`
/// (`deskie run` serves none).
pub const ADDR_VAR: &str = "DESKIE_AGENT_SYNC_ADDR";
/// The default of [`ADDR_VAR`].
pub const DEFAULT_ADDR: &str = "127.0.0.1:8084";

/// agent-sync's configuration.
#[derive(Debug, Clone)]
pub struct AgentSyncConfig {
    /// `DESKIE_CHATRA_API_URL`, without a trailing slash.
    pub chatra_api_url: String,
    /// Path of Chatra's agent-online endpoint under the API URL:
    /// `DESKIE_CHATRA_AGENT_ONLINE_PATH`, else [`deskie_chatra::DEFAULT_AGENT_ONLINE_PATH`]
    /// (a guess).
    pub agent_online_path: String,
    /// `DESKIE_CHATRA_RECEIVED_FROM`, sent with every ping.
    pub received_from: String,
    /// `DESKIE_ENCRYPTION_KEY`: decrypts integrations' secret keys.
    pub cipher: Cipher,
    /// Time between two pings of one online agent ([`DEFAULT_PING_INTERVAL`]).
    pub ping_interval: Duration,
    /// Bound of one Chatra call ([`DEFAULT_CHATRA_TIMEOUT`]); the queues' leases exceed it.
    pub chatra_timeout: Duration,
    /// `DESKIE_CHATRA_IDLE_CONNECTION_SECS`, else [`deskie_chatra::IDLE_CONNECTION_REUSE`].
    pub chatra_idle_connection: Option<Duration>,
    /// Fetching visitor cards (`GET /clients/{id}`) for new and ended chats; `None`: off
    /// (no fetch is enqueued). Default: [`VisitorFetchConfig::default`].
    pub visitors: Option<VisitorFetchConfig>,
}

/// A setting agent-sync cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A shared setting is missing or malformed (names the variable).
    #[error(transparent)]
    Settings(#[from] deskie_config::ConfigError),
    /// One of agent-sync's own variables is malformed.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// Why.
        reason: String,
    },
}

/// The address of the binary's endpoints: [`ADDR_VAR`] read through `lookup`, else
/// [`DEFAULT_ADDR`].
pub fn http_addr_from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<SocketAddr, ConfigError> {
    Ok(deskie_config::addr_var(lookup, ADDR_VAR, DEFAULT_ADDR)?)
}

impl AgentSyncConfig {
    /// The configuration from the shared settings, with the default durations and path.
    /// Fails, naming `DESKIE_ENCRYPTION_KEY`, when there is no key to decrypt secret keys with.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            chatra_api_url: settings.chatra_api_url.clone(),
            agent_online_path: settings
                .chatra_agent_online_path
                .clone()
                .unwrap_or_else(|| deskie_chatra::DEFAULT_AGENT_ONLINE_PATH.to_owned()),
            received_from: settings.chatra_received_from.clone(),
            cipher: settings.require_cipher()?.clone(),
            ping_interval: DEFAULT_PING_INTERVAL,
            chatra_timeout: DEFAULT_CHATRA_TIMEOUT,
            chatra_idle_connection: settings.chatra_idle_connection,
            visitors: Some(VisitorFetchConfig::default()),
        })
    }

    /// The HTTP client for Chatra calls ([`deskie_chatra::http_client`]): the whole call
    /// within [`Self::chatra_timeout`].
    pub fn http_client(&self) -> reqwest::Client {
        deskie_chatra::http_client(self.chatra_timeout, self.chatra_idle_connection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_settings_and_the_key_is_required() {
        let settings = Settings::from_lookup(|_| None).expect("defaults");
        let error = AgentSyncConfig::from_settings(&settings).expect_err("no key");
        assert!(
            error.to_string().starts_with("DESKIE_ENCRYPTION_KEY"),
            "{error}"
        );

        let key = "ab".repeat(32);
        let settings =
            Settings::from_lookup(|var| (var == "DESKIE_ENCRYPTION_KEY").then(|| key.clone()))
                .expect("settings");
        let config = AgentSyncConfig::from_settings(&settings).expect("config");
        assert_eq!(config.chatra_api_url, "https://app.chatra.io/api");
        assert_eq!(config.received_from, "deskie");
        assert_eq!(
            config.agent_online_path,
            deskie_chatra::DEFAULT_AGENT_ONLINE_PATH
        );
        assert_eq!(config.ping_interval, Duration::from_secs(60));
        assert!(
            config.chatra_timeout < Duration::from_secs(30) / 2,
            "below the ack wait"
        );
    }

    #[test]
    fn the_address_defaults_and_a_bad_one_is_named() {
        assert_eq!(
            http_addr_from_lookup(|_| None).ok(),
            DEFAULT_ADDR.parse().ok()
        );
        let set = |value: &'static str| {
            http_addr_from_lookup(move |var| (var == ADDR_VAR).then(|| value.to_owned()))
        };
        assert_eq!(set("0.0.0.0:8084").ok(), "0.0.0.0:8084".parse().ok());
        let error = set("nowhere").expect_err("refused");
        assert!(error.to_string().starts_with(ADDR_VAR), "{error}");
    }
}
