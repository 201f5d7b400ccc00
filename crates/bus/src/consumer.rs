//! Durable pull consumers: the one loop every deskie service consumes JetStream with.
//!
//! The rules it enforces (`reference/reliability.md` §3.3):
//! - a message is acknowledged only after the handler returned `Ok`, i.e. after the
//!   handler's PostgreSQL transaction committed; a crash in between means a redelivery,
//!   which the handler's inbox turns into a no-op;
//! - an outage (PostgreSQL or NATS unreachable, a pool timeout, a serialization failure:
//!   [`HandlerError::Unavailable`]) is retried **in place**, with capped backoff, for as
//!   long as it lasts; the message stays in our hands (kept alive with in-progress acks,
//!   see `held.rs`), so waiting out an outage spends none of its delivery budget;
//! - a failure that may pass ([`HandlerError::Retry`]) is nak'ed **with a delay** (a plain
//!   nak would redeliver at once, in a hot loop), growing with each delivery, and spends
//!   one delivery of the budget ([`ConsumerSpec::max_deliver`]);
//! - poison, or a spent budget, becomes a dead-letter record before the message is
//!   terminated. JetStream itself never gives up on a message (the consumer's server-side
//!   `max_deliver` is unlimited): if the dead letter cannot be written, the message comes
//!   back until it can, so nothing vanishes silently.

use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy};
use bytes::Bytes;
use futures::{FutureExt, StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::held::Held;
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
    /// Deliveries a message may spend on [`HandlerError::Retry`] before it is dead-lettered.
    /// Enforced by the runner, not by JetStream (whose limit would drop the message with
    /// only an advisory when the dead letter could not be written).
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
    /// Upper bound of the pause between in-place attempts while a dependency is
    /// unavailable: short, so work resumes within seconds of the outage's end.
    pub max_outage_delay: Duration,
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
            max_outage_delay: Duration::from_secs(5),
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
        doubling(self.first_retry_delay, delivered).min(self.max_retry_delay)
    }

    /// The pause after the `attempt`-th in-place attempt that met an outage.
    pub fn outage_delay(&self, attempt: u32) -> Duration {
        doubling(self.first_retry_delay, i64::from(attempt)).min(self.max_outage_delay)
    }

    /// Deliveries past the budget after which a message is dead-lettered without being
    /// handled again: it came back that often without ever being settled (the handler
    /// crashed the process, or its dead letter could not be written). Messages held
    /// alongside a message that crashes the process each time share its fate; their dead
    /// letters say so, and `deskie redrive` puts them back.
    pub fn unsettled_limit(&self) -> i64 {
        self.max_deliver.saturating_add(UNSETTLED_SPARE)
    }

    /// How often held messages get an in-progress ack.
    fn keep_alive_period(&self) -> Duration {
        (self.ack_wait / 3).max(Duration::from_millis(100))
    }
}

/// Deliveries a message may come back unsettled beyond its budget (crashes, a dead letter
/// that could not be written) before it is dead-lettered unhandled.
const UNSETTLED_SPARE: i64 = 3;

/// `first` doubled per step after the first, saturating.
fn doubling(first: Duration, step: i64) -> Duration {
    let exponent = u32::try_from(step.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    first.saturating_mul(2u32.saturating_pow(exponent))
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
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandlerError {
    /// Something we run on is away (PostgreSQL unreachable, pool exhausted, a
    /// serialization failure, NATS unavailable): wait and try again in place, for as long
    /// as it takes, without spending the message's delivery budget.
    #[error("unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// Try again later (a peer busy, a failure that may pass); spends one delivery of the
    /// budget. `after` overrides the backoff.
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
    /// Given back unhandled (shutdown during an outage), for prompt redelivery.
    Released,
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
        // Unlimited: the runner enforces the budget and writes the dead letter; a limit
        // here would let JetStream drop a message whose dead letter could not be written.
        max_deliver: -1,
        max_ack_pending: spec.max_ack_pending,
        ..Default::default()
    };
    // Create or update: a consumer made by an older release (with a server-side
    // `max_deliver`, say) takes the settings above.
    match stream.create_consumer(config.clone()).await {
        Ok(consumer) => Ok(consumer),
        Err(error) => {
            tracing::warn!(consumer = %spec.durable_name, %error, "consumer settings not updated; using it as it is");
            stream
                .get_or_create_consumer(&spec.durable_name, config)
                .await
                .map_err(|e| BusError::Provision {
                    what: format!("consumer {}", spec.durable_name),
                    reason: e.to_string(),
                })
        }
    }
}

/// Runs `handler` over the consumer until `shutdown` is cancelled.
///
/// Messages are taken out of the subscription as they arrive and held (kept alive with
/// in-progress acks) until settled; up to `concurrency` are handled at once, one at a time
/// per lane. A lost connection or a deleted consumer is not fatal: the loop waits a second
/// and sets the consumer up again.
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
            .heartbeat(PULL_HEARTBEAT)
            .expires(PULL_EXPIRES)
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
        pull_round(&bus, &spec, &handler, messages, &shutdown).await;
        wait_or_shutdown(&shutdown, Duration::from_millis(200)).await;
    }
}

