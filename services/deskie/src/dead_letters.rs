//! `deskie dead-letters` and `deskie redrive`: list what consumers gave up on, and, once the
//! cause is fixed, put a dead letter back on its original subject so its consumer takes it
//! again.
//!
//! Every stream denies deletes, and dead letters never expire: a dead letter stays in
//! `{prefix}_dead_letters` until an operator settles it. A marker on
//! `{prefix}.dead_letters._redriven` records a redrive, one on
//! `{prefix}.dead_letters._discarded` a deliberate discard (`deskie discard`: the operator
//! decided the message is not to be handled); no consumer is named `_redriven` or
//! `_discarded` (consumer names start with the prefix), and the listing leaves settled
//! letters out.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use deskie_bus::Bus;
use deskie_bus::dead_letter::headers;
use futures::StreamExt;

/// On a redriven message: the dead letter's sequence it came from.
pub const REDRIVEN_FROM: &str = "Deskie-Redriven-From";
/// On a redrive marker: the dead letter's sequence.
pub const REDRIVEN_SEQUENCE: &str = "Deskie-Redriven-Sequence";
/// On a redrive marker: where the message went, `{stream sequence}` of the republished copy.
pub const REDRIVEN_TO: &str = "Deskie-Redriven-To";
/// On a discard marker: the dead letter's sequence.
pub const DISCARDED_SEQUENCE: &str = "Deskie-Discarded-Sequence";

/// One dead letter, as listed to an operator.
#[derive(Debug, Clone)]
pub struct DeadLetterSummary {
    /// Sequence in the dead-letter stream (what `deskie redrive` takes).
    pub sequence: u64,
    /// The consumer that gave up.
    pub consumer: String,
    /// Original subject.
    pub subject: String,
    /// Deliveries before giving up.
    pub deliveries: String,
    /// Why.
    pub reason: String,
}

/// A dead letter put back on its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redriven {
    /// The dead letter's sequence.
    pub sequence: u64,
    /// The consumer that will take it again.
    pub consumer: String,
    /// The original subject it was published to again.
    pub subject: String,
    /// Its new sequence in the original stream.
    pub new_sequence: u64,
}

/// Why a dead letter was not redriven; nothing was published.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    /// No message with that sequence in the dead-letter stream.
    #[error("dead letter #{0}: no such message in the dead-letter stream")]
    NotFound(u64),
    /// The message is a redrive marker, or lacks the dead-letter headers.
    #[error("dead letter #{0}: not a dead letter")]
    NotADeadLetter(u64),
    /// It was redriven before.
    #[error("dead letter #{sequence}: already redriven (to sequence {to})")]
    AlreadyRedriven {
        /// The dead letter.
        sequence: u64,
        /// Where it went then.
        to: String,
    },
    /// An operator discarded it.
    #[error("dead letter #{0}: discarded")]
    Discarded(u64),
    /// Its original subject is not one of deskie's streams under this prefix.
    #[error("dead letter #{sequence}: its subject {subject} is not a deskie stream's")]
    ForeignSubject {
        /// The dead letter.
        sequence: u64,
        /// Its original subject.
        subject: String,
    },
    /// NATS failed.
    #[error("NATS: {0}")]
    Bus(String),
}

fn bus_error(error: impl std::fmt::Display) -> RedriveError {
    RedriveError::Bus(error.to_string())
}

/// The subject of redrive markers.
fn marker_subject(bus: &Bus) -> String {
    bus.topology().dead_letter_subject("_redriven")
}

/// The subject of discard markers.
fn discard_subject(bus: &Bus) -> String {
    bus.topology().dead_letter_subject("_discarded")
}

/// Whether `message` is a marker rather than a dead letter.
fn is_marker(bus: &Bus, message: &async_nats::jetstream::Message) -> bool {
    let subject = message.subject.as_str();
    subject == marker_subject(bus) || subject == discard_subject(bus)
}

/// How an operator settled a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Settled {
    /// Redriven to this sequence.
    Redriven(String),
    /// Discarded.
    Discarded,
}

fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers.and_then(|h| h.get(name)).map(|v| v.as_str())
}

/// The whole dead-letter stream, oldest first, read in batches.
async fn read_all(bus: &Bus) -> Result<Vec<async_nats::jetstream::Message>, RedriveError> {
    let name = bus.topology().dead_letter_stream();
    let stream = bus
        .jetstream()
        .get_stream(&name)
        .await
        .map_err(|e| RedriveError::Bus(format!("stream {name}: {e}")))?;
    let consumer = stream
        .create_consumer(crate::stream_read::one_pass(String::new(), false))
        .await
        .map_err(bus_error)?;
    let mut all = Vec::new();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(256)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .map_err(bus_error)?;
        let before = all.len();
        while let Some(message) = batch.next().await {
            all.push(message.map_err(bus_error)?);
        }
        if all.len() == before {
            return Ok(all);
        }
    }
}

