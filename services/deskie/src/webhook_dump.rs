//! `deskie webhooks dump`: the raw bodies the webhook stream still holds for one integration,
//! so an admin can hand real Chatra payloads over to become test fixtures
//! (`docs/fixtures.md`).
//!
//! Only bodies are printed. Ingest stores neither the request URL (with its `token`) nor the
//! request headers (`X-Deskie-Token`): a stored webhook is the body plus ingest's own headers
//! (trace context, chat lane), and those are not printed either. As a second guard, any
//! stretch of a body that hashes to the integration's webhook token is replaced before
//! printing ([`TokenGuard`]), so even a body that quoted the URL cannot leak it. Chatra
//! secret keys never travel in webhooks.

mod print;
mod token;

pub use print::{indent_json, write_webhook};
pub use token::{TOKEN_REMOVED, TokenGuard};

use std::collections::VecDeque;
use std::io::{self, Write};
use std::time::Duration;

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{ErrorCode, stream};
use chrono::{DateTime, Utc};
use deskie_bus::Bus;
use deskie_proto::Message;
use deskie_proto::webhooks::ChatraWebhookReceived;
use deskie_store::{Store, StoreError, read_models};
use futures::StreamExt;
use uuid::Uuid;

/// How many webhooks `--last` keeps when not given.
pub const DEFAULT_LAST: usize = 20;

/// Sequences are read in batches of this many (headers only, so small).
const BATCH: usize = 1000;

/// One stored webhook, as ingest received it.
#[derive(Debug, Clone)]
pub struct CapturedWebhook {
    /// Sequence in the webhook stream.
    pub sequence: u64,
    /// When ingest received it (`None` if the message does not say).
    pub received_at: Option<DateTime<Utc>>,
    /// Chatra's `eventName`, as ingest read it.
    pub event_name: String,
    /// The body, byte for byte as Chatra sent it (ingest's compression undone).
    pub body: Vec<u8>,
}

/// Why nothing was dumped.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// No integration with that id was ever connected.
    #[error(
        "--integration {0}: no such integration (the `id` from GET /api/v1/integrations/chatra)"
    )]
    UnknownIntegration(Uuid),
    /// The database could not be read.
    #[error("DESKIE_DATABASE_URL: cannot read the integrations")]
    Store(#[from] StoreError),
    /// NATS did not answer.
    #[error("DESKIE_NATS_URL: NATS is not reachable")]
    NatsUnavailable,
    /// The webhook stream does not exist under this prefix.
    #[error(
        "stream {0} does not exist: ingest never ran under this DESKIE_NATS_PREFIX, or the prefix is wrong"
    )]
    StreamMissing(String),
    /// Reading the stream failed.
    #[error("NATS: {0}")]
    Bus(String),
    /// The output could not be written.
    #[error("cannot write the dump")]
    Output(#[from] io::Error),
}

fn bus_error(error: impl std::fmt::Display) -> DumpError {
    DumpError::Bus(error.to_string())
}

/// Everything `deskie webhooks dump` does: checks the integration, reads its newest `last`
/// webhooks and prints them to `out`, oldest first; progress and the summary go to `log`.
/// On an error nothing is written to `out`.
pub async fn run(
    store: &Store,
    bus: &Bus,
    integration_id: Uuid,
    last: usize,
    out: &mut impl Write,
    log: &mut impl Write,
) -> Result<(), DumpError> {
    let token = token_guard(store, integration_id).await?;
    let stream = bus.topology().webhooks_stream();
    let webhooks = newest(bus, integration_id, last, |read, total| {
        // Only a read of several batches is long enough to be worth a line.
        if total > BATCH as u64 {
            let _ = writeln!(log, "reading {stream}: {read} of {total}");
        }
    })
    .await?;
    for webhook in &webhooks {
        write_webhook(out, webhook, &token)?;
    }
    out.flush()?;
    if webhooks.is_empty() {
        writeln!(
            log,
            "no webhooks of integration {integration_id} in {stream} (it keeps 30 days)"
        )?;
    } else {
        writeln!(
            log,
            "{} webhooks of integration {integration_id}, oldest first",
            webhooks.len()
        )?;
    }
    Ok(())
}

