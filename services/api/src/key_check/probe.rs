//! One request to Chatra that tells whether it accepts a pair of API keys.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::commands::integrations::KeyStatus;

/// The path probed under `DESKIE_CHATRA_API_URL` unless `DESKIE_CHATRA_KEY_CHECK_PATH` says
/// otherwise.
///
/// Chatra documents no endpoint for checking API keys, so we probe an authenticated read of
/// a message id that does not exist: Chatra authenticates before it looks the id up, so
/// 2xx or 404 means the keys were accepted and 401/403 means they were refused ([`classify`]).
/// The id has the form of Chatra's own (17 letters and digits, a Meteor id, `chatra-api.md`
/// §8.12): an id of another form may be refused with 400 before the keys are looked at,
/// which would say nothing about them.
pub const KEY_CHECK_PATH: &str = "/messages/deskieKeyCheck001";

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
    /// A probe of `path` (default [`KEY_CHECK_PATH`]) under `chatra_api_url` using `client`.
    pub fn new(client: reqwest::Client, chatra_api_url: &str, path: Option<&str>) -> Self {
        Self {
            client,
            url: format!(
                "{}{}",
                chatra_api_url.trim_end_matches('/'),
                path.unwrap_or(KEY_CHECK_PATH)
            ),
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

/// The key-check policy: what Chatra's status code says about the keys, and the sentence the
/// integration's status shows for it (an assumption: Chatra documents no error codes).
pub fn classify(status: u16) -> (KeyStatus, Option<String>) {
    match status {
        200..=299 | 404 => (
            KeyStatus::Connected,
            Some(format!(
                "Chatra answered HTTP {status} to the key probe: the keys work"
            )),
        ),
        401 | 403 => (
            KeyStatus::InvalidKeys,
            Some(format!("Chatra refused the keys (HTTP {status})")),
        ),
        _ => (
            KeyStatus::Unreachable,
            Some(format!(
                "Chatra answered HTTP {status} to the key probe: cannot tell whether the keys work"
            )),
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
    fn the_probed_id_has_the_form_of_a_chatra_id() {
        let id = KEY_CHECK_PATH.rsplit('/').next().unwrap_or_default();
        assert_eq!(id.len(), 17, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
        let probe = ChatraProbe::new(reqwest::Client::new(), "http://c/api/", None);
        assert_eq!(probe.url, format!("http://c/api{KEY_CHECK_PATH}"));
        let probe = ChatraProbe::new(reqwest::Client::new(), "http://c/api", Some("/x/y"));
        assert_eq!(probe.url, "http://c/api/x/y");
    }

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