/// Dead-letter sequence → how it was settled, from the markers.
fn settled(bus: &Bus, messages: &[async_nats::jetstream::Message]) -> HashMap<u64, Settled> {
    let (redriven, discarded) = (marker_subject(bus), discard_subject(bus));
    messages
        .iter()
        .filter_map(|m| {
            let subject = m.subject.as_str();
            if subject == redriven {
                let sequence = header(m.headers.as_ref(), REDRIVEN_SEQUENCE)?
                    .parse()
                    .ok()?;
                let to = header(m.headers.as_ref(), REDRIVEN_TO).unwrap_or_default();
                Some((sequence, Settled::Redriven(to.to_owned())))
            } else if subject == discarded {
                let sequence = header(m.headers.as_ref(), DISCARDED_SEQUENCE)?
                    .parse()
                    .ok()?;
                Some((sequence, Settled::Discarded))
            } else {
                None
            }
        })
        .collect()
}

/// Up to `limit` dead letters neither redriven nor discarded, oldest first.
pub async fn list(bus: &Bus, limit: usize) -> Result<Vec<DeadLetterSummary>, RedriveError> {
    let messages = read_all(bus).await?;
    let redriven = settled(bus, &messages);
    Ok(messages
        .iter()
        .filter(|m| !is_marker(bus, m))
        .filter_map(|m| {
            let sequence = m.info().map(|i| i.stream_sequence).ok()?;
            let text = |name| {
                header(m.headers.as_ref(), name)
                    .unwrap_or_default()
                    .to_owned()
            };
            (!redriven.contains_key(&sequence)).then(|| DeadLetterSummary {
                sequence,
                consumer: text(headers::CONSUMER),
                subject: text(headers::SUBJECT),
                deliveries: text(headers::DELIVERIES),
                reason: text(headers::REASON),
            })
        })
        .take(limit)
        .collect())
}

/// Publishes dead letter `sequence` again on its original subject, with its original
/// headers (trace context included) plus [`REDRIVEN_FROM`], then records the redrive.
///
/// The copy gets a new `Nats-Msg-Id` (`redrive:{sequence}`): the original id may still be
/// inside the stream's duplicate window, where NATS would drop the copy. Every consumer of
/// that subject sees the copy; those that handled the original skip it through their inbox
/// (case events are keyed by event id) or their own idempotency, and the one that gave up
/// takes it. Redriving the same dead letter twice is refused.
pub async fn redrive(bus: &Bus, sequence: u64) -> Result<Redriven, RedriveError> {
    redrive_each(bus, &[sequence], |_, _| {})
        .await?
        .pop()
        .unwrap_or(Err(RedriveError::NotFound(sequence)))
}

/// [`redrive`] for each of `sequences` in order, reading the dead-letter stream once;
/// `progress` sees each outcome (with its index) as it happens. Fails as a whole only when
/// the stream cannot be read.
pub async fn redrive_each(
    bus: &Bus,
    sequences: &[u64],
    progress: impl FnMut(usize, &Result<Redriven, RedriveError>),
) -> Result<Vec<Result<Redriven, RedriveError>>, RedriveError> {
    settle_each(
        bus,
        sequences,
        async |sequence, letter| redrive_one(bus, sequence, letter).await,
        |redrove| Settled::Redriven(redrove.new_sequence.to_string()),
        progress,
    )
    .await
}

/// Marks each of `sequences` discarded, in order, reading the dead-letter stream once:
/// the operator decided it is not to be handled. It stays in the stream (deletes are
/// denied) but is no longer listed nor redriven. `progress` sees each outcome.
pub async fn discard_each(
    bus: &Bus,
    sequences: &[u64],
    progress: impl FnMut(usize, &Result<u64, RedriveError>),
) -> Result<Vec<Result<u64, RedriveError>>, RedriveError> {
    settle_each(
        bus,
        sequences,
        async |sequence, _| {
            let mut marker = HeaderMap::new();
            marker.insert(DISCARDED_SEQUENCE, sequence.to_string().as_str());
            bus.publish_durable(
                discard_subject(bus),
                &format!("discarded:{sequence}"),
                marker,
                Bytes::new(),
            )
            .await
            .map(|_| sequence)
            .map_err(bus_error)
        },
        |_| Settled::Discarded,
        progress,
    )
    .await
}

