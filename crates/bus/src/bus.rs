//! The NATS connection and durable publishing.

use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::{Client, ConnectOptions, HeaderMap, jetstream};
use bytes::Bytes;

use crate::Topology;

/// How long a publish waits for JetStream's acknowledgement before giving up. A timeout
/// does not mean "not stored": the caller retries with the same `Nats-Msg-Id`.
const PUBLISH_ACK_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the bus could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Not connected to NATS right now; the client keeps reconnecting in the background.
    #[error("NATS is unavailable")]
    Unavailable,
    /// JetStream did not acknowledge the publish in time (it may still have stored it).
    #[error("JetStream did not acknowledge in time")]
    AckTimeout,
    /// The stream is at its byte or message limit (or the server's storage is full): with
    /// `discard: new` JetStream refuses new messages until old ones expire or the limit is
    /// raised. Retrying later may succeed.
    #[error("the stream is full: {0}")]
    StreamFull(String),
    /// JetStream refused the publish (message too large, …).
    #[error("JetStream refused the publish: {0}")]
    Rejected(String),
    /// Creating or updating a stream or consumer failed.
    #[error("cannot provision {what}: {reason}")]
    Provision {
        /// The stream or consumer.
        what: String,
        /// The server's answer.
        reason: String,
    },
    /// Anything else the client reported.
    #[error("NATS error: {0}")]
    Other(String),
}

/// What JetStream said about a successful publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The stream sequence the message is stored at.
    pub sequence: u64,
    /// True when the `Nats-Msg-Id` was seen before (the message was stored once, earlier).
    pub duplicate: bool,
}

/// One message for [`Bus::publish_all`].
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Subject.
    pub subject: String,
    /// `Nats-Msg-Id`.
    pub message_id: String,
    /// Headers (trace context, event type, …).
    pub headers: HeaderMap,
    /// Payload.
    pub payload: Bytes,
}

/// A connection to NATS plus the deployment's [`Topology`].
#[derive(Debug, Clone)]
pub struct Bus {
    client: Client,
    jetstream: jetstream::Context,
    topology: Topology,
}

impl Bus {
    /// NATS's default `max_payload` (1 MiB): what a message may carry, headers included,
    /// until the server's `INFO` says otherwise.
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

    /// How often the client pings the server. Two pings without a pong and the third tick
    /// drops the connection (async-nats's fixed limit), so a silent peer is noticed within
    /// about three intervals instead of the kernel's two hours, and the client reconnects.
    pub const PING_INTERVAL: Duration = Duration::from_secs(2);

