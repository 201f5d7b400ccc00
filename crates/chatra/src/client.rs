//! The HTTP calls and the mapping of their results to [`ChatraError`].

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;

use crate::error::{ChatraError, describe, excerpt};
use crate::retry_after::parse_retry_after;

/// Where the agent-online ping goes unless [`ChatraClient::with_agent_online_path`] says otherwise.
///
/// **A guess.** Chatra added an API method to report agents online (Deskie's knowledge base,
/// 2022) but never published its path or fields. This path and the body of [`AgentPing`]
/// are Brevo Conversations' `POST /conversations/agentOnlinePing` (Chatra's sibling product)
/// without the `/conversations` segment, as every other path of the two APIs differs
/// (`chatra-api.md` §8.5). Operators override it with `DESKIE_CHATRA_AGENT_ONLINE_PATH`.
pub const DEFAULT_AGENT_ONLINE_PATH: &str = "/agentOnlinePing";

/// An integration's API keys, passed to every call.
#[derive(Clone)]
pub struct ChatraCredentials {
    /// The public key (the same value as the widget's ChatraID).
    pub public_key: String,
    /// The secret key.
    pub secret_key: SecretString,
}

impl fmt::Debug for ChatraCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatraCredentials")
            .field("public_key", &self.public_key)
            .field("secret_key", &"[redacted]")
            .finish()
    }
}

/// An agent's reply to a visitor.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingMessage {
    /// Chatra's client id (`client.id` in webhooks).
    pub client_id: String,
    /// The text the visitor sees.
    pub text: String,
    /// The agent's e-mail; Chatra matches its agent by it, or creates one. Chatra refuses a
    /// message without an agent (`chatra-api.md` §8.3), so a reply of no agent (an admin's or
    /// a rule's) carries the integration's sender identity here.
    pub agent_email: String,
    /// The agent's display name (with `agent_email`).
    pub agent_name: String,
    /// Our tag; Chatra echoes it on the message in webhooks so we can recognise our own.
    pub received_from: String,
}

/// What Chatra returned for a sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The new message's id (the dedupe key of its echo webhook).
    pub id: String,
    /// The Chatra agent the message was sent as, when Chatra says.
    pub agent_id: Option<String>,
}

/// Changes to a client card: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientUpdate {
    /// The visitor's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Option<String>>,
    /// The visitor's e-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<Option<String>>,
    /// The visitor's phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<Option<String>>,
}

/// "This agent is working": keeps them shown online in Chatra for a few minutes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentPing {
    /// The agent's e-mail.
    pub agent_email: String,
    /// The agent's display name.
    pub agent_name: String,
    /// Our tag.
    pub received_from: String,
}

/// How long a connection to Chatra may sit idle and still be reused, unless
/// `DESKIE_CHATRA_IDLE_CONNECTION_SECS` says otherwise.
///
/// **An assumption about Chatra's servers:** that they keep an idle keep-alive connection
/// open for at least 5 s, the shortest common server default (Node.js, Apache, actix-web).
/// A request written on a connection the server is closing at that moment fails after it
/// may have left, so its outcome is unknown: a reply then waits for its echo, and is lost
/// if Chatra never had it. Reusing a connection only while it is younger than the server's
/// limit keeps that race away. Seen with the Chatra stand-in (actix-web, 5 s): one reply of
/// 3,000 in about one `bench-greeting` run of six ended `unknown` with reqwest's 90 s default.
pub const IDLE_CONNECTION_REUSE: Duration = Duration::from_secs(4);

/// How long a call to Chatra may take in all before it is given up.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// The reqwest client for Chatra calls: connects within 5 s (or `call_timeout` if
/// shorter), gives up on a whole call after `call_timeout`, follows no redirects, and reuses
/// a connection idle for less than `idle_reuse` only (`None`: [`IDLE_CONNECTION_REUSE`]).
pub fn http_client(call_timeout: Duration, idle_reuse: Option<Duration>) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(call_timeout.min(Duration::from_secs(5)))
        .timeout(call_timeout)
        .pool_idle_timeout(idle_reuse.unwrap_or(IDLE_CONNECTION_REUSE))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        // Building only fails when the TLS backend cannot start; a default client still
        // works for plain HTTP (tests) and reports the TLS failure per call.
        .unwrap_or_default()
}

