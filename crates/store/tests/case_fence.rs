//! The ordering fence of the case read model: version v is applied only after v−1, whoever
//! applies it (the projector, a redelivery, a writer in its own transaction).

mod case_support;
mod common;

use case_support::*;
use deskie_proto::events::{ChatEnded, Event};
use deskie_store::read_models::cases;
use deskie_store::{StoreError, StreamKey};
use uuid::Uuid;

async fn snapshot(case: &Case) -> (cases::CaseView, Vec<cases::MessageView>) {
    (case.view().await, case.messages().await)
}

#[tokio::test]
async fn catching_up_twice_is_the_same_as_once() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    case.append(vec![
        opened(),
        customer_says("one").at(1_700_000_000).into(),
        reply("reply from deskie")
            .by_agent(Some(Uuid::now_v7()))
            .into(),
        status("pending").into(),
    ])
    .await;
    assert_eq!(case.catch_up().await, 4);
    let once = snapshot(&case).await;
    assert_eq!(case.catch_up().await, 0);
    assert_eq!(snapshot(&case).await, once);
    assert_eq!(once.0.version, 4);
    assert_eq!(once.1.len(), 2);
}

#[tokio::test]
async fn a_redelivered_old_version_changes_nothing() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let stored = case
        .record(vec![
            opened(),
            customer_says("hello").at(1_700_000_000).into(),
            status("closed").into(),
            status("open").into(),
        ])
        .await;
    let before = snapshot(&case).await;
    let mut conn = store.pool().acquire().await.expect("conn");
    for envelope in &stored {
        assert!(
            !cases::apply_case_event(&mut conn, envelope)
                .await
                .expect("apply")
        );
    }
    assert_eq!(snapshot(&case).await, before);
    assert_eq!(before.0.status, "open");
}

#[tokio::test]
async fn an_event_after_a_gap_waits_and_catch_up_fills_the_gap() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let first = case.append(vec![opened()]).await;
    let rest = case
        .append(vec![
            customer_says("a").at(1_700_000_000).into(),
            status("pending").into(),
            Event::ChatEnded(ChatEnded {}),
        ])
        .await;
    let mut conn = store.pool().acquire().await.expect("conn");
    assert!(
        cases::apply_case_event(&mut conn, &first[0])
            .await
            .expect("apply v1")
    );
    // v4 arrives before v2 and v3: applying it alone is refused…
    assert!(
        !cases::apply_case_event(&mut conn, &rest[2])
            .await
            .expect("apply v4")
    );
    let view = case.view().await;
    assert_eq!((view.version, view.chat_ended), (1, false));
    // …and catching up applies v2, v3 and v4 in order.
    assert_eq!(case.catch_up().await, 3);
    let view = case.view().await;
    assert_eq!(
        (view.version, view.status.as_str(), view.chat_ended),
        (4, "pending", true)
    );
    assert_eq!(case.messages().await.len(), 1);
}

#[tokio::test]
async fn a_writer_sees_its_own_uncommitted_events_projected_and_a_rollback_leaves_nothing() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let mut tx = store
        .begin_stream(StreamKey::new("case", case.id))
        .await
        .expect("begin");
    tx.append(0, drafts(vec![opened(), status("pending").into()]))
        .await
        .expect("append");
    assert_eq!(
        cases::catch_up(tx.connection(), case.id)
            .await
            .expect("catch up"),
        2
    );
    let inside = cases::get(tx.connection(), case.id)
        .await
        .expect("get")
        .expect("case");
    assert_eq!((inside.version, inside.status.as_str()), (2, "pending"));
    assert!(
        cases::get(store.pool(), case.id)
            .await
            .expect("get")
            .is_none(),
        "not visible before commit"
    );
    drop(tx);
    assert!(
        cases::get(store.pool(), case.id)
            .await
            .expect("get")
            .is_none()
    );
    assert_eq!(case.catch_up().await, 0);
}

#[tokio::test]
async fn concurrent_catch_ups_of_a_new_case_apply_each_event_once() {
    let (_db, store) = common::store().await;
    for _ in 0..5 {
        let case = Case::new(&store);
        let messages: Vec<Event> = (0..10)
            .map(|n| customer_says(&format!("m{n}")).at(1_700_000_000 + n).into())
            .collect();
        case.append([vec![opened()], messages].concat()).await;
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                let id = case.id;
                tokio::spawn(async move {
                    let mut tx = store.pool().begin().await.expect("begin");
                    let applied = cases::catch_up(&mut tx, id).await.expect("catch up");
                    tx.commit().await.expect("commit");
                    applied
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.expect("task");
        }
        assert_eq!(
            total, 11,
            "every event applied exactly once across the racers"
        );
        assert_eq!(case.view().await.version, 11);
        assert_eq!(case.messages().await.len(), 10);
    }
}

#[tokio::test]
async fn a_case_stream_that_does_not_start_with_case_opened_is_reported_corrupt() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    case.append(vec![status("closed").into()]).await;
    let mut tx = store.pool().begin().await.expect("begin");
    let refused = cases::catch_up(&mut tx, case.id).await;
    assert!(
        matches!(refused, Err(StoreError::Corrupt { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_writer_behind_events_nobody_projected_projects_them_before_its_own() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    // Versions 1 and 2 stored, not projected (a writer that bypassed the case stream).
    case.append(vec![
        opened(),
        customer_says("one").at(1_700_000_000).into(),
    ])
    .await;
    let mut stream = store.open_case(case.id).await.expect("open");
    stream
        .record(
            vec![customer_says("two").at(1_700_000_060).into()],
            &deskie_store::Cause::new_chain("test", "test"),
        )
        .await
        .expect("record");
    stream.commit().await.expect("commit");
    let (view, messages) = snapshot(&case).await;
    assert_eq!(view.version, 3);
    assert_eq!(
        messages.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
}