/// How often the server tells an idle pull it is alive. Two missed in a row end the pull
/// and a new one starts. Under load (`bench-greeting`, `bench-cases`) a pull now and then
/// went silent while messages waited (no message, no heartbeat; seen with async-nats 0.51
/// and nats-server 2.9, cause not found): at 5 s that consumer stood still for 10 s.
const PULL_HEARTBEAT: Duration = Duration::from_secs(1);

/// How long one pull request lasts before the client asks again.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// Handles what one subscription delivers until it fails or `shutdown`.
async fn pull_round<H: Handler>(
    bus: &Bus,
    spec: &ConsumerSpec,
    handler: &H,
    messages: pull::Stream,
    shutdown: &CancellationToken,
) {
    let held = Held::default();
    let capacity = usize::try_from(spec.max_ack_pending.max(1)).unwrap_or(64);
    let (sender, taken) = futures::channel::mpsc::channel(capacity);
    // Intake: every message is held the moment it arrives. When the subscription fails
    // the channel closes, what was taken is still handled, and the round ends.
    let intake = {
        let held = held.clone();
        async move {
            let mut sender = sender;
            let mut messages = std::pin::pin!(messages);
            while let Some(next) = messages.next().await {
                let next = next.map(|message| {
                    let ticket = held.hold(&message);
                    (message, ticket)
                });
                let failed = next.is_err();
                if futures::SinkExt::send(&mut sender, next).await.is_err() || failed {
                    break;
                }
            }
            drop(sender);
            std::future::pending::<()>().await;
        }
    };
    let lanes = Lanes::default();
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(spec.concurrency.max(1)));
    let work = taken
        .take_until(shutdown.cancelled())
        // Each message queues behind the one before it in its lane, then waits for one of
        // `concurrency` permits. Only its own lane waits: a message of a busy lane no longer
        // holds back the messages behind it (case events come in runs of one case, so it
        // used to serialise a whole consumer behind one case at a time).
        .map_ok(|(message, ticket)| {
            let turn = lanes.join(handler.lane(&message));
            let (held, permits) = (held.clone(), permits.clone());
            async move {
                let turn = turn.wait().await;
                // Never closed, so a permit always comes.
                let permit = permits.acquire_owned().await.ok();
                process(bus, spec, handler, message, shutdown).await;
                held.release(ticket);
                drop(permit);
                drop(turn);
            }
        })
        // On shutdown no new message is taken, but the ones in hand are finished: a
        // message's transaction and its ack belong together. How many are in hand is
        // bounded by `max_ack_pending` (JetStream delivers no more unacknowledged).
        .try_for_each_concurrent(None, |handled| async move {
            handled.await;
            Ok(())
        });
    let outcome = tokio::select! {
        outcome = work => outcome,
        () = intake => Ok(()),
        () = held.keep_alive(spec.keep_alive_period()) => Ok(()),
    };
    if let Err(error) = outcome {
        tracing::warn!(consumer = %spec.durable_name, %error, "pull interrupted");
    }
    if held.len() > 0 {
        tracing::debug!(consumer = %spec.durable_name, left = held.len(), "giving back messages not handled");
        held.give_back().await;
    }
}

/// Handles one message and settles it: ack, delayed nak, dead letter + term, or (when
/// `shutdown` comes during an outage) a plain nak.
pub async fn process<H: Handler>(
    bus: &Bus,
    spec: &ConsumerSpec,
    handler: &H,
    message: async_nats::jetstream::Message,
    shutdown: &CancellationToken,
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
        let outcome = if delivered > spec.unsettled_limit() {
            Some(Err(HandlerError::Poison {
                reason: format!(
                    "delivered {delivered} times without being settled (the handler may crash the process, or its dead letter could not be written)"
                ),
            }))
        } else {
            handle_through_outages(spec, handler, &delivery, shutdown).await
        };
        let disposition = match outcome {
            None => {
                let _ = message.ack_with(AckKind::Nak(None)).await;
                Disposition::Released
            }
            Some(outcome) => settle(bus, spec, &message, &delivery, outcome).await,
        };
        tracing::debug!(?disposition, "message settled");
        disposition
    }
    .instrument(span)
    .await
}

