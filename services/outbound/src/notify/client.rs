//! The two HTTP calls and the mapping of their answers to [`NotifyError`]. The webhook URL
//! and the bot token are secrets (the token sits in Telegram's URL path): no error text
//! carries the URL, and the secret is scrubbed from whatever a peer echoes back.

use std::time::{Duration, SystemTime};

use reqwest::header::RETRY_AFTER;
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use deskie_chatra::{MAX_RETRY_AFTER, parse_retry_after};

/// How much of a peer's answer an error keeps.
const MAX_BODY_CHARS: usize = 300;

/// A failed notification call, sorted by what outbound does next (`policy::after_notification_error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// No answer: the request never left, or it timed out or was cut off. Retried.
    #[error("no answer: {reason}")]
    NoAnswer {
        /// What happened, without the URL.
        reason: String,
    },
    /// 429: wait exactly as long as asked (backoff when not said).
    #[error("rate limited (retry after {retry_after:?})")]
    RateLimited {
        /// `Retry-After` (Slack) or `parameters.retry_after` (Telegram), at most an hour.
        retry_after: Option<Duration>,
    },
    /// A 5xx: retried.
    #[error("HTTP {status}: {body}")]
    ServerError {
        /// The status.
        status: u16,
        /// The start of the answer, secret scrubbed.
        body: String,
    },
    /// Any other refusal (400 `chat not found`, 403, 404 `no_service`…): it will not work.
    #[error("refused (HTTP {status}): {body}")]
    Rejected {
        /// The status.
        status: u16,
        /// The start of the answer, secret scrubbed.
        body: String,
    },
}

/// Slack and Telegram over one HTTP client.
#[derive(Debug, Clone)]
pub struct NotifyClient {
    http: reqwest::Client,
    telegram_api_url: String,
}

impl NotifyClient {
    /// Telegram at `telegram_api_url` (`https://api.telegram.org`, trailing `/` optional).
    pub fn new(http: reqwest::Client, telegram_api_url: &str) -> Self {
        Self {
            http,
            telegram_api_url: telegram_api_url.trim_end_matches('/').to_owned(),
        }
    }

    /// `POST {webhook_url}` with `{"text": text}`; Slack answers `200 ok`.
    pub async fn slack(&self, webhook_url: &SecretString, text: &str) -> Result<(), NotifyError> {
        let url = webhook_url.expose_secret();
        let response = self.post(url, &json!({ "text": text }), url).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = header_retry_after(&response);
        let body = response.text().await.unwrap_or_default();
        Err(refusal(status, retry_after, excerpt(&body, url)))
    }

    /// `POST {api}/bot{token}/sendMessage` with `{"chat_id", "text"}`, plain text (no
    /// `parse_mode`, so nothing in the text is markup). Telegram answers `{"ok": true, …}`.
    pub async fn telegram(
        &self,
        bot_token: &SecretString,
        chat_id: &str,
        text: &str,
    ) -> Result<(), NotifyError> {
        let token = bot_token.expose_secret();
        let url = format!("{}/bot{token}/sendMessage", self.telegram_api_url);
        let body = json!({ "chat_id": chat_id, "text": text });
        let response = self.post(&url, &body, token).await?;
        let status = response.status();
        let header_wait = header_retry_after(&response);
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() && answer["ok"] != false {
            return Ok(());
        }
        // The Bot API says it in the body: `error_code`, `description`, `parameters.retry_after`.
        let error_code = answer["error_code"]
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .and_then(|c| StatusCode::from_u16(c).ok());
        let code = match error_code {
            Some(code) if status.is_success() => code,
            _ => status,
        };
        let retry_after = answer["parameters"]["retry_after"]
            .as_u64()
            .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER))
            .or(header_wait);
        let description = answer["description"]
            .as_str()
            .map_or_else(|| answer.to_string(), str::to_owned);
        Err(refusal(code, retry_after, excerpt(&description, token)))
    }

    async fn post(&self, url: &str, body: &Value, secret: &str) -> Result<Response, NotifyError> {
        self.http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| NotifyError::NoAnswer {
                reason: describe(e, secret),
            })
    }
}

fn refusal(status: StatusCode, retry_after: Option<Duration>, body: String) -> NotifyError {
    match status.as_u16() {
        429 => NotifyError::RateLimited { retry_after },
        status @ 500..=599 => NotifyError::ServerError { status, body },
        status => NotifyError::Rejected { status, body },
    }
}

fn header_retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// A reqwest error and its causes on one line, without the URL (it holds the secret) and
/// with `secret` scrubbed from whatever else might quote it.
fn describe(error: reqwest::Error, secret: &str) -> String {
    let kind = if error.is_connect() {
        "cannot connect"
    } else if error.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    let error = error.without_url();
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    scrub(&text, secret)
}

/// The first [`MAX_BODY_CHARS`] characters of `body`, `secret` scrubbed.
fn excerpt(body: &str, secret: &str) -> String {
    let scrubbed = scrub(body, secret);
    let mut chars = scrubbed.chars();
    let mut kept: String = chars.by_ref().take(MAX_BODY_CHARS).collect();
    if chars.next().is_some() {
        kept.push('…');
    }
    kept
}

fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_error_names_neither_url_nor_token() {
        let client = NotifyClient::new(reqwest::Client::new(), "http://127.0.0.1:1");
        let token = SecretString::from("123456:very-secret-token");
        let error = client
            .telegram(&token, "-1", "hi")
            .await
            .expect_err("nothing listens on port 1");
        let text = error.to_string();
        assert!(matches!(error, NotifyError::NoAnswer { .. }), "{text}");
        assert!(!text.contains("very-secret-token"), "{text}");
        assert!(!text.contains("/bot"), "{text}");

        let webhook = SecretString::from("http://127.0.0.1:1/services/T0/B0/hook-secret");
        let text = client
            .slack(&webhook, "hi")
            .await
            .expect_err("refused")
            .to_string();
        assert!(!text.contains("hook-secret"), "{text}");
    }

    #[test]
    fn statuses_sort_into_what_comes_next() {
        let wait = Some(Duration::from_secs(3));
        assert_eq!(
            refusal(StatusCode::TOO_MANY_REQUESTS, wait, String::new()),
            NotifyError::RateLimited { retry_after: wait }
        );
        assert!(matches!(
            refusal(StatusCode::BAD_GATEWAY, None, String::new()),
            NotifyError::ServerError { status: 502, .. }
        ));
        assert!(matches!(
            refusal(StatusCode::BAD_REQUEST, None, String::new()),
            NotifyError::Rejected { status: 400, .. }
        ));
        assert_eq!(
            excerpt("token 1:abc here", "1:abc"),
            "token [redacted] here"
        );
    }
}
