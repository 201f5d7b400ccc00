//! What the api needs from the environment.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deskie_config::{Cipher, ConfigError, Settings};
use secrecy::SecretString;

/// The api's configuration, taken from [`Settings`] (tests build it directly).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where to listen (`DESKIE_API_ADDR`); port 0 picks a free port.
    pub addr: SocketAddr,
    /// Base of the webhook URLs shown to admins (`DESKIE_PUBLIC_URL`), no trailing slash.
    pub public_url: String,
    /// The admin's bearer token (`DESKIE_ADMIN_TOKEN`).
    pub admin_token: SecretString,
    /// Encrypts Chatra secret keys and webhook tokens at rest (`DESKIE_ENCRYPTION_KEY`).
    pub cipher: Cipher,
    /// Chatra's REST API base (`DESKIE_CHATRA_API_URL`), no trailing slash.
    pub chatra_api_url: String,
    /// What the key check reads under the API URL (`DESKIE_CHATRA_KEY_CHECK_PATH`); `None`
    /// is [`crate::key_check::KEY_CHECK_PATH`].
    pub chatra_key_check_path: Option<String>,
    /// Other services' metrics pages appended to `/metrics`: `deskie run` serves every
    /// in-process service's metrics on the api's port (empty for a stand-alone api).
    pub extra_metrics: ExtraMetrics,
    /// How long answers to requests with an `Idempotency-Key` are replayed
    /// (`DESKIE_IDEMPOTENCY_RETENTION_SECS`).
    pub idempotency_retention: Duration,
}

/// Renderers of Prometheus text pages shown after the api's own on `/metrics`.
#[derive(Clone, Default)]
pub struct ExtraMetrics(pub Vec<Arc<dyn Fn() -> String + Send + Sync>>);

impl std::fmt::Debug for ExtraMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExtraMetrics({} pages)", self.0.len())
    }
}

impl ExtraMetrics {
    /// Every page, in order.
    pub fn render(&self) -> String {
        self.0.iter().map(|page| page()).collect()
    }
}

impl ApiConfig {
    /// Picks the api's part of `settings`; the admin token and the encryption key are required.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            addr: settings.api_addr,
            public_url: settings.public_url.trim_end_matches('/').to_owned(),
            admin_token: settings.require_admin_token()?.clone(),
            cipher: settings.require_cipher()?.clone(),
            chatra_api_url: settings.chatra_api_url.trim_end_matches('/').to_owned(),
            chatra_key_check_path: settings.chatra_key_check_path.clone(),
            extra_metrics: ExtraMetrics::default(),
            idempotency_retention: settings.idempotency_retention,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_and_the_encryption_key_are_required() {
        let key = Cipher::generate_encoded_key();
        let settings = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            Settings::from_lookup(move |name| {
                vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            })
        };
        let token = ("DESKIE_ADMIN_TOKEN", "an-admin-token-of-some-length");
        let no_key = settings(&[token]).map(|s| ApiConfig::from_settings(&s).is_err());
        assert!(matches!(no_key, Ok(true)));
        let no_token = settings(&[("DESKIE_ENCRYPTION_KEY", &key)])
            .map(|s| ApiConfig::from_settings(&s).is_err());
        assert!(matches!(no_token, Ok(true)));
        let both = settings(&[token, ("DESKIE_ENCRYPTION_KEY", &key)])
            .map(|s| ApiConfig::from_settings(&s).map(|c| c.addr.port()).ok());
        assert!(matches!(both, Ok(Some(8081))));
    }
}