/// [`http_client`] with [`CALL_TIMEOUT`] and [`IDLE_CONNECTION_REUSE`].
pub fn default_http_client() -> reqwest::Client {
    http_client(CALL_TIMEOUT, None)
}

/// Chatra's REST API at one base URL.
#[derive(Debug, Clone)]
pub struct ChatraClient {
    base_url: String,
    agent_online_path: String,
    http: reqwest::Client,
}

impl ChatraClient {
    /// A client for `base_url` (e.g. `https://app.chatra.io/api`, trailing `/` optional).
    pub fn new(base_url: &str, http: reqwest::Client) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            agent_online_path: DEFAULT_AGENT_ONLINE_PATH.to_owned(),
            http,
        }
    }

    /// Sends agent-online pings to `path` (relative to the base URL) instead of
    /// [`DEFAULT_AGENT_ONLINE_PATH`].
    pub fn with_agent_online_path(mut self, path: &str) -> Self {
        self.agent_online_path = format!("/{}", path.trim_start_matches('/'));
        self
    }

    /// Where agent-online pings go, relative to the base URL.
    pub fn agent_online_path(&self) -> &str {
        &self.agent_online_path
    }

    /// `POST /messages/`: sends `message` as an agent reply and returns Chatra's message id.
    pub async fn send_message(
        &self,
        creds: &ChatraCredentials,
        message: &OutgoingMessage,
    ) -> Result<SentMessage, ChatraError> {
        let body = self
            .call(creds, Method::POST, "/messages/", message)
            .await?;
        sent_message_from(&body)
    }

    /// `PUT /clients/{client_id}` with only the fields present in `update`.
    pub async fn update_client(
        &self,
        creds: &ChatraCredentials,
        client_id: &str,
        update: &ClientUpdate,
    ) -> Result<(), ChatraError> {
        let path = client_path(client_id)?;
        self.call(creds, Method::PUT, &path, update).await.map(drop)
    }

    /// Reports an agent online (see [`DEFAULT_AGENT_ONLINE_PATH`]: the endpoint is a guess).
    pub async fn agent_online_ping(
        &self,
        creds: &ChatraCredentials,
        ping: &AgentPing,
    ) -> Result<(), ChatraError> {
        let path = self.agent_online_path.clone();
        self.call(creds, Method::POST, &path, ping).await.map(drop)
    }

    /// One call: returns the body of a 2xx answer, or the outcome as a [`ChatraError`].
    /// A `GET` carries no body (`body` is ignored).
    pub(crate) async fn call<B: Serialize>(
        &self,
        creds: &ChatraCredentials,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<String, ChatraError> {
        let secret = creds.secret_key.expose_secret();
        let mut authorization =
            HeaderValue::from_str(&format!("Chatra.Simple {}:{secret}", creds.public_key))
                .map_err(|_| ChatraError::NotSent {
                    reason: "the API keys hold characters not allowed in an HTTP header".into(),
                })?;
        authorization.set_sensitive(true);
        let get = method == Method::GET;
        let request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .header(AUTHORIZATION, authorization);
        let response = if get { request } else { request.json(body) }
            .send()
            .await
            .map_err(|e| from_send_error(&e))?;
        let status = response.status();
        if status.is_success() {
            // Chatra has answered 2xx: whatever happens to the body, the call was processed.
            return response.text().await.map_err(|e| ChatraError::BadResponse {
                reason: format!("reading the body: {}", describe(&e)),
            });
        }
        Err(from_status(status, response, secret).await)
    }
}

/// Maps a failure of `send()` (no status received) to an outcome.
fn from_send_error(error: &reqwest::Error) -> ChatraError {
    let reason = describe(error);
    // A connect timeout is both `is_connect` and `is_timeout`: nothing was written, so the
    // connect check comes first.
    if error.is_connect() || error.is_builder() {
        ChatraError::NotSent { reason }
    } else {
        ChatraError::OutcomeUnknown { reason }
    }
}

