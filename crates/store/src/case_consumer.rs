//! One way to consume case events: decode, filter, one case at a time, each wanted event
//! once and in version order, with gaps filled from the event store.
//!
//! A consumer says which events it wants and how to act on one inside the case's
//! transaction; [`CaseEventHandler`] does the rest. When event v arrives and the consumer's
//! cursor is below v − 1 (an earlier event was dead-lettered, expired from the event
//! window, or never delivered), the events in between are read from the event store and
//! the wanted ones acted on first, in the same transaction, so no `ReplyRequested` waits
//! for ever without a ledger row and no trigger goes unevaluated.
//!
//! What became of each event is counted the same way for every consumer
//! ([`CaseEventMetrics`]).
//!
//! Events a consumer does not want cost no query. The flip side: a wanted event that
//! went missing is filled when the next wanted event of its case arrives.

use std::future::Future;

use deskie_bus::Topology;
use deskie_bus::consumer::{ConsumerSpec, Delivery, Handler, HandlerError};
use deskie_proto::Message;
use deskie_proto::events::{Envelope, Event};
use prometheus::{IntCounterVec, Opts, Registry};
use uuid::Uuid;

use crate::{CaseStream, Store, cursors};

/// A consumer of case events, acting on the ones it wants.
pub trait CaseEventConsumer: Send + Sync {
    /// The name its cursors are kept under (the service's consumer name).
    fn name(&self) -> &'static str;

    /// Whether it acts on `event` (no I/O: called for every case event).
    fn wants(&self, event: &Event) -> bool;

    /// Acts on one wanted event of the case open in `case` (its lock held); what it records
    /// or writes commits with the cursor. Store errors convert with `?`.
    fn apply(
        &self,
        case: &mut CaseStream,
        envelope: &Envelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Called after the transaction committed, with the events acted on (to wake a worker).
    fn committed(&self, _applied: &[Envelope]) {}
}

/// Case events a [`CaseEventHandler`] handles at once. Its lanes keep each case's events
/// in order, so different cases proceed side by side (outbound's intake, about ten round
/// trips per wanted event, used to run one at a time).
pub const CONCURRENCY: usize = 8;

/// The consumer settings of a case-event consumer named `name`: every case event,
/// [`CONCURRENCY`] at once.
pub fn consumer_spec(topology: &Topology, name: &str) -> ConsumerSpec {
    let mut spec = ConsumerSpec::case_events(topology, name);
    spec.concurrency = CONCURRENCY;
    spec
}

/// What became of each case event a consumer was handed, the same for every consumer:
/// `deskie_case_events_total{consumer, outcome}` and
/// `deskie_case_events_filled_total{consumer}`.
///
/// Outcomes: `unwanted` (another stream's, or not one the consumer acts on: no query),
/// `acted` (acted on, with whatever was missing before it), `already_acted` (its cursor was
/// past it: a redelivery), `retried`, `unavailable` (waited out in place), `poison`.
/// `filled` counts the events acted on from the event store because their own delivery
/// was missed.
#[derive(Debug, Clone)]
pub struct CaseEventMetrics {
    events: IntCounterVec,
    filled: IntCounterVec,
}

/// Every outcome of [`CaseEventMetrics`], each series present from zero.
pub const OUTCOMES: [&str; 6] = [
    "unwanted",
    "acted",
    "already_acted",
    "retried",
    "unavailable",
    "poison",
];

impl CaseEventMetrics {
    /// The metrics, registered in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self::unregistered()?;
        registry.register(Box::new(metrics.events.clone()))?;
        registry.register(Box::new(metrics.filled.clone()))?;
        Ok(metrics)
    }

    fn unregistered() -> Result<Self, prometheus::Error> {
        Ok(Self {
            events: IntCounterVec::new(
                Opts::new(
                    "deskie_case_events_total",
                    "Case events handed to a case-event consumer, by outcome",
                ),
                &["consumer", "outcome"],
            )?,
            filled: IntCounterVec::new(
                Opts::new(
                    "deskie_case_events_filled_total",
                    "Case events a consumer acted on from the event store, their delivery missed",
                ),
                &["consumer"],
            )?,
        })
    }

    /// Creates every series of `consumer` at zero, so a dashboard sees them before the first event.
    fn start(&self, consumer: &str) {
        for outcome in OUTCOMES {
            self.events.with_label_values(&[consumer, outcome]);
        }
        self.filled.with_label_values(&[consumer]);
    }

    /// How many events of `consumer` ended with `outcome` so far.
    pub fn total(&self, consumer: &str, outcome: &str) -> u64 {
        self.events.with_label_values(&[consumer, outcome]).get()
    }

    /// How many events `consumer` acted on from the event store so far.
    pub fn filled(&self, consumer: &str) -> u64 {
        self.filled.with_label_values(&[consumer]).get()
    }
}

