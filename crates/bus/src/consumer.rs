//! Durable pull consumers: the one loop every deskie service consumes JetStream with.
//!
//! The rules it enforces (`reference/reliability.md` §3.3):
//! - a message is acknowledged only after the handler returned `Ok`, i.e. after the
//!   handler's PostgreSQL transaction committed; a crash in between means a redelivery,
//!   which the handler's inbox turns into a no-op;
//! - a transient failure is nak'ed **with a delay** (a plain nak would redeliver at once,
//!   in a hot loop), growing with each delivery;
//! - `max_deliver` is finite: on the last delivery, or for a poison message, a dead-letter
//!   record is written before the message is terminated, so nothing vanishes silently.

use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Bus, BusError, Topology, dead_letter};

/// How a consumer is set up.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The stream to read.
    pub stream: String,
    /// Durable name (see [`crate::Topology::consumer_name`]).
    pub durable_name: String,
    /// Subject filter within the stream.
    pub filter_subject: String,
    /// How long JetStream waits for an ack before redelivering; must exceed the handler's p99.
    pub ack_wait: Duration,
    /// Deliveries before the message is dead-lettered.
    pub max_deliver: i64,
    /// Unacknowledged messages JetStream hands out at once.
    pub max_ack_pending: i64,
    /// Messages handled at once by one runner. 1 keeps delivery order; more is for handlers
    /// that serialise what must be serialised themselves (routing: the case stream lock).
    pub concurrency: usize,
    /// First retry delay; doubled per delivery up to `max_retry_delay`.
    pub first_retry_delay: Duration,
    /// Upper bound of the retry delay.
    pub max_retry_delay: Duration,
}

impl ConsumerSpec {
    /// The defaults we run with: 30 s ack wait, 7 deliveries, 1 s → 60 s retry delays.
    pub fn new(stream: String, durable_name: String, filter_subject: String) -> Self {
        Self {
            stream,
            durable_name,
            filter_subject,
            ack_wait: Duration::from_secs(30),
            max_deliver: 7,
            max_ack_pending: 64,
            concurrency: 1,
            first_retry_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(60),
        }
    }

    /// The durable consumer `{prefix}_{service}` of every case event (`{prefix}_events`,
    /// `{prefix}.events.case.>`), with the defaults of [`ConsumerSpec::new`]: what the
    /// projector, rules, outbound and agent-sync each follow.
    pub fn case_events(topology: &Topology, service: &str) -> Self {
        Self::new(
            topology.events_stream(),
            topology.consumer_name(service),
            topology.events_of_type("case"),
        )
    }

    /// The delay before delivery number `delivered + 1`.
    pub fn retry_delay(&self, delivered: i64) -> Duration {
        let exponent = u32::try_from(delivered.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
        self.first_retry_delay
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max_retry_delay)
    }
}

/// One message, as a handler sees it.
#[derive(Debug)]
pub struct Delivery {
    /// The subject it was published on.
    pub subject: String,
    /// The payload.
    pub payload: Bytes,
    /// Its headers (trace context, `Nats-Msg-Id`, …).
    pub headers: Option<HeaderMap>,
    /// Stream sequence.
    pub stream_sequence: u64,
    /// How many times it has been delivered, this time included.
    pub delivered: i64,
}

impl Delivery {
    /// The `Nats-Msg-Id` the publisher set: the key for a handler's inbox.
    pub fn message_id(&self) -> Option<&str> {
        self.headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str())
    }
}

/// What a handler could not do.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Try again later (database down, peer busy). `after` overrides the backoff.
    #[error("retry: {reason}")]
    Retry {
        /// Why.
        reason: String,
        /// When to try again, if the handler knows (e.g. a `Retry-After`).
        after: Option<Duration>,
    },
    /// The message can never be handled (malformed, refers to nothing): dead-letter it.
    #[error("poison: {reason}")]
    Poison {
        /// Why.
        reason: String,
    },
}