/// What finds the integration's webhook token in a body; the integration may have been
/// disconnected since (its webhooks are still worth having).
pub async fn token_guard(store: &Store, integration_id: Uuid) -> Result<TokenGuard, DumpError> {
    read_models::integrations::get_including_disconnected(store.pool(), integration_id)
        .await?
        .map(|i| TokenGuard::new(i.webhook_token_sha256, &i.webhook_token_encrypted))
        .ok_or(DumpError::UnknownIntegration(integration_id))
}

/// The newest `last` webhooks of `integration_id` still in the webhook stream, oldest first.
///
/// A headers-only consumer filtered to the integration's subjects finds the sequences
/// without moving any body; only the `last` kept are then fetched whole. `progress` sees
/// (sequences read, sequences to read) after each batch of the first pass.
pub async fn newest(
    bus: &Bus,
    integration_id: Uuid,
    last: usize,
    mut progress: impl FnMut(u64, u64),
) -> Result<Vec<CapturedWebhook>, DumpError> {
    if !bus.is_connected() {
        return Err(DumpError::NatsUnavailable);
    }
    let name = bus.topology().webhooks_stream();
    let stream = bus
        .jetstream()
        .get_stream(&name)
        .await
        .map_err(|error| match error.kind() {
            GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                DumpError::StreamMissing(name.clone())
            }
            _ => bus_error(format!("stream {name}: {error}")),
        })?;
    let sequences = newest_sequences(&stream, bus, integration_id, last, &mut progress).await?;
    let mut webhooks = Vec::with_capacity(sequences.len());
    for sequence in sequences {
        let stored = match stream.get_raw_message(sequence).await {
            Ok(stored) => stored,
            // Aged out between the two passes: it is no longer held.
            Err(error) if error.kind() == stream::RawMessageErrorKind::NoMessageFound => continue,
            Err(error) => return Err(bus_error(error)),
        };
        webhooks.push(captured(sequence, &stored.payload, integration_id)?);
    }
    Ok(webhooks)
}

/// The stream sequences of the newest `last` webhooks of the integration, oldest first.
async fn newest_sequences(
    stream: &stream::Stream,
    bus: &Bus,
    integration_id: Uuid,
    last: usize,
    progress: &mut impl FnMut(u64, u64),
) -> Result<Vec<u64>, DumpError> {
    let filter = bus
        .topology()
        .webhook_subject(&integration_id.to_string(), "*");
    let consumer = stream
        .create_consumer(crate::stream_read::one_pass(filter, true))
        .await
        .map_err(bus_error)?;
    // What is there now; webhooks arriving while we read are left for the next dump.
    let total = consumer.cached_info().num_pending;
    let mut kept = VecDeque::with_capacity(last.min(BATCH));
    let mut read = 0u64;
    while read < total {
        let mut batch = consumer
            .fetch()
            .max_messages(BATCH)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .map_err(bus_error)?;
        let before = read;
        while let Some(message) = batch.next().await {
            let message = message.map_err(bus_error)?;
            let sequence = message.info().map_err(bus_error)?.stream_sequence;
            read += 1;
            if kept.len() == last {
                kept.pop_front();
            }
            kept.push_back(sequence);
        }
        if read == before {
            // Fewer than counted: the oldest aged out meanwhile.
            break;
        }
        progress(read, total);
    }
    Ok(kept.into())
}

/// A stored message back into what Chatra sent.
fn captured(
    sequence: u64,
    payload: &[u8],
    integration_id: Uuid,
) -> Result<CapturedWebhook, DumpError> {
    let message = ChatraWebhookReceived::decode(payload)
        .map_err(|e| bus_error(format!("message {sequence} is not a stored webhook: {e}")))?;
    if message.integration_id != integration_id.to_string() {
        return Err(bus_error(format!(
            "message {sequence} belongs to another integration"
        )));
    }
    let body = deskie_proto::webhook_body::decode(&message)
        .map_err(|e| bus_error(format!("message {sequence}: {e}")))?;
    Ok(CapturedWebhook {
        sequence,
        received_at: message
            .received_at
            .as_ref()
            .and_then(|at| DateTime::from_timestamp_millis(deskie_proto::timestamp_to_millis(at))),
        event_name: message.event_name,
        body,
    })
}
