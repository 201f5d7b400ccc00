//! The one writer of cases: inbox, bounded state (snapshot plus tail), record with
//! projection, and the state a case written before snapshots existed gets.

mod case_support;
mod common;

use case_support::*;
use deskie_domain::case::CaseState;
use deskie_proto::events::{Event, UnmatchedEchoReceived};
use deskie_store::case_stream::SNAPSHOT_FORMAT;
use deskie_store::read_models::cases;
use deskie_store::{Asking, Store, StoreError};
use deskie_testkit::record_case;
use uuid::Uuid;

/// The case folded from its whole history, as writers did before snapshots.
async fn folded(store: &Store, case_id: Uuid) -> CaseState {
    let history = store.load_stream(case_id).await.expect("history");
    CaseState::from_events(history.iter().filter_map(|e| e.envelope.event.as_ref()))
}

#[tokio::test]
async fn a_message_handled_before_opens_nothing_and_writes_nothing() {
    let (_db, store) = common::store().await;
    let case_id = Uuid::now_v7();
    let mut case = store
        .open_case_once(case_id, "routing", "webhook-1")
        .await
        .expect("open")
        .expect("the first time");
    case.record(vec![opened()], &TEST).await.expect("record");
    case.commit().await.expect("commit");
    let again = store
        .open_case_once(case_id, "routing", "webhook-1")
        .await
        .expect("open");
    assert!(again.is_none(), "the inbox says it was handled");
    assert_eq!(store.load_stream(case_id).await.expect("history").len(), 1);
    assert!(
        store
            .open_case_once(case_id, "rules", "webhook-1")
            .await
            .expect("open")
            .is_some(),
        "inboxes are per consumer"
    );
}

#[tokio::test]
async fn recorded_events_are_projected_and_the_snapshot_follows_the_case() {
    let (_db, store) = common::store().await;
    let case_id = Uuid::now_v7();
    let reply_id = Uuid::now_v7();
    record_case(
        &store,
        case_id,
        vec![opened(), customer_says("hi").at(1_700_000_000).into()],
    )
    .await;
    record_case(
        &store,
        case_id,
        vec![
            reply("reply from deskie").id(reply_id).into(),
            status("pending").into(),
        ],
    )
    .await;
    record_case(
        &store,
        case_id,
        vec![delivered(reply_id).chatra_id("chatra-r1").into()],
    )
    .await;

    let view = cases::get(store.pool(), case_id)
        .await
        .expect("get")
        .expect("projected");
    assert_eq!((view.version, view.status.as_str()), (5, "pending"));
    assert_eq!(snapshot_version(&store, case_id).await, Some(5));

    // Nothing asked: the compacted state, which is the full fold less its growing sets.
    let state = store
        .case_state(case_id, &Asking::nothing())
        .await
        .expect("state");
    let full = folded(&store, case_id).await;
    assert_eq!(state, full.compacted());
    assert!(state.reply(&reply_id.to_string()).is_none());
    assert!(state.chatra_message_ids.is_empty());

    // Asked: exactly the members named, as the full fold has them.
    let reply = reply_id.to_string();
    let asking = Asking {
        chatra_message_ids: vec!["chatra-hi", "chatra-unknown"],
        replies: vec![&reply],
    };
    let state = store.case_state(case_id, &asking).await.expect("state");
    assert!(state.chatra_message_ids.contains("chatra-hi"));
    assert!(
        state.chatra_message_ids.contains("chatra-r1"),
        "the reply's own id"
    );
    assert!(!state.chatra_message_ids.contains("chatra-unknown"));
    assert_eq!(
        state
            .reply(&reply)
            .and_then(|r| r.chatra_message_id.as_deref()),
        Some("chatra-r1")
    );
}

#[tokio::test]
async fn a_case_written_before_snapshots_is_folded_once_and_keeps_its_ids() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    // Appended and projected the old way: no snapshot, no ids.
    case.record(vec![
        opened(),
        customer_says("old").at(1_700_000_000).into(),
        Event::UnmatchedEchoReceived(UnmatchedEchoReceived {
            chatra_message_id: "chatra-echo".into(),
            ..Default::default()
        }),
    ])
    .await;
    assert_eq!(snapshot_version(&store, case.id).await, None);

    let mut stream = store.open_case(case.id).await.expect("open");
    let state = stream.state(&Asking::nothing()).await.expect("state");
    assert!(
        state.chatra_message_ids.contains("chatra-echo"),
        "a whole fold knows every id"
    );
    stream.commit().await.expect("commit");
    assert_eq!(snapshot_version(&store, case.id).await, Some(3));

    let asking = Asking::chatra_messages(["chatra-old", "chatra-echo"]);
    let state = store.case_state(case.id, &asking).await.expect("state");
    assert!(state.chatra_message_ids.contains("chatra-old"));
    assert!(state.chatra_message_ids.contains("chatra-echo"));
}

#[tokio::test]
async fn events_after_the_snapshot_and_a_snapshot_of_another_format_are_folded() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    record_case(&store, case.id, vec![opened()]).await;
    // A writer that bypassed the case stream leaves the snapshot behind the case.
    case.record(vec![status("closed").into()]).await;
    let state = store
        .case_state(case.id, &Asking::nothing())
        .await
        .expect("state");
    assert_eq!((state.version, state.status.as_str()), (2, "closed"));

    sqlx::query(
        "UPDATE case_snapshots SET format = $2, state = '{\"junk\": true}' WHERE case_id = $1",
    )
    .bind(case.id)
    .bind(SNAPSHOT_FORMAT + 1)
    .execute(store.pool())
    .await
    .expect("age the snapshot");
    let state = store
        .case_state(case.id, &Asking::nothing())
        .await
        .expect("state");
    assert_eq!(state, folded(&store, case.id).await);
}

#[tokio::test]
async fn a_refused_record_changes_neither_the_case_nor_its_snapshot() {
    let (_db, store) = common::store().await;
    let store = store.with_max_message_bytes(64 * 1024);
    let case_id = Uuid::now_v7();
    record_case(&store, case_id, vec![opened()]).await;
    let mut case = store.open_case(case_id).await.expect("open");
    let huge = customer_says(&"x".repeat(128 * 1024))
        .at(1_700_000_000)
        .into();
    let refused = case
        .record(vec![status("pending").into(), huge], &TEST)
        .await;
    assert!(
        matches!(refused, Err(StoreError::EventTooLarge { .. })),
        "{refused:?}"
    );
    drop(case);
    assert_eq!(store.load_stream(case_id).await.expect("history").len(), 1);
    assert_eq!(snapshot_version(&store, case_id).await, Some(1));
    let view = cases::get(store.pool(), case_id)
        .await
        .expect("get")
        .expect("case");
    assert_eq!((view.version, view.status.as_str()), (1, "open"));
}