/// Handles one delivery; `Ok` means "committed, acknowledge it".
pub trait Handler: Send + Sync {
    /// Handles one delivery.
    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Deliveries with the same lane are handled one after the other, in delivery order,
    /// even when the runner handles several at once. `None`: no ordering constraint.
    fn lane(&self, _message: &async_nats::jetstream::Message) -> Option<String> {
        None
    }
}

/// What happened to one delivery, for logs, metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Handled and acknowledged.
    Acked,
    /// Nak'ed with this delay.
    Retried(Duration),
    /// Written to the dead letters and terminated.
    DeadLettered,
}

/// Creates the durable consumer if needed (updating its settings otherwise).
pub async fn ensure_consumer(
    bus: &Bus,
    spec: &ConsumerSpec,
) -> Result<async_nats::jetstream::consumer::Consumer<pull::Config>, BusError> {
    let stream = bus
        .jetstream()
        .get_stream(&spec.stream)
        .await
        .map_err(|e| BusError::Provision {
            what: format!("stream {}", spec.stream),
            reason: e.to_string(),
        })?;
    let config = pull::Config {
        durable_name: Some(spec.durable_name.clone()),
        filter_subject: spec.filter_subject.clone(),
        ack_policy: AckPolicy::Explicit,
        deliver_policy: DeliverPolicy::All,
        ack_wait: spec.ack_wait,
        max_deliver: spec.max_deliver,
        max_ack_pending: spec.max_ack_pending,
        ..Default::default()
    };
    stream
        .get_or_create_consumer(&spec.durable_name, config)
        .await
        .map_err(|e| BusError::Provision {
            what: format!("consumer {}", spec.durable_name),
            reason: e.to_string(),
        })
}

/// Runs `handler` over the consumer until `shutdown` is cancelled.
///
/// Messages are handled one at a time, in delivery order. A lost connection or a deleted
/// consumer is not fatal: the loop waits a second and sets the consumer up again.
pub async fn run<H: Handler>(
    bus: Bus,
    spec: ConsumerSpec,
    handler: H,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        let consumer = match ensure_consumer(&bus, &spec).await {
            Ok(consumer) => consumer,
            Err(error) => {
                tracing::warn!(consumer = %spec.durable_name, %error, "consumer not ready; retrying");
                // The stream may simply not exist yet (first start, or a server that lost
                // its store): provisioning is idempotent.
                let _ = bus.provision().await;
                wait_or_shutdown(&shutdown, Duration::from_secs(1)).await;
                continue;
            }
        };
        let messages = consumer
            .stream()
            .max_messages_per_batch(16)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(10))
            .messages()
            .await;
        let messages = match messages {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(consumer = %spec.durable_name, %error, "cannot pull; retrying");
                wait_or_shutdown(&shutdown, Duration::from_secs(1)).await;
                continue;
            }
        };
        // Up to `concurrency` messages are handled at once, each acknowledged when its own
        // handler finishes. On shutdown no new message is taken, but the ones in hand are
        // finished: a message's transaction and its ack belong together. A pull error ends
        // this round; the outer loop sets the consumer up again.
        let lanes = Lanes::default();
        let outcome = messages
            .take_until(shutdown.cancelled())
            // Sequential: a message whose lane is busy waits here, in delivery order, while
            // the messages already in hand keep being polled below.
            .and_then(|message| {
                let lane = handler.lane(&message);
                let lanes = lanes.clone();
                async move {
                    let guard = match lane {
                        Some(lane) => Some(lanes.enter(lane).await),
                        None => None,
                    };
                    Ok((message, guard))
                }
            })
            .try_for_each_concurrent(spec.concurrency.max(1), |(message, guard)| async {
                process(&bus, &spec, &handler, message).await;
                drop(guard);
                Ok(())
            })
            .await;
        if let Err(error) = outcome {
            tracing::warn!(consumer = %spec.durable_name, %error, "pull interrupted");
        }
        wait_or_shutdown(&shutdown, Duration::from_millis(200)).await;
    }
}

