//! The case-event adapter: each wanted event once, in version order, a missed one filled
//! from the event store; bad input refused without a trace.

mod case_support;
mod common;

use std::sync::{Arc, Mutex};

use case_support::*;
use deskie_bus::Topology;
use deskie_bus::consumer::{Delivery, Handler, HandlerError};
use deskie_proto::Message;
use deskie_proto::events::{Envelope, Event};
use deskie_store::CaseStream;
use deskie_store::case_consumer::CaseEventMetrics;
use deskie_store::case_consumer::{CaseEventConsumer, CaseEventHandler};

/// Wants status changes; records the versions it acted on, and a row per act in the same
/// transaction (to show the act commits with the cursor).
#[derive(Clone, Default)]
struct Recorder {
    applied: Arc<Mutex<Vec<u64>>>,
    committed: Arc<Mutex<Vec<u64>>>,
}

impl CaseEventConsumer for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn wants(&self, event: &Event) -> bool {
        matches!(event, Event::CaseStatusChanged(_))
    }

    async fn apply(&self, case: &mut CaseStream, envelope: &Envelope) -> Result<(), HandlerError> {
        sqlx::query("INSERT INTO inbox (consumer, message_id) VALUES ('recorder', $1)")
            .bind(format!("{}:{}", case.case_id(), envelope.version))
            .execute(case.connection())
            .await
            .map_err(deskie_store::StoreError::from)?;
        self.applied.lock().expect("lock").push(envelope.version);
        Ok(())
    }

    fn committed(&self, applied: &[Envelope]) {
        self.committed
            .lock()
            .expect("lock")
            .extend(applied.iter().map(|e| e.version));
    }
}

fn delivery_of(envelope: &Envelope) -> Delivery {
    Delivery {
        subject: "t.events.case.00.x.case_status_changed".into(),
        payload: envelope.encode_to_vec().into(),
        headers: None,
        stream_sequence: envelope.version,
        delivered: 1,
    }
}

fn handler(store: &deskie_store::Store) -> (CaseEventHandler<Recorder>, Recorder) {
    let recorder = Recorder::default();
    (
        CaseEventHandler::new(store.clone(), Topology::new("t"), recorder.clone()),
        recorder,
    )
}

async fn acts(store: &deskie_store::Store) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = 'recorder'")
        .fetch_one(store.pool())
        .await
        .expect("count")
}

#[tokio::test]
async fn a_missed_event_is_acted_on_before_the_next_one_and_never_twice() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let stored = case
        .append(vec![
            opened(),
            status("pending").into(),
            customer_says("hi").at(1_700_000_000).into(),
            status("closed").into(),
            status("open").into(),
        ])
        .await;
    let (handler, recorder) = handler(&store);

    // Version 2 was dead-lettered: version 4 arrives first.
    handler.handle(&delivery_of(&stored[3])).await.expect("v4");
    assert_eq!(*recorder.applied.lock().expect("lock"), [2, 4]);
    assert_eq!(*recorder.committed.lock().expect("lock"), [2, 4]);

    // Version 2 redriven, version 4 redelivered: both already done.
    handler.handle(&delivery_of(&stored[1])).await.expect("v2");
    handler
        .handle(&delivery_of(&stored[3]))
        .await
        .expect("v4 again");
    // Events it does not want cost nothing and move nothing.
    handler.handle(&delivery_of(&stored[2])).await.expect("v3");
    assert_eq!(*recorder.applied.lock().expect("lock"), [2, 4]);

    handler.handle(&delivery_of(&stored[4])).await.expect("v5");
    assert_eq!(*recorder.applied.lock().expect("lock"), [2, 4, 5]);
    assert_eq!(acts(&store).await, 3);
}

#[tokio::test]
async fn every_event_handed_over_is_counted_with_its_outcome() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let stored = case
        .append(vec![
            opened(),
            status("pending").into(),
            customer_says("hi").at(1_700_000_000).into(),
            status("closed").into(),
        ])
        .await;
    let registry = prometheus::Registry::new();
    let metrics = CaseEventMetrics::register(&registry).expect("register");
    let (handler, _) = handler(&store);
    let handler = handler.with_metrics(metrics.clone());
    let page = deskie_telemetry::metrics::render(&registry);
    assert!(
        page.contains(r#"deskie_case_events_total{consumer="recorder",outcome="poison"} 0"#),
        "every series from zero: {page}"
    );

    // v4 first: v2 is filled from the event store; then v2 again, and v3 (not wanted).
    handler.handle(&delivery_of(&stored[3])).await.expect("v4");
    handler.handle(&delivery_of(&stored[1])).await.expect("v2");
    handler.handle(&delivery_of(&stored[2])).await.expect("v3");
    let mut junk = delivery_of(&stored[3]);
    junk.payload = b"not an envelope".to_vec().into();
    assert!(handler.handle(&junk).await.is_err());

    let total = |outcome| metrics.total("recorder", outcome);
    assert_eq!(
        [
            total("acted"),
            total("already_acted"),
            total("unwanted"),
            total("poison")
        ],
        [1, 1, 1, 1]
    );
    assert_eq!(metrics.filled("recorder"), 1);
}

