//! Many cases written in one transaction (routing's batches): each message once, every
//! case's lock held until the commit, locks taken in one order, and what a batch may not
//! write refused without a trace.

mod case_support;
mod common;

use case_support::*;
use deskie_store::read_models::cases;
use deskie_store::{Asking, Store, StoreError};
use deskie_testkit::eventually;
use uuid::Uuid;

async fn stored_versions(store: &Store, case_id: Uuid) -> Vec<u64> {
    let history = store.load_stream(case_id).await.expect("history");
    history.iter().map(|e| e.envelope.version).collect()
}

#[tokio::test]
async fn a_batch_writes_each_new_message_once_and_its_cases_commit_together() {
    let (_db, store) = common::store().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let entries = [(a, "m1"), (b, "m2"), (a, "m3"), (a, "m1")];
    let (mut batch, fresh) = store
        .open_cases_once("routing", &entries)
        .await
        .expect("open");
    assert_eq!(fresh, [true, true, true, false], "m1 is named twice");
    assert_eq!(batch.case_ids().collect::<Vec<_>>(), {
        let mut ids = vec![a, b];
        ids.sort();
        ids
    });
    batch.record(a, vec![opened()], &TEST).await.expect("a");
    batch.record(b, vec![opened()], &TEST).await.expect("b");
    // The second message of `a` sees the first's events in the state.
    let state = batch.state(a, &Asking::nothing()).await.expect("state");
    assert_eq!(state.version, 1);
    let says = customer_says("hello").at(1_700_000_000).into();
    let recorded = batch.record(a, vec![says], &TEST).await.expect("a again");
    assert_eq!(recorded[0].version, 2);
    assert!(
        cases::get(store.pool(), a).await.expect("get").is_none(),
        "nothing is visible before the commit"
    );
    batch.commit().await.expect("commit");

    assert_eq!(stored_versions(&store, a).await, [1, 2]);
    assert_eq!(stored_versions(&store, b).await, [1]);
    let view = cases::get(store.pool(), a).await.expect("get").expect("a");
    assert_eq!(view.version, 2);
    assert_eq!(snapshot_version(&store, a).await, Some(2));
    assert_eq!(snapshot_version(&store, b).await, Some(1));
    let asking = Asking::chatra_messages(["chatra-hello"]);
    let state = store.case_state(a, &asking).await.expect("state");
    assert!(state.chatra_message_ids.contains("chatra-hello"));

    // Delivered again: every message was handled, so nothing is new and nothing is written.
    let (batch, fresh) = store
        .open_cases_once("routing", &entries)
        .await
        .expect("open again");
    assert_eq!(fresh, [false; 4]);
    batch.commit().await.expect("commit nothing");
    assert_eq!(stored_versions(&store, a).await, [1, 2]);
}

#[tokio::test]
async fn a_batch_holds_every_case_lock_until_it_commits() {
    let (_db, store) = common::store().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let (mut batch, _) = store
        .open_cases_once("routing", &[(a, "m1"), (b, "m2")])
        .await
        .expect("open");
    batch.record(b, vec![opened()], &TEST).await.expect("b");
    let writer = tokio::spawn({
        let store = store.clone();
        async move {
            let case = store.open_case(b).await.expect("open b");
            case.version()
        }
    });
    eventually("the single writer waits for b's lock", || async {
        (common::advisory_lock_waits(&store).await == 1).then_some(())
    })
    .await;
    assert!(!writer.is_finished());
    batch.commit().await.expect("commit");
    assert_eq!(
        writer.await.expect("writer"),
        1,
        "it opened b after the batch's event"
    );
}

