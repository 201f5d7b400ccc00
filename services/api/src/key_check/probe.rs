//! One request to Chatra that tells whether it accepts a pair of API keys.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::commands::integrations::KeyStatus;

/// The path probed under `DESKIE_CHATRA_API_URL`.
///
/// Chatra documents no endpoint for checking API keys, so we probe an authenticated read of
/// a message id that does not exist: Chatra authenticates before it looks the id up, so
/// 2xx or 404 means the keys were accepted and 401/403 means they were refused.
pub const KEY_CHECK_PATH: &str = "/messages/deskie-connection-check";

/// How long one probe may take before the check counts as `unreachable`.
pub const KEY_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest `detail` recorded with a check.
const MAX_DETAIL_CHARS: usize = 300;

/// Probes Chatra's API with an integration's keys.
#[derive(Debug, Clone)]
pub struct ChatraProbe {
    client: reqwest::Client,
    url: String,
}

impl ChatraProbe {
    /// A probe against `chatra_api_url` (no trailing slash) using `client`.
    pub fn new(client: reqwest::Client, chatra_api_url: &str) -> Self {
        Self {
            client,
            url: format!("{}{KEY_CHECK_PATH}", chatra_api_url.trim_end_matches('/')),
        }
    }

    /// Asks Chatra once; never logs or returns the keys or the Authorization header.
    pub async fn check(
        &self,
        public_key: &str,
        secret_key: &SecretString,
    ) -> (KeyStatus, Option<String>) {
        let credentials = format!("Chatra.Simple {public_key}:{}", secret_key.expose_secret());
        let Ok(mut authorization) = HeaderValue::from_str(&credentials) else {
            return (
                KeyStatus::InvalidKeys,
                Some("the keys contain characters an HTTP header cannot carry".into()),
            );
        };
        authorization.set_sensitive(true);
        let sent = self
            .client
            .get(&self.url)
            .header(AUTHORIZATION, authorization)
            .timeout(KEY_CHECK_TIMEOUT)
            .send()
            .await;
        match sent {
            Ok(response) => classify(response.status().as_u16()),
            Err(error) => (KeyStatus::Unreachable, Some(describe(&error))),
        }
    }
}

/// The key-check policy: what Chatra's status code says about the keys.
pub fn classify(status: u16) -> (KeyStatus, Option<String>) {
    match status {
        200..=299 | 404 => (KeyStatus::Connected, None),
        401 | 403 => (
            KeyStatus::InvalidKeys,
            Some(format!("Chatra refused the keys (HTTP {status})")),
        ),
        _ => (
            KeyStatus::Unreachable,
            Some(format!("Chatra answered HTTP {status}")),
        ),
    }
}

/// The error and its causes on one line (the URL is no secret; the header is not in it).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        format!("no answer within {} s", KEY_CHECK_TIMEOUT.as_secs())
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(MAX_DETAIL_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_the_documented_policy() {
        for code in [200, 204, 404] {
            assert_eq!(classify(code).0, KeyStatus::Connected, "{code}");
        }
        for code in [401, 403] {
            assert_eq!(classify(code).0, KeyStatus::InvalidKeys, "{code}");
        }
        for code in [301, 400, 429, 500, 502, 503] {
            assert_eq!(classify(code).0, KeyStatus::Unreachable, "{code}");
        }
    }
}
