//! The relayed case events (`{prefix}.events.case.>` on `{prefix}_events`) from a given
//! stream sequence on, in order and without gaps, for one live-update connection.
//!
//! Each connection reads through an ephemeral pull consumer of its own (no acks, in memory,
//! removed by the server a minute after its reader went away). The tail remembers the next
//! stream sequence it needs; whenever the consumer misbehaves (a skipped consumer sequence,
//! missed heartbeats, a deleted consumer, a lost connection) it is replaced by a new one
//! starting exactly there. async-nats' own ordered consumer is not used: when it recreates
//! itself before its first message it starts over from the first message of the stream,
//! which would replay the whole history to a client that asked for new events only.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use bytes::Bytes;
use deskie_bus::{Bus, BusError};
use futures::StreamExt;

/// Events pulled ahead of the client per connection: the most a slow client leaves waiting
/// in memory. Beyond that, nothing is read from JetStream until the client takes more.
const READ_AHEAD: usize = 64;
/// How long the server keeps a consumer nobody pulls from (a client that went away).
const INACTIVE_THRESHOLD: Duration = Duration::from_secs(60);
/// Replacing the consumer this many times in a row without a message in between gives up:
/// the connection ends, and the client reconnects with its `Last-Event-ID`.
const MAX_RECREATES: u32 = 3;

/// Where a tail starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailStart {
    /// Right after the event with this stream sequence (a client's `Last-Event-ID`).
    After(u64),
    /// With the first event relayed after the tail was opened.
    New,
}

/// Why a tail cannot be opened or go on.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// NATS is unreachable, or refused the stream or the consumer.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// `After(k)` names a sequence the stream has not reached: no event of it had that id.
    #[error("sequence {asked} is beyond the last event ({last})")]
    Ahead {
        /// The sequence asked for.
        asked: u64,
        /// The stream's last sequence.
        last: u64,
    },
}

/// One relayed case event.
#[derive(Debug, Clone)]
pub struct TailedEvent {
    /// Its stream sequence: the SSE `id`.
    pub sequence: u64,
    /// The encoded `deskie.events.v1.Envelope`.
    pub payload: Bytes,
}

/// A gap-free reader of the case events from a sequence on.
pub struct CaseEventTail {
    bus: Bus,
    /// The stream sequence of the next event to hand out.
    next: u64,
    messages: Option<pull::Stream>,
    /// The consumer sequence the current consumer must deliver next.
    expected: u64,
    recreates: u32,
}

impl std::fmt::Debug for CaseEventTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseEventTail")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl CaseEventTail {
    /// Opens a tail at `start` and creates its consumer, so that every event relayed once
    /// this returns is seen. `After(k)` beyond the stream's last sequence is refused.
    pub async fn open(bus: &Bus, start: TailStart) -> Result<Self, TailError> {
        let last = last_sequence(bus).await?;
        let next = match start {
            TailStart::After(asked) if asked > last => {
                return Err(TailError::Ahead { asked, last });
            }
            TailStart::After(sequence) => sequence + 1,
            TailStart::New => last + 1,
        };
        let mut tail = Self {
            bus: bus.clone(),
            next,
            messages: None,
            expected: 1,
            recreates: 0,
        };
        tail.messages = Some(tail.subscribe().await?);
        Ok(tail)
    }

    /// The next case event, waiting for it as long as it takes. Cancel-safe: dropping the
    /// future loses nothing (the position is only advanced when an event is returned).
    pub async fn next(&mut self) -> Result<TailedEvent, TailError> {
        loop {
            let Some(messages) = self.messages.as_mut() else {
                if self.recreates >= MAX_RECREATES {
                    return Err(BusError::Other("the live consumer keeps failing".into()).into());
                }
                self.recreates += 1;
                if self.recreates > 1 {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                self.messages = Some(self.subscribe().await?);
                continue;
            };
            let message = match messages.next().await {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    tracing::debug!(%error, next = self.next, "live consumer replaced");
                    self.messages = None;
                    continue;
                }
                None => {
                    self.messages = None;
                    continue;
                }
            };
            let Ok(info) = message.info() else {
                self.messages = None;
                continue;
            };
            let (consumer_sequence, sequence) = (info.consumer_sequence, info.stream_sequence);
            if consumer_sequence != self.expected || sequence < self.next {
                // A message went missing between the server and us (or arrived twice):
                // start a new consumer exactly where the client is.
                tracing::debug!(
                    consumer_sequence,
                    expected = self.expected,
                    "live consumer skipped; replaced"
                );
                self.messages = None;
                continue;
            }
            self.expected += 1;
            self.next = sequence + 1;
            self.recreates = 0;
            return Ok(TailedEvent {
                sequence,
                payload: message.payload.clone(),
            });
        }
    }

    /// A new ephemeral consumer from `self.next`, and its message stream.
    async fn subscribe(&mut self) -> Result<pull::Stream, BusError> {
        let topology = self.bus.topology();
        let config = pull::Config {
            filter_subject: topology.events_of_type("case"),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: self.next,
            },
            ack_policy: AckPolicy::None,
            inactive_threshold: INACTIVE_THRESHOLD,
            memory_storage: true,
            num_replicas: 1,
            ..Default::default()
        };
        let refused = |e: &dyn std::fmt::Display| BusError::Provision {
            what: "a live-update consumer".into(),
            reason: e.to_string(),
        };
        let stream = events_stream(&self.bus).await?;
        let consumer = stream
            .create_consumer(config)
            .await
            .map_err(|e| refused(&e))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(READ_AHEAD)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| refused(&e))?;
        self.expected = 1;
        Ok(messages)
    }
}

/// The events stream, provisioned first when it does not exist yet (an api started before
/// anything was relayed).
async fn events_stream(bus: &Bus) -> Result<async_nats::jetstream::stream::Stream, BusError> {
    if !bus.is_connected() {
        return Err(BusError::Unavailable);
    }
    let name = bus.topology().events_stream();
    if let Ok(stream) = bus.jetstream().get_stream(&name).await {
        return Ok(stream);
    }
    bus.provision().await?;
    bus.jetstream()
        .get_stream(&name)
        .await
        .map_err(|e| BusError::Provision {
            what: format!("stream {name}"),
            reason: e.to_string(),
        })
}

/// The events stream's last sequence (0 when empty).
async fn last_sequence(bus: &Bus) -> Result<u64, BusError> {
    let stream = events_stream(bus).await?;
    Ok(stream.cached_info().state.last_sequence)
}
