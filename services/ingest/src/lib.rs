//! ingest: Chatra's webhooks in, durable `ChatraWebhookReceived` messages out.
//!
//! A webhook is answered 200 only after JetStream acknowledged it, so a 200 means "durable";
//! while NATS is away the answer is 503 and Chatra retries the same body, which dedupes to
//! one message by its `Nats-Msg-Id`. See `docs/services/ingest.md`.

mod credential_cache;
mod credentials;
mod full_burst;
mod metrics;
mod routes;
mod startup;
mod webhook;

pub use credential_cache::CACHE_TTL;
pub use credentials::LISTENER_NAME;
pub use startup::{Application, IngestConfig, IngestStartError};
pub use webhook::dedupe_key;