/// Runs a [`CaseEventConsumer`] as a JetStream [`Handler`].
#[derive(Debug, Clone)]
pub struct CaseEventHandler<C> {
    store: Store,
    topology: Topology,
    consumer: C,
    metrics: Option<CaseEventMetrics>,
}

impl<C: CaseEventConsumer> CaseEventHandler<C> {
    /// `consumer` over `store`; `topology` reads the case out of a subject for the lane.
    pub fn new(store: Store, topology: Topology, consumer: C) -> Self {
        Self {
            store,
            topology,
            consumer,
            metrics: None,
        }
    }

    /// Counts each event's outcome into `metrics`.
    pub fn with_metrics(mut self, metrics: CaseEventMetrics) -> Self {
        metrics.start(self.consumer.name());
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, outcome: &str, filled: usize) {
        if let Some(metrics) = &self.metrics {
            let name = self.consumer.name();
            metrics.events.with_label_values(&[name, outcome]).inc();
            if filled > 0 {
                metrics
                    .filled
                    .with_label_values(&[name])
                    .inc_by(filled as u64);
            }
        }
    }

    /// The consumer.
    pub fn consumer(&self) -> &C {
        &self.consumer
    }

    /// Acts on every wanted event of the case up to `envelope`'s version not acted on yet;
    /// the outcome, and how many of them were filled from the event store.
    async fn catch_up(
        &self,
        case_id: Uuid,
        envelope: &Envelope,
    ) -> Result<(&'static str, usize), HandlerError> {
        let name = self.consumer.name();
        let mut case = self.store.open_case(case_id).await?;
        let pending =
            cursors::unapplied(case.connection(), name, case_id, envelope.version).await?;
        let wanted: Vec<Envelope> = pending
            .into_iter()
            .map(|stored| stored.envelope)
            .filter(|e| e.event.as_ref().is_some_and(|ev| self.consumer.wants(ev)))
            .collect();
        if wanted.len() > 1
            || wanted
                .first()
                .is_some_and(|e| e.version != envelope.version)
        {
            tracing::warn!(consumer = name, %case_id, version = envelope.version, filled = wanted.len(),
                "events missed before this one are acted on from the event store");
        }
        for event in &wanted {
            self.consumer.apply(&mut case, event).await?;
        }
        cursors::advance(case.connection(), name, case_id, envelope.version).await?;
        case.commit().await?;
        self.consumer.committed(&wanted);
        let delivered = wanted.iter().any(|e| e.version == envelope.version);
        let filled = wanted.len() - usize::from(delivered);
        Ok((if delivered { "acted" } else { "already_acted" }, filled))
    }
}

impl<C: CaseEventConsumer> Handler for CaseEventHandler<C> {
    /// One case's events one after the other, in delivery order.
    fn lane(&self, message: &async_nats::jetstream::Message) -> Option<String> {
        self.topology
            .stream_id_of_event_subject(&message.subject)
            .map(str::to_owned)
    }

    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let outcome = self.handle_counted(delivery).await;
        match &outcome {
            Ok((outcome, filled)) => self.count(outcome, *filled),
            Err(HandlerError::Retry { .. }) => self.count("retried", 0),
            Err(HandlerError::Unavailable { .. }) => self.count("unavailable", 0),
            Err(HandlerError::Poison { .. }) => self.count("poison", 0),
        }
        outcome.map(|_| ())
    }
}

impl<C: CaseEventConsumer> CaseEventHandler<C> {
    async fn handle_counted(
        &self,
        delivery: &Delivery,
    ) -> Result<(&'static str, usize), HandlerError> {
        let Some((case_id, envelope)) = case_event_of(delivery)? else {
            return Ok(("unwanted", 0));
        };
        // An event this build cannot read is not one it wants.
        if !envelope
            .event
            .as_ref()
            .is_some_and(|e| self.consumer.wants(e))
        {
            return Ok(("unwanted", 0));
        }
        self.catch_up(case_id, &envelope).await
    }
}

/// The case event a delivery carries, with its case id; `None` for another stream's event.
/// A payload that is not an envelope, or a case id that is not a UUID, is poison.
pub fn case_event_of(delivery: &Delivery) -> Result<Option<(Uuid, Envelope)>, HandlerError> {
    let envelope =
        Envelope::decode(delivery.payload.as_ref()).map_err(|e| HandlerError::Poison {
            reason: format!("payload is not a deskie.events.v1.Envelope: {e}"),
        })?;
    if envelope.stream_type != crate::case_stream::CASE_STREAM {
        return Ok(None);
    }
    let case_id: Uuid = envelope
        .stream_id
        .parse()
        .map_err(|_| HandlerError::Poison {
            reason: format!("case stream id {:?} is not a UUID", envelope.stream_id),
        })?;
    Ok(Some((case_id, envelope)))
}
