//! Chatra's REST API, as far as deskie uses it.
//!
//! # Calls
//!
//! | call | HTTP | notes |
//! |---|---|---|
//! | [`ChatraClient::send_message`] | `POST {base}/messages/` | an agent reply, sent as `agentEmail` + `agentName` + `receivedFrom` (Chatra matches the agent by e-mail or creates a "dummy" agent); returns the new message's `id` |
//! | [`ChatraClient::update_client`] | `PUT {base}/clients/{id}` | only the fields present are sent; `null` clears one |
//! | [`ChatraClient::get_client`] | `GET {base}/clients/{id}` | the visitor card as JSON; its keys beyond `basicInfo`, `integrationData` and `info` are unknown |
//! | [`ChatraClient::agent_online_ping`] | `POST {base}{agent_online_path}` | **not publicly documented**: see [`DEFAULT_AGENT_ONLINE_PATH`] |
//!
//! `base` is what `DESKIE_CHATRA_API_URL` holds (`https://app.chatra.io/api` in production).
//! Keys are passed per call ([`ChatraCredentials`]) because every integration has its own;
//! they travel as `Authorization: Chatra.Simple {public}:{secret}`, a header marked
//! sensitive so HTTP-level logging leaves it out. The secret never appears in `Debug`
//! output nor in any error's text (response bodies kept in errors have it scrubbed).
//!
//! # Outcomes
//!
//! The point of this crate is to tell apart what the caller may do next
//! (`reference/reliability.md` §3.6):
//!
//! | outcome | [`ChatraError`] | was it processed? | next step |
//! |---|---|---|---|
//! | 2xx with a message id | `Ok(SentMessage)` | yes | mark `sent`, keep the id |
//! | connect/DNS/TLS failure, request never written | [`ChatraError::NotSent`] | no | retry with backoff |
//! | 429 | [`ChatraError::RateLimited`] | no | wait exactly `Retry-After`, then retry |
//! | 503 | [`ChatraError::Unavailable`] | no (turned away before processing) | retry with backoff, honour `Retry-After` if sent |
//! | other 4xx (and unexpected 1xx/3xx) | [`ChatraError::Rejected`] | no | permanent: mark `failed` |
//! | 500, 502, 504 (and other 5xx), timeout after the request left, reset mid-response | [`ChatraError::OutcomeUnknown`] | maybe (a gateway's 502/504 may come after Chatra took the request) | never re-send blindly: mark `unknown`, settle by the echo webhook |
//! | 2xx whose body has no readable id | [`ChatraError::BadResponse`] | yes, almost surely | do not re-send; the id arrives with the echo webhook |
//!
//! [`ChatraError::is_retryable_safely`] is `true` exactly for the first three error rows.
//!
//! A 2xx with an unreadable body is an error (the caller asked for an id and did not get
//! one) but not a retryable one: Chatra said it accepted the message, so sending again
//! would show the visitor the reply twice.
//!
//! # Timeouts
//!
//! [`default_http_client`] connects within 5 s and gives up on a whole call after 15 s; it
//! follows no redirects (a redirected `POST` would turn into a `GET` and the reply would be
//! lost silently), and reuses a connection idle for less than [`IDLE_CONNECTION_REUSE`]
//! only (an assumption about Chatra's keep-alive, written there). Tests pass their own `reqwest::Client` with shorter timeouts.

mod client;
mod error;
mod retry_after;
mod visitor;

pub use client::{
    AgentPing, CALL_TIMEOUT, ChatraClient, ChatraCredentials, ClientUpdate,
    DEFAULT_AGENT_ONLINE_PATH, IDLE_CONNECTION_REUSE, OutgoingMessage, SentMessage,
    default_http_client, http_client,
};
pub use error::ChatraError;
pub use retry_after::{MAX_RETRY_AFTER, parse_retry_after};