/// Calls the handler until it gives anything but [`HandlerError::Unavailable`], pausing
/// with capped backoff in between; `None` when `shutdown` came first.
async fn handle_through_outages<H: Handler>(
    spec: &ConsumerSpec,
    handler: &H,
    delivery: &Delivery,
    shutdown: &CancellationToken,
) -> Option<Result<(), HandlerError>> {
    let mut attempt: u32 = 0;
    loop {
        match handler.handle(delivery).await {
            Err(HandlerError::Unavailable { reason }) => {
                attempt = attempt.saturating_add(1);
                let delay = spec.outage_delay(attempt);
                if attempt == 1 || attempt.is_power_of_two() {
                    tracing::warn!(%reason, attempt, ?delay, "a dependency is unavailable; waiting it out (the delivery budget is not spent)");
                } else {
                    tracing::debug!(%reason, attempt, ?delay, "still unavailable");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            outcome => {
                if attempt > 0 {
                    tracing::info!(
                        attempts = attempt + 1,
                        "dependency back; message handled after the outage"
                    );
                }
                return Some(outcome);
            }
        }
    }
}

/// Acks, naks with a delay, or dead-letters, as the handler's outcome and the budget say.
async fn settle(
    bus: &Bus,
    spec: &ConsumerSpec,
    message: &async_nats::jetstream::Message,
    delivery: &Delivery,
    outcome: Result<(), HandlerError>,
) -> Disposition {
    match outcome {
        Ok(()) => {
            if let Err(error) = message.double_ack().await {
                // The work is committed; a redelivery will be a no-op in the inbox.
                tracing::warn!(%error, "ack not confirmed");
            }
            Disposition::Acked
        }
        Err(HandlerError::Retry { reason, after }) if delivery.delivered < spec.max_deliver => {
            let delay = after.unwrap_or_else(|| spec.retry_delay(delivery.delivered));
            tracing::warn!(%reason, ?delay, "handler failed; will retry");
            let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
            Disposition::Retried(delay)
        }
        Err(error) => {
            let reason = error.to_string();
            tracing::error!(%reason, "giving up on message; writing a dead letter");
            match dead_letter::record(bus, &spec.durable_name, &spec.stream, delivery, &reason)
                .await
            {
                Ok(()) => {
                    let _ = message.ack_with(AckKind::Term).await;
                    Disposition::DeadLettered
                }
                Err(dlq_error) => {
                    // Never drop a message we could not record: JetStream has no delivery
                    // limit, so it comes back and the dead letter is tried again.
                    let delay = spec.max_retry_delay;
                    tracing::error!(%dlq_error, "dead letter not written; the message comes back");
                    let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
                    Disposition::Retried(delay)
                }
            }
        }
    }
}

/// The last message of each busy lane; a lane's entry goes away with its last message.
#[derive(Clone, Default)]
struct Lanes {
    last: std::sync::Arc<std::sync::Mutex<LastOfLane>>,
    joined: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Per busy lane: the ticket of its last message and that message's end.
type LastOfLane = std::collections::HashMap<String, (u64, futures::future::Shared<Done>)>;

/// Resolves when a message's handling ended (its sender dropped).
type Done = futures::channel::oneshot::Receiver<()>;

/// A message's place in its lane: what it waits for, and what it releases when dropped.
struct Turn {
    after: Option<futures::future::Shared<Done>>,
    lane: Option<(Lanes, String, u64)>,
    _done: futures::channel::oneshot::Sender<()>,
}

impl Lanes {
    /// Queues a message at the end of `lane` (`None`: no lane, no wait). Called in
    /// delivery order, so each lane keeps it.
    fn join(&self, lane: Option<String>) -> Turn {
        let (done, finished) = futures::channel::oneshot::channel();
        let Some(lane) = lane else {
            return Turn {
                after: None,
                lane: None,
                _done: done,
            };
        };
        let ticket = self
            .joined
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let after = last
            .insert(lane.clone(), (ticket, finished.shared()))
            .map(|(_, previous)| previous);
        Turn {
            after,
            lane: Some((self.clone(), lane, ticket)),
            _done: done,
        }
    }
}

impl Turn {
    /// Waits until the message before it in its lane was handled.
    async fn wait(mut self) -> Self {
        if let Some(previous) = self.after.take() {
            // `Canceled` is the only outcome: the sender is dropped, never used.
            let _ = previous.await;
        }
        self
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // The lane's entry goes when its last message is done.
        if let Some((lanes, lane, ticket)) = self.lane.take() {
            let mut last = lanes.last.lock().unwrap_or_else(|e| e.into_inner());
            if last.get(&lane).is_some_and(|(newest, _)| *newest == ticket) {
                last.remove(&lane);
            }
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