    /// Connects to `url`. It returns at once even while NATS is down: the client keeps
    /// reconnecting in the background (at most a second apart), so a service started
    /// before NATS, or outliving a NATS restart, recovers by itself.
    pub async fn connect(
        url: &str,
        topology: Topology,
        client_name: &str,
    ) -> Result<Self, BusError> {
        let client = ConnectOptions::new()
            .name(client_name)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .ping_interval(Self::PING_INTERVAL)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64 * 100).min(1000))
            })
            .connect(url)
            .await
            .map_err(|e| BusError::Other(e.to_string()))?;
        // Give the first connection a moment, so a healthy start does not begin "unavailable".
        for _ in 0..40 {
            if client.connection_state() == State::Connected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(PUBLISH_ACK_TIMEOUT)
            .max_ack_inflight(4096)
            .build(client.clone());
        Ok(Self {
            client,
            jetstream,
            topology,
        })
    }

    /// The deployment's names.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The JetStream context, for consumers and tests.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// The core client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The largest message the events stream takes, headers included: the server's
    /// `max_payload` (from its `INFO`; [`Bus::DEFAULT_MAX_MESSAGE_BYTES`] before the first
    /// connection), or the stream's `max_message_size` when the topology sets a smaller one.
    pub fn max_message_bytes(&self) -> usize {
        let server = match self.client.max_payload() {
            0 => Self::DEFAULT_MAX_MESSAGE_BYTES,
            known => known,
        };
        let events = self.topology.events_stream();
        self.topology
            .stream_configs()
            .into_iter()
            .find(|config| config.name == events)
            .and_then(|config| usize::try_from(config.max_message_size).ok())
            .filter(|&limit| limit > 0)
            .map_or(server, |stream| stream.min(server))
    }

    /// Whether the client is connected right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Creates or updates every stream of the topology. Idempotent; safe to run from every
    /// service at start-up.
    pub async fn provision(&self) -> Result<(), BusError> {
        if !self.is_connected() {
            return Err(BusError::Unavailable);
        }
        for config in self.topology.stream_configs() {
            let name = config.name.clone();
            self.jetstream
                .create_or_update_stream(config)
                .await
                .map_err(|e| BusError::Provision {
                    what: format!("stream {name}"),
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Publishes `payload` and returns once JetStream has stored it (PubAck).
    ///
    /// `message_id` becomes `Nats-Msg-Id`, so repeating a publish (after a timeout, or for a
    /// redelivered webhook) stores it once. When the stream is missing (a NATS server that
    /// lost its store) the streams are provisioned again and the publish retried once.
    pub async fn publish_durable(
        &self,
        subject: String,
        message_id: &str,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<PublishOutcome, BusError> {
        if !self.is_connected() {
            return Err(BusError::Unavailable);
        }
        match self
            .try_publish(&subject, message_id, &headers, &payload)
            .await
        {
            Err(BusError::Rejected(reason))
                if reason == PublishErrorKind::StreamNotFound.to_string() =>
            {
                tracing::warn!(subject, "stream missing; provisioning again");
                self.provision().await?;
                self.try_publish(&subject, message_id, &headers, &payload)
                    .await
            }
            other => other,
        }
    }

    /// Sends every message before awaiting any acknowledgement (pipelined), and returns one
    /// result per message, in order. Sending stops at the first message that cannot be sent;
    /// the rest come back as [`BusError::Unavailable`] without having been sent.
    ///
    /// Callers that need per-key order put at most one message per key in a batch: a
    /// failed-then-retried publish lands behind later ones (nats-server#2384).
    pub async fn publish_all(&self, batch: Vec<Outgoing>) -> Vec<Result<PublishOutcome, BusError>> {
        let total = batch.len();
        let mut pending = Vec::with_capacity(total);
        if self.is_connected() {
            for message in batch {
                let publish = PublishMessage::build()
                    .payload(message.payload)
                    .headers(message.headers)
                    .message_id(message.message_id);
                match self.jetstream.send_publish(message.subject, publish).await {
                    Ok(ack) => pending.push(Ok(ack)),
                    Err(error) => {
                        pending.push(Err(publish_error(error)));
                        break;
                    }
                }
            }
        }
        let sent = pending.len();
        let mut results = Vec::with_capacity(total);
        for entry in pending {
            results.push(match entry {
                Ok(ack) => ack.await.map_err(publish_error).map(|ack| PublishOutcome {
                    sequence: ack.sequence,
                    duplicate: ack.duplicate,
                }),
                Err(error) => Err(error),
            });
        }
        results.extend((sent..total).map(|_| Err(BusError::Unavailable)));
        results
    }

    async fn try_publish(
        &self,
        subject: &str,
        message_id: &str,
        headers: &HeaderMap,
        payload: &Bytes,
    ) -> Result<PublishOutcome, BusError> {
        let publish = PublishMessage::build()
            .payload(payload.clone())
            .headers(headers.clone())
            .message_id(message_id);
        let ack_future = self
            .jetstream
            .send_publish(subject.to_owned(), publish)
            .await
            .map_err(publish_error)?;
        let ack = ack_future.await.map_err(publish_error)?;
        Ok(PublishOutcome {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}

/// Maps the client's publish errors onto what callers act on.
pub(crate) fn publish_error(error: async_nats::jetstream::context::PublishError) -> BusError {
    match error.kind() {
        PublishErrorKind::TimedOut => BusError::AckTimeout,
        PublishErrorKind::BrokenPipe => BusError::Unavailable,
        PublishErrorKind::StreamNotFound => {
            BusError::Rejected(PublishErrorKind::StreamNotFound.to_string())
        }
        _ => match stream_full(&error) {
            Some(reason) => BusError::StreamFull(reason),
            None => BusError::Rejected(error.to_string()),
        },
    }
}

/// The server's reason when `error` says the stream (or the server's store) is full:
/// error code 10077 with "maximum bytes/messages … exceeded", or 10047 (insufficient
/// storage resources).
fn stream_full(error: &async_nats::jetstream::context::PublishError) -> Option<String> {
    let server =
        std::error::Error::source(error)?.downcast_ref::<async_nats::jetstream::Error>()?;
    let full = match server.error_code() {
        ErrorCode::STREAM_STORE_FAILED => server.to_string().contains("maximum"),
        ErrorCode::STORAGE_RESOURCES_EXCEEDED => true,
        _ => false,
    };
    full.then(|| server.to_string())
}
