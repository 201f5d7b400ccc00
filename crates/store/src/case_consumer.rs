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
//! Events a consumer does not want cost no query. The flip side: a wanted event that
//! went missing is filled when the next wanted event of its case arrives.

use std::future::Future;

use deskie_bus::Topology;
use deskie_bus::consumer::{ConsumerSpec, Delivery, Handler, HandlerError};
use deskie_proto::Message;
use deskie_proto::events::{Envelope, Event};
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

/// Runs a [`CaseEventConsumer`] as a JetStream [`Handler`].
#[derive(Debug, Clone)]
pub struct CaseEventHandler<C> {
    store: Store,
    topology: Topology,
    consumer: C,
}

impl<C: CaseEventConsumer> CaseEventHandler<C> {
    /// `consumer` over `store`; `topology` reads the case out of a subject for the lane.
    pub fn new(store: Store, topology: Topology, consumer: C) -> Self {
        Self {
            store,
            topology,
            consumer,
        }
    }

    /// The consumer.
    pub fn consumer(&self) -> &C {
        &self.consumer
    }

    /// Acts on every wanted event of the case up to `envelope`'s version not acted on yet;
    /// returns how many.
    async fn catch_up(&self, case_id: Uuid, envelope: &Envelope) -> Result<usize, HandlerError> {
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
        Ok(wanted.len())
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
        let Some((case_id, envelope)) = case_event_of(delivery)? else {
            return Ok(());
        };
        // An event this build cannot read is not one it wants.
        if !envelope
            .event
            .as_ref()
            .is_some_and(|e| self.consumer.wants(e))
        {
            return Ok(());
        }
        self.catch_up(case_id, &envelope).await.map(|_| ())
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
