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

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use deskie_bus::Topology;
use deskie_bus::batch::{BatchHandler, Batcher};
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

    /// What its transaction holds while it acts on a case's events: the case (the default),
    /// or only its own cursor of the case.
    fn hold(&self) -> CaseHold {
        CaseHold::Case
    }

    /// Acts on one wanted event of the case open in `case` (what [`Self::hold`] says is
    /// held); what it records or writes commits with the cursor. Store errors convert
    /// with `?`.
    fn apply(
        &self,
        case: &mut CaseStream,
        envelope: &Envelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Called after the transaction committed, with the events acted on (to wake a worker).
    fn committed(&self, _applied: &[Envelope]) {}
}

/// What a case-event consumer's transaction holds exclusive while it acts on a case's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseHold {
    /// The case's lock: the consumer reads the case's state or records events on it, so it
    /// takes turns with every writer of the case.
    Case,
    /// Only the consumer's own cursor of the case ([`Store::open_cursors`]): it writes rows
    /// of its own beside the case (a ledger row, a fetch to make) and never the case's
    /// stream, so it does not queue behind the case's writers. Asking for the case's state
    /// or recording on it fails with `CaseNotLocked`.
    Cursor,
}

/// Case events a [`CaseEventHandler`] has in hand at once: enough to keep every worker
/// busy with wanted events while the unwanted ones (most of them, settled without a query)
/// pass. Its lanes keep each case's events in order, so different cases proceed
/// side by side (outbound's intake, about ten round trips per wanted event, used to run
/// one at a time).
pub const CONCURRENCY: usize = 2 * WORKERS * MAX_BATCH;

/// The consumer settings of a case-event consumer named `name`: every case event,
/// [`CONCURRENCY`] at once.
pub fn consumer_spec(topology: &Topology, name: &str) -> ConsumerSpec {
    let mut spec = ConsumerSpec::case_events(topology, name);
    spec.concurrency = CONCURRENCY;
    spec.max_ack_pending = i64::try_from(2 * CONCURRENCY).unwrap_or(256);
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
        let events = IntCounterVec::new(
            Opts::new(
                "deskie_case_events_total",
                "Case events handed to a case-event consumer, by outcome",
            ),
            &["consumer", "outcome"],
        )?;
        let filled = IntCounterVec::new(
            Opts::new(
                "deskie_case_events_filled_total",
                "Case events a consumer acted on from the event store, their delivery missed",
            ),
            &["consumer"],
        )?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(filled.clone()))?;
        Ok(Self { events, filled })
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

/// Wanted events one transaction acts on at most. A case's events arrive in runs (a
/// webhook writes three), so a batch takes a case's lock, cursor and missed events once for
/// the run. `bench-greeting 3000 300` (2026-12-07, with the relay's waves fixed): one event
/// per transaction (8 at once) 89–94 /s; batches of 32 with two workers 168 /s, with four
/// 171–181 /s.
///
/// Batches were off for a while because one run delivered 2,999 greetings of 3,000. The
/// same happened with one event per transaction: the missing reply was `unknown` in the
/// ledger (a Chatra call whose outcome was lost), not a batch's doing; see
/// `deskie_chatra::IDLE_CONNECTION_REUSE`.
pub const MAX_BATCH: usize = 32;

/// Batches acted on at once, each in its own transaction.
pub const WORKERS: usize = 4;

/// Runs a [`CaseEventConsumer`] as a JetStream [`Handler`]: the wanted events the runner
/// has in hand are acted on in batches ([`deskie_bus::batch`]), one transaction each.
#[derive(Debug, Clone)]
pub struct CaseEventHandler<C> {
    topology: Topology,
    catch_up: Arc<CatchUp<C>>,
    batcher: Batcher<(Uuid, Envelope), Outcome>,
    metrics: Option<CaseEventMetrics>,
}