#[tokio::test]
async fn a_stream_older_than_the_cursors_starts_at_the_first_event_seen() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let stored = case
        .append(vec![
            opened(),
            status("pending").into(),
            status("closed").into(),
        ])
        .await;
    // As if the migration ran now: what came before was acted on without a cursor.
    sqlx::query("UPDATE consumer_cursor_origin SET seq = (SELECT max(seq) FROM events)")
        .execute(store.pool())
        .await
        .expect("origin");
    let later = case
        .append(vec![status("open").into(), status("closed").into()])
        .await;
    let (handler, recorder) = handler(&store);

    handler.handle(&delivery_of(&later[0])).await.expect("v4");
    assert_eq!(*recorder.applied.lock().expect("lock"), [4]);
    handler
        .handle(&delivery_of(&stored[2]))
        .await
        .expect("old v3");
    handler.handle(&delivery_of(&later[1])).await.expect("v5");
    assert_eq!(*recorder.applied.lock().expect("lock"), [4, 5]);
}

#[tokio::test]
async fn a_consumer_that_took_to_cursors_later_starts_at_its_own_origin() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let stored = case
        .append(vec![
            opened(),
            status("pending").into(),
            status("closed").into(),
        ])
        .await;
    // Cursors came before this case; the recorder took to them only now.
    sqlx::query(
        "INSERT INTO consumer_cursor_origins (consumer, seq)
         SELECT 'recorder', max(seq) FROM events",
    )
    .execute(store.pool())
    .await
    .expect("origin");
    let later = case.append(vec![status("open").into()]).await;
    let (handler, recorder) = handler(&store);

    handler.handle(&delivery_of(&later[0])).await.expect("v4");
    assert_eq!(*recorder.applied.lock().expect("lock"), [4]);
    handler
        .handle(&delivery_of(&stored[2]))
        .await
        .expect("old v3");
    assert_eq!(*recorder.applied.lock().expect("lock"), [4]);
}

#[tokio::test]
async fn a_failed_act_leaves_the_cursor_where_it_was() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let stored = case.append(vec![opened(), status("pending").into()]).await;
    let (handler, recorder) = handler(&store);
    // Someone else holds the row the act writes: the act fails, nothing commits.
    sqlx::query("INSERT INTO inbox (consumer, message_id) VALUES ('recorder', $1)")
        .bind(format!("{}:2", case.id))
        .execute(store.pool())
        .await
        .expect("conflicting row");
    let failed = handler.handle(&delivery_of(&stored[1])).await;
    assert!(
        matches!(failed, Err(HandlerError::Retry { .. })),
        "{failed:?}"
    );
    assert!(recorder.committed.lock().expect("lock").is_empty());
    sqlx::query("DELETE FROM inbox WHERE consumer = 'recorder'")
        .execute(store.pool())
        .await
        .expect("clear");

    handler
        .handle(&delivery_of(&stored[1]))
        .await
        .expect("again");
    assert_eq!(*recorder.committed.lock().expect("lock"), [2]);
    assert_eq!(acts(&store).await, 1);
}

#[tokio::test]
async fn events_of_many_cases_handed_over_together_are_each_acted_on_once_and_a_failing_one_alone()
{
    let (_db, store) = common::store().await;
    let mut deliveries = Vec::new();
    let mut cases = Vec::new();
    for _ in 0..12 {
        let case = Case::new(&store);
        let stored = case.append(vec![opened(), status("pending").into()]).await;
        deliveries.push(delivery_of(&stored[1]));
        cases.push(case.id);
    }
    // One act fails: someone else holds the row it writes.
    sqlx::query("INSERT INTO inbox (consumer, message_id) VALUES ('recorder', $1)")
        .bind(format!("{}:2", cases[5]))
        .execute(store.pool())
        .await
        .expect("conflicting row");
    let (handler, recorder) = handler(&store);
    let outcomes = futures::future::join_all(deliveries.iter().map(|d| handler.handle(d))).await;
    for (n, outcome) in outcomes.iter().enumerate() {
        match n {
            5 => assert!(
                matches!(outcome, Err(HandlerError::Retry { .. })),
                "{outcome:?}"
            ),
            _ => assert!(outcome.is_ok(), "case {n}: {outcome:?}"),
        }
    }
    assert_eq!(recorder.committed.lock().expect("lock").len(), 11);
    assert_eq!(
        acts(&store).await,
        12,
        "eleven acts and the conflicting row"
    );
    let cursors: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM consumer_cursors WHERE consumer = 'recorder' AND version = 2",
    )
    .fetch_one(store.pool())
    .await
    .expect("cursors");
    assert_eq!(cursors, 11, "the failed case's cursor did not move");

    // Handed over again, all of them: the eleven are done, the twelfth still fails.
    let outcomes = futures::future::join_all(deliveries.iter().map(|d| handler.handle(d))).await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 11);
    assert_eq!(recorder.committed.lock().expect("lock").len(), 11);
}

#[tokio::test]
async fn bad_input_is_poison_and_changes_nothing() {
    let (_db, store) = common::store().await;
    let (handler, recorder) = handler(&store);
    let not_an_envelope = Delivery {
        payload: bytes::Bytes::from_static(b"\xff\xff not protobuf"),
        ..delivery_of(&Envelope::default())
    };
    let bad_id = Envelope {
        stream_type: "case".into(),
        stream_id: "not-a-uuid".into(),
        version: 1,
        event: Some(status("open").into()),
        ..Default::default()
    };
    for delivery in [not_an_envelope, delivery_of(&bad_id)] {
        let outcome = handler.handle(&delivery).await;
        assert!(
            matches!(outcome, Err(HandlerError::Poison { .. })),
            "{outcome:?}"
        );
    }
    assert!(recorder.applied.lock().expect("lock").is_empty());
    let cursors: i64 = sqlx::query_scalar("SELECT count(*) FROM consumer_cursors")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(cursors, 0);
}