/// Maps a non-2xx answer to an outcome.
async fn from_status(status: StatusCode, response: Response, secret: &str) -> ChatraError {
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let code = status.as_u16();
    match code {
        429 => ChatraError::RateLimited { retry_after },
        // Only a 503 says the request was turned away unprocessed. A 502 or 504 comes from a
        // gateway that may have handed the request on before it lost the answer: like a 500,
        // it may have been processed.
        503 => ChatraError::Unavailable {
            status: code,
            retry_after,
        },
        500..=599 => ChatraError::OutcomeUnknown {
            reason: format!(
                "HTTP {code}: {}",
                excerpt(&body_text(response).await, secret)
            ),
        },
        _ => ChatraError::Rejected {
            status: code,
            body: excerpt(&body_text(response).await, secret),
        },
    }
}

async fn body_text(response: Response) -> String {
    response
        .text()
        .await
        .unwrap_or_else(|e| format!("(body unreadable: {e})"))
}

/// Reads the new message's id from a 2xx body: `{"id": …}`, or the same inside `message`/`data`.
fn sent_message_from(body: &str) -> Result<SentMessage, ChatraError> {
    let value: Value = serde_json::from_str(body).map_err(|e| ChatraError::BadResponse {
        reason: format!("not JSON ({e}): {}", excerpt(body, "")),
    })?;
    let message = [&value, &value["message"], &value["data"]]
        .into_iter()
        .find(|candidate| id_of(&candidate["id"]).is_some())
        .ok_or_else(|| ChatraError::BadResponse {
            reason: format!("no message id in {}", excerpt(body, "")),
        })?;
    Ok(SentMessage {
        id: id_of(&message["id"]).unwrap_or_default(),
        agent_id: id_of(&message["agentId"]),
    })
}

/// An id given as a non-empty string or a number.
fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `/clients/{client_id}`, the id as one path segment. An empty id, `.` or `..` would name
/// another path: refused unsent.
pub(crate) fn client_path(client_id: &str) -> Result<String, ChatraError> {
    if client_id.is_empty() || client_id == "." || client_id == ".." {
        return Err(ChatraError::NotSent {
            reason: format!("{client_id:?} is not a client id"),
        });
    }
    Ok(format!("/clients/{}", encode_segment(client_id)))
}

/// Percent-encodes a path segment (client ids are opaque strings set by the site).
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_leniently() {
        let sent = sent_message_from(r#"{"id":"bnRzp4CioKudG4aHm","agentId":"A1"}"#);
        assert_eq!(
            sent,
            Ok(SentMessage {
                id: "bnRzp4CioKudG4aHm".into(),
                agent_id: Some("A1".into())
            })
        );
        let nested = sent_message_from(r#"{"message":{"id":42}}"#);
        assert_eq!(nested.map(|m| m.id), Ok("42".into()));
    }

    #[test]
    fn a_body_without_an_id_is_a_bad_response() {
        for body in ["", "{}", r#"{"id":""}"#, "[1]", "<html>"] {
            assert!(
                matches!(
                    sent_message_from(body),
                    Err(ChatraError::BadResponse { .. })
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn a_client_id_cannot_name_another_path() {
        for id in ["", ".", ".."] {
            assert!(
                matches!(client_path(id), Err(ChatraError::NotSent { .. })),
                "{id:?}"
            );
        }
        assert_eq!(client_path("..a").ok().as_deref(), Some("/clients/..a"));
        assert_eq!(
            client_path("a/../b").ok().as_deref(),
            Some("/clients/a%2F..%2Fb")
        );
    }

    #[test]
    fn client_ids_are_encoded_as_one_segment() {
        assert_eq!(encode_segment("abc-1_2.3~"), "abc-1_2.3~");
        assert_eq!(encode_segment("a/b c?"), "a%2Fb%20c%3F");
    }

    #[test]
    fn debug_hides_the_secret() {
        let creds = ChatraCredentials {
            public_key: "pub".into(),
            secret_key: SecretString::from("hunter2"),
        };
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}