/// What became of one wanted event: its outcome label and how many missed events were
/// acted on from the event store with it.
type Outcome = (&'static str, usize);

/// Acts on batches of wanted events.
#[derive(Debug)]
struct CatchUp<C> {
    store: Store,
    consumer: C,
}

/// The batch workers' handle on [`CatchUp`].
struct Shared<C>(Arc<CatchUp<C>>);

impl<C: CaseEventConsumer + 'static> CaseEventHandler<C> {
    /// `consumer` over `store`; `topology` reads the case out of a subject for the lane.
    /// Starts the batch workers (a Tokio runtime must be running).
    pub fn new(store: Store, topology: Topology, consumer: C) -> Self {
        let catch_up = Arc::new(CatchUp { store, consumer });
        let batcher = Batcher::start(Shared(catch_up.clone()), WORKERS, MAX_BATCH);
        Self {
            topology,
            catch_up,
            batcher,
            metrics: None,
        }
    }

    /// Counts each event's outcome into `metrics`.
    pub fn with_metrics(mut self, metrics: CaseEventMetrics) -> Self {
        metrics.start(self.catch_up.consumer.name());
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, outcome: &str, filled: usize) {
        if let Some(metrics) = &self.metrics {
            let name = self.catch_up.consumer.name();
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
        &self.catch_up.consumer
    }

    async fn handle_counted(&self, delivery: &Delivery) -> Result<Outcome, HandlerError> {
        let Some((case_id, envelope)) = case_event_of(delivery)? else {
            return Ok(("unwanted", 0));
        };
        // An event this build cannot read is not one it wants.
        if !envelope
            .event
            .as_ref()
            .is_some_and(|e| self.catch_up.consumer.wants(e))
        {
            return Ok(("unwanted", 0));
        }
        self.batcher.submit((case_id, envelope)).await
    }
}

impl<C: CaseEventConsumer> CatchUp<C> {
    /// Acts, in one transaction, on every wanted event of each case up to the highest
    /// version `items` delivered of it, not acted on yet; the outcome of each item.
    async fn catch_up(&self, items: &[(Uuid, Envelope)]) -> Result<Vec<Outcome>, HandlerError> {
        let name = self.consumer.name();
        // Per case, the lowest and the highest version delivered.
        let mut ranges: BTreeMap<Uuid, (u64, u64)> = BTreeMap::new();
        for (case_id, envelope) in items {
            let range = ranges
                .entry(*case_id)
                .or_insert((envelope.version, envelope.version));
            range.0 = range.0.min(envelope.version);
            range.1 = range.1.max(envelope.version);
        }
        let case_ids: Vec<Uuid> = ranges.keys().copied().collect();
        let mut batch = match self.consumer.hold() {
            CaseHold::Case => self.store.open_cases(&case_ids).await?,
            CaseHold::Cursor => self.store.open_cursors(name, &case_ids).await?,
        };
        let streams: Vec<(Uuid, u64, u64)> = ranges
            .iter()
            .map(|(case_id, (low, high))| (*case_id, *low, *high))
            .collect();
        let pending = cursors::unapplied_many(batch.connection(), name, &streams).await?;
        let delivered: BTreeSet<(Uuid, u64)> = items
            .iter()
            .map(|(case_id, envelope)| (*case_id, envelope.version))
            .collect();
        let mut case = CaseStream::focus(batch, Uuid::nil());
        let mut acted: Vec<Envelope> = Vec::new();
        let mut acted_on: BTreeSet<(Uuid, u64)> = BTreeSet::new();
        let mut filled: BTreeMap<Uuid, usize> = BTreeMap::new();
        for (case_id, events) in pending {
            let wanted: Vec<Envelope> = events
                .into_iter()
                .map(|stored| stored.envelope)
                .filter(|e| e.event.as_ref().is_some_and(|ev| self.consumer.wants(ev)))
                .collect();
            let missed = wanted
                .iter()
                .filter(|e| !delivered.contains(&(case_id, e.version)))
                .count();
            if missed > 0 {
                tracing::warn!(consumer = name, %case_id, filled = missed,
                    "events missed before this one are acted on from the event store");
                filled.insert(case_id, missed);
            }
            case.refocus(case_id);
            for event in &wanted {
                self.consumer.apply(&mut case, event).await?;
            }
            acted_on.extend(wanted.iter().map(|e| (case_id, e.version)));
            acted.extend(wanted);
        }
        let advanced: Vec<(Uuid, u64)> = ranges
            .iter()
            .map(|(case_id, (_, high))| (*case_id, *high))
            .collect();
        cursors::advance_many(case.connection(), name, &advanced).await?;
        case.commit().await?;
        self.consumer.committed(&acted);
        Ok(items
            .iter()
            .map(|(case_id, envelope)| {
                let outcome = match acted_on.contains(&(*case_id, envelope.version)) {
                    true => "acted",
                    false => "already_acted",
                };
                // The missed events count with the case's highest delivery.
                let highest = ranges
                    .get(case_id)
                    .is_some_and(|(_, high)| *high == envelope.version);
                let filled = if highest {
                    filled.get(case_id).copied().unwrap_or(0)
                } else {
                    0
                };
                (outcome, filled)
            })
            .collect())
    }
}

impl<C: CaseEventConsumer + 'static> BatchHandler for Shared<C> {
    type Item = (Uuid, Envelope);
    type Output = Outcome;

    async fn handle_batch(
        &self,
        items: Vec<(Uuid, Envelope)>,
    ) -> Vec<Result<Outcome, HandlerError>> {
        let error = match self.0.catch_up(&items).await {
            Ok(outcomes) => return outcomes.into_iter().map(Ok).collect(),
            Err(error) => error,
        };
        // An outage fails every event alike; acting on each alone would only fail again.
        if items.len() == 1 || matches!(error, HandlerError::Unavailable { .. }) {
            return items.iter().map(|_| Err(error.clone())).collect();
        }
        tracing::warn!(consumer = self.0.consumer.name(), batch = items.len(), %error,
            "acting on a batch of case events failed; acting on each alone");
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let alone = self.0.catch_up(std::slice::from_ref(&item)).await;
            outcomes.push(alone.map(|mut o| o.pop().unwrap_or(("already_acted", 0))));
        }
        outcomes
    }
}

impl<C: CaseEventConsumer + 'static> Handler for CaseEventHandler<C> {
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