#[tokio::test]
async fn batches_locking_the_same_cases_in_any_order_do_not_deadlock() {
    let (_db, store) = common::store().await;
    let cases: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let writers: Vec<_> = (0..12)
        .map(|n| {
            let store = store.clone();
            // Each batch names the cases in another order.
            let mut order = cases.clone();
            order.rotate_left(n % 5);
            if n % 2 == 1 {
                order.reverse();
            }
            tokio::spawn(async move {
                let keys: Vec<String> = (0..order.len()).map(|i| format!("w{n}-{i}")).collect();
                let entries: Vec<(Uuid, &str)> = order
                    .iter()
                    .zip(&keys)
                    .map(|(case_id, key)| (*case_id, key.as_str()))
                    .collect();
                let (mut batch, _) = store.open_cases_once("routing", &entries).await?;
                for case_id in &order {
                    let event = match batch.version(*case_id)? {
                        0 => opened(),
                        _ => status("pending").into(),
                    };
                    batch.record(*case_id, vec![event], &TEST).await?;
                }
                batch.commit().await
            })
        })
        .collect();
    for writer in writers {
        let outcome = writer.await.expect("writer");
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    for case_id in cases {
        assert_eq!(
            stored_versions(&store, case_id).await,
            (1..=12).collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn what_a_batch_may_not_write_is_refused_and_the_rest_commits() {
    let (_db, store) = common::store().await;
    let store = store.with_max_message_bytes(64 * 1024);
    let (a, b, unlocked) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (mut batch, _) = store
        .open_cases_once("routing", &[(a, "m1"), (b, "m2")])
        .await
        .expect("open");
    batch.record(a, vec![opened()], &TEST).await.expect("a");

    let refused = batch.record(unlocked, vec![opened()], &TEST).await;
    assert!(
        matches!(refused, Err(StoreError::CaseNotLocked { case_id }) if case_id == unlocked),
        "{refused:?}"
    );
    let huge = customer_says(&"x".repeat(128 * 1024))
        .at(1_700_000_000)
        .into();
    let refused = batch.record(b, vec![opened(), huge], &TEST).await;
    assert!(
        matches!(refused, Err(StoreError::EventTooLarge { .. })),
        "{refused:?}"
    );
    assert_eq!(batch.version(b).expect("b"), 0, "b's version did not move");
    batch.commit().await.expect("commit");

    assert_eq!(stored_versions(&store, a).await, [1]);
    assert!(stored_versions(&store, b).await.is_empty());
    assert!(stored_versions(&store, unlocked).await.is_empty());
    assert!(cases::get(store.pool(), b).await.expect("get").is_none());
    assert_eq!(snapshot_version(&store, b).await, None);
}

#[tokio::test]
async fn a_consumer_holding_only_its_cursor_passes_the_cases_writer_and_waits_for_itself() {
    let (_db, store) = common::store().await;
    let case_id = Uuid::now_v7();
    let mut writer = store.open_case(case_id).await.expect("writer");
    writer.record(vec![opened()], &TEST).await.expect("record");

    let mut intake = store
        .open_cursors("outbound", &[case_id])
        .await
        .expect("not held up by the case's writer");
    let refused = intake.state(case_id, &Asking::nothing()).await.map(|_| ());
    assert!(
        matches!(refused, Err(StoreError::CaseNotLocked { .. })),
        "{refused:?}"
    );
    let refused = intake.record(case_id, vec![opened()], &TEST).await;
    assert!(
        matches!(refused, Err(StoreError::CaseNotLocked { .. })),
        "{refused:?}"
    );
    let other = store
        .open_cursors("agent-sync", &[case_id])
        .await
        .expect("another consumer's cursor is its own");
    other.commit().await.expect("commit");

    let again = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .open_cursors("outbound", &[case_id])
                .await
                .map(|b| b.case_ids().count())
        }
    });
    eventually(
        "the consumer's second delivery waits for its first",
        || async { (common::advisory_lock_waits(&store).await == 1).then_some(()) },
    )
    .await;
    intake.commit().await.expect("commit");
    assert_eq!(again.await.expect("second").expect("opened"), 0);
    writer.commit().await.expect("writer commits");
}
