//! Writing a test's case events: [`record_case`] the way every writer does (through the
//! case stream, projected), [`append_case`] without projecting, for a test of what must
//! project them (the projector, a consumer, a redelivery).

use deskie_proto::events::{Envelope, Event};
use deskie_store::case_stream::CASE_STREAM;
use deskie_store::{Cause, Store, StreamKey};
use uuid::Uuid;

/// The cause test events are written under, unless a test names one.
pub const TEST_CAUSE: Cause<'static> = Cause {
    causation_id: "test",
    correlation_id: "test",
    emitted_by: "test",
};

/// Records `events` on case `case_id` as a writer does ([`Store::open_case`], record,
/// commit) under [`TEST_CAUSE`]; the stored envelopes.
pub async fn record_case(store: &Store, case_id: Uuid, events: Vec<Event>) -> Vec<Envelope> {
    record_case_as(store, case_id, &TEST_CAUSE, events).await
}

/// [`record_case`] under `cause`.
pub async fn record_case_as(
    store: &Store,
    case_id: Uuid,
    cause: &Cause<'_>,
    events: Vec<Event>,
) -> Vec<Envelope> {
    let mut case = store.open_case(case_id).await.expect("open the case");
    let stored = case.record(events, cause).await.expect("record");
    case.commit().await.expect("commit");
    stored
}

/// Appends `events` to case `case_id` under [`TEST_CAUSE`] without projecting them or
/// keeping a snapshot; the stored envelopes.
pub async fn append_case(store: &Store, case_id: Uuid, events: Vec<Event>) -> Vec<Envelope> {
    let mut tx = store
        .begin_stream(StreamKey::new(CASE_STREAM, case_id))
        .await
        .expect("begin");
    let version = tx.version();
    let stored = tx
        .append(version, TEST_CAUSE.drafts(events))
        .await
        .expect("append");
    tx.commit().await.expect("commit");
    stored
}