/// Handles one message and settles it: ack, delayed nak, or dead letter + term.
pub async fn process<H: Handler>(
    bus: &Bus,
    spec: &ConsumerSpec,
    handler: &H,
    message: async_nats::jetstream::Message,
) -> Disposition {
    let (stream_sequence, delivered) = match message.info() {
        Ok(info) => (info.stream_sequence, info.delivered),
        Err(_) => (0, 1),
    };
    let delivery = Delivery {
        subject: message.subject.to_string(),
        payload: message.payload.clone(),
        headers: message.headers.clone(),
        stream_sequence,
        delivered,
    };
    let span = tracing::info_span!(
        "consume",
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.destination.name = %delivery.subject,
        consumer = %spec.durable_name,
        stream_sequence,
        delivered,
    );
    deskie_telemetry::nats::set_parent_from_headers(&span, delivery.headers.as_ref());
    async {
        let outcome = handler.handle(&delivery).await;
        let disposition = match outcome {
            Ok(()) => {
                if let Err(error) = message.double_ack().await {
                    // The work is committed; a redelivery will be a no-op in the inbox.
                    tracing::warn!(%error, "ack not confirmed");
                }
                Disposition::Acked
            }
            Err(HandlerError::Retry { reason, after }) if delivered < spec.max_deliver => {
                let delay = after.unwrap_or_else(|| spec.retry_delay(delivered));
                tracing::warn!(%reason, ?delay, "handler failed; will retry");
                let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
                Disposition::Retried(delay)
            }
            Err(error) => {
                let reason = error.to_string();
                tracing::error!(%reason, "giving up on message; writing a dead letter");
                match dead_letter::record(bus, &spec.durable_name, &spec.stream, &delivery, &reason).await {
                    Ok(()) => {
                        let _ = message.ack_with(AckKind::Term).await;
                        Disposition::DeadLettered
                    }
                    Err(dlq_error) => {
                        // Never drop a message we could not record: try again later.
                        let delay = spec.max_retry_delay;
                        tracing::error!(%dlq_error, "dead letter not written; retrying the message");
                        let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
                        Disposition::Retried(delay)
                    }
                }
            }
        };
        tracing::debug!(?disposition, "message settled");
        disposition
    }
    .instrument(span)
    .await
}

/// One async mutex per busy lane; a lane's entry goes away with its last user.
#[derive(Clone, Default)]
struct Lanes {
    busy: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    >,
}

/// Held while a message of a lane is handled.
struct LaneGuard {
    lanes: Lanes,
    lane: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Lanes {
    async fn enter(&self, lane: String) -> LaneGuard {
        let mutex = match self.busy.lock() {
            Ok(mut busy) => busy.entry(lane.clone()).or_default().clone(),
            Err(_) => std::sync::Arc::new(tokio::sync::Mutex::new(())),
        };
        let guard = mutex.lock_owned().await;
        LaneGuard {
            lanes: self.clone(),
            lane,
            guard: Some(guard),
        }
    }
}

impl Drop for LaneGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        if let Ok(mut busy) = self.lanes.busy.lock()
            && busy
                .get(&self.lane)
                .is_some_and(|m| std::sync::Arc::strong_count(m) == 1)
        {
            busy.remove(&self.lane);
        }
    }
}

async fn wait_or_shutdown(shutdown: &CancellationToken, delay: Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(delay) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        let spec = ConsumerSpec::new("s".into(), "c".into(), "f".into());
        assert_eq!(spec.retry_delay(1), Duration::from_secs(1));
        assert_eq!(spec.retry_delay(2), Duration::from_secs(2));
        assert_eq!(spec.retry_delay(4), Duration::from_secs(8));
        assert_eq!(spec.retry_delay(30), Duration::from_secs(60));
        assert_eq!(spec.retry_delay(i64::MAX), Duration::from_secs(60));
    }
}