/// Settles each of `sequences` in order with `act`, reading the dead-letter stream once:
/// a missing, marker or already settled letter is refused without calling `act`, and a
/// letter settled earlier in the same call counts as settled (`settled_as`). `progress`
/// sees each outcome as it happens.
async fn settle_each<T>(
    bus: &Bus,
    sequences: &[u64],
    mut act: impl AsyncFnMut(u64, &async_nats::jetstream::Message) -> Result<T, RedriveError>,
    settled_as: impl Fn(&T) -> Settled,
    mut progress: impl FnMut(usize, &Result<T, RedriveError>),
) -> Result<Vec<Result<T, RedriveError>>, RedriveError> {
    let messages = read_all(bus).await?;
    let mut settled = settled(bus, &messages);
    let by_sequence = by_sequence(&messages);
    let mut outcomes = Vec::with_capacity(sequences.len());
    for (done, &sequence) in sequences.iter().enumerate() {
        let outcome = match unsettled(bus, &settled, &by_sequence, sequence) {
            Ok(letter) => act(sequence, letter).await,
            Err(error) => Err(error),
        };
        if let Ok(value) = &outcome {
            settled.insert(sequence, settled_as(value));
        }
        progress(done, &outcome);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

fn by_sequence(
    messages: &[async_nats::jetstream::Message],
) -> HashMap<u64, &async_nats::jetstream::Message> {
    messages
        .iter()
        .filter_map(|m| Some((m.info().ok()?.stream_sequence, m)))
        .collect()
}

/// The dead letter `sequence`, unless it is missing, a marker, or settled already.
fn unsettled<'m>(
    bus: &Bus,
    settled: &HashMap<u64, Settled>,
    by_sequence: &HashMap<u64, &'m async_nats::jetstream::Message>,
    sequence: u64,
) -> Result<&'m async_nats::jetstream::Message, RedriveError> {
    match (settled.get(&sequence), by_sequence.get(&sequence)) {
        (Some(Settled::Redriven(to)), _) => Err(RedriveError::AlreadyRedriven {
            sequence,
            to: to.clone(),
        }),
        (Some(Settled::Discarded), _) => Err(RedriveError::Discarded(sequence)),
        (None, None) => Err(RedriveError::NotFound(sequence)),
        (None, Some(letter)) if is_marker(bus, letter) => {
            Err(RedriveError::NotADeadLetter(sequence))
        }
        (None, Some(letter)) => Ok(*letter),
    }
}

/// Publishes one dead letter again, then its marker.
async fn redrive_one(
    bus: &Bus,
    sequence: u64,
    letter: &async_nats::jetstream::Message,
) -> Result<Redriven, RedriveError> {
    let Some(letter_headers) = letter.headers.as_ref() else {
        return Err(RedriveError::NotADeadLetter(sequence));
    };
    let original = Some(letter_headers);
    let (Some(subject), Some(consumer)) = (
        header(original, headers::SUBJECT),
        header(original, headers::CONSUMER),
    ) else {
        return Err(RedriveError::NotADeadLetter(sequence));
    };
    let topology = bus.topology();
    let ours = [topology.all_webhooks(), topology.all_events()]
        .iter()
        .any(|wildcard| subject.starts_with(wildcard.trim_end_matches('>')));
    if !ours {
        return Err(RedriveError::ForeignSubject {
            sequence,
            subject: subject.to_owned(),
        });
    }
    let mut out = HeaderMap::new();
    for (name, values) in letter_headers.iter() {
        let name: &str = name.as_ref();
        let dead_letter_only = name.starts_with("Deskie-Dead-Letter-")
            || name.eq_ignore_ascii_case(headers::ORIGINAL_MESSAGE_ID)
            || name.eq_ignore_ascii_case(async_nats::header::NATS_MESSAGE_ID.as_ref());
        if !dead_letter_only {
            for value in values {
                out.append(name, value.as_str());
            }
        }
    }
    out.insert(REDRIVEN_FROM, sequence.to_string().as_str());
    let published = bus
        .publish_durable(
            subject.to_owned(),
            &format!("redrive:{sequence}"),
            out,
            letter.payload.clone(),
        )
        .await
        .map_err(bus_error)?;
    let mut marker = HeaderMap::new();
    marker.insert(REDRIVEN_SEQUENCE, sequence.to_string().as_str());
    marker.insert(REDRIVEN_TO, published.sequence.to_string().as_str());
    bus.publish_durable(
        marker_subject(bus),
        &format!("redriven:{sequence}"),
        marker,
        Bytes::new(),
    )
    .await
    .map_err(bus_error)?;
    Ok(Redriven {
        sequence,
        consumer: consumer.to_owned(),
        subject: subject.to_owned(),
        new_sequence: published.sequence,
    })
}
