//! outbound's ledger: one intent per key, disjoint claims, one case's intents in order,
//! settlements fenced by the claim, lost claims reported, the unknown deadline.

mod common;

use std::time::Duration;

use deskie_store::Store;
use deskie_store::outbox::{self, ClaimedIntent, NewIntent, Settlement};
use deskie_testkit::eventually;
use sqlx::PgTransaction;
use uuid::Uuid;

const KIND: &str = "chatra_reply";

async fn enqueue(store: &Store, key: &str, stream: Option<Uuid>) -> bool {
    let mut tx = store.pool().begin().await.expect("begin");
    let enqueued = enqueue_in(&mut tx, key, stream).await;
    tx.commit().await.expect("commit");
    enqueued
}

async fn enqueue_in(tx: &mut PgTransaction<'_>, key: &str, stream: Option<Uuid>) -> bool {
    let intent = NewIntent {
        intent_key: key.into(),
        kind: KIND.into(),
        stream_id: stream,
        payload: serde_json::json!({ "key": key }),
    };
    outbox::enqueue(tx, &intent).await.expect("enqueue")
}

async fn claim(store: &Store, limit: i64, lease: Duration) -> Vec<ClaimedIntent> {
    outbox::claim_due(store.pool(), KIND, limit, lease)
        .await
        .expect("claim")
}

async fn settle(store: &Store, claim: &ClaimedIntent, settlement: Settlement) -> bool {
    let mut tx = store.pool().begin().await.expect("begin");
    let settled = outbox::settle(&mut tx, claim, &settlement)
        .await
        .expect("settle");
    tx.commit().await.expect("commit");
    settled
}

async fn status(store: &Store, key: &str) -> String {
    outbox::status_of(store.pool(), key)
        .await
        .expect("status")
        .expect("row")
}

#[tokio::test]
async fn one_intent_per_key_and_concurrent_claims_are_disjoint() {
    let (_db, store) = common::store().await;
    for n in 0..10 {
        assert!(enqueue(&store, &format!("reply:{n}"), None).await);
        assert!(
            !enqueue(&store, &format!("reply:{n}"), None).await,
            "duplicate key"
        );
    }
    let lease = Duration::from_secs(30);
    let (a, b) = tokio::join!(claim(&store, 6, lease), claim(&store, 6, lease));
    assert_eq!(a.len() + b.len(), 10);
    assert!(
        a.iter().all(|x| b.iter().all(|y| x.id != y.id)),
        "a row was claimed twice"
    );
    assert!(claim(&store, 10, lease).await.is_empty());
    assert!(a.iter().chain(&b).all(|c| !c.previous_claim_lost));

    let retry = Settlement::Retry {
        after: Duration::ZERO,
        error: "429".into(),
    };
    assert!(settle(&store, &a[0], retry).await);
    let again = claim(&store, 10, lease).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert!(
        !again[0].previous_claim_lost,
        "a settled retry is no lost claim"
    );
}

#[tokio::test]
async fn a_streams_intents_are_claimed_one_at_a_time_in_order() {
    let (_db, store) = common::store().await;
    let (case, other) = (Uuid::now_v7(), Uuid::now_v7());
    for key in ["a1", "a2", "a3"] {
        enqueue(&store, key, Some(case)).await;
    }
    enqueue(&store, "b1", Some(other)).await;
    let lease = Duration::from_secs(30);

    let first = claim(&store, 10, lease).await;
    let keys: Vec<&str> = first.iter().map(|c| c.intent_key.as_str()).collect();
    assert_eq!(
        keys,
        ["a1", "b1"],
        "only the oldest open intent of each case"
    );
    assert!(claim(&store, 10, lease).await.is_empty(), "a2 waits for a1");

    // A retry keeps the case's later intents waiting too: they must not overtake it.
    let later = Settlement::Retry {
        after: Duration::from_secs(3600),
        error: "503".into(),
    };
    assert!(settle(&store, &first[0], later).await);
    assert!(
        claim(&store, 10, lease).await.is_empty(),
        "a2 waits for a1's retry"
    );

    // An unknown outcome does not hold the case back.
    let mut conn = store.pool().acquire().await.expect("conn");
    sqlx::query("UPDATE outbox SET not_before = now() WHERE intent_key = 'a1'")
        .execute(&mut *conn)
        .await
        .expect("due now");
    drop(conn);
    let a1 = claim(&store, 10, lease).await;
    assert_eq!(a1.len(), 1);
    let unknown = Settlement::Unknown {
        settle_within: Duration::from_secs(600),
        error: "500".into(),
    };
    assert!(settle(&store, &a1[0], unknown).await);
    let next = claim(&store, 10, lease).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].intent_key, "a2");
    assert_eq!(status(&store, "a3").await, "queued");

    // A delivery closes a2 and lets a3 go.
    assert!(settle(&store, &next[0], Settlement::Sent).await);
    let last = claim(&store, 10, lease).await;
    let keys: Vec<&str> = last.iter().map(|c| c.intent_key.as_str()).collect();
    assert_eq!(keys, ["a3"]);
}

/// The intake enqueues without the case's lock: an enqueue that saw the open row and a
/// settlement that closed it must take turns, or the new row stays `queued` for ever.
#[tokio::test]
async fn a_row_enqueued_while_its_streams_open_row_settles_is_not_left_queued() {
    let (_db, store) = common::store().await;
    let case = Uuid::now_v7();
    assert!(enqueue(&store, "reply:1", Some(case)).await);
    let mut claims = claim(&store, 10, Duration::from_secs(30)).await;
    assert_eq!(claims.len(), 1);
    let open = claims.remove(0);
    let mut intake = store.pool().begin().await.expect("begin");
    assert!(enqueue_in(&mut intake, "reply:2", Some(case)).await);
    let settling = tokio::spawn({
        let store = store.clone();
        async move { settle(&store, &open, Settlement::Sent).await }
    });
    eventually("the settlement waits for the enqueue's commit", || async {
        (common::advisory_lock_waits(&store).await == 1).then_some(())
    })
    .await;
    intake.commit().await.expect("commit");
    assert!(settling.await.expect("settle"));
    assert_eq!(status(&store, "reply:1").await, "sent");
    assert_eq!(status(&store, "reply:2").await, "pending", "promoted");
}

#[tokio::test]
async fn a_claim_whose_lease_ran_out_is_reported_lost_and_cannot_settle() {
    let (_db, store) = common::store().await;
    enqueue(&store, "r", Some(Uuid::now_v7())).await;
    let lease = Duration::from_secs(30);
    let stale = claim(&store, 1, lease).await;
    assert_eq!(stale.len(), 1);
    let mut conn = store.pool().acquire().await.expect("conn");
    assert!(
        outbox::renew_lease(&mut conn, &stale[0], lease)
            .await
            .expect("renew"),
        "the last check before the call"
    );
    // Its worker died after that check: the lease runs out with the request maybe gone.
    expire_leases(&store).await;

    let current = claim(&store, 1, lease).await;
    assert_eq!(current.len(), 1);
    assert!(current[0].previous_claim_lost);
    assert_eq!(current[0].attempts, 2);

    assert!(
        !settle(&store, &stale[0], Settlement::Sent).await,
        "the stale claim is fenced off"
    );
    assert_eq!(status(&store, "r").await, "sending");
    let failed = Settlement::Failed {
        error: "rejected".into(),
    };
    assert!(settle(&store, &current[0], failed).await);
    assert_eq!(status(&store, "r").await, "failed");
}

#[tokio::test]
async fn a_claim_lost_before_its_call_left_is_claimed_again_as_untried() {
    let (_db, store) = common::store().await;
    enqueue(&store, "r", Some(Uuid::now_v7())).await;
    let lease = Duration::from_secs(30);
    let first = claim(&store, 1, lease).await;
    // Its worker died before the last check before the call: nothing left.
    expire_leases(&store).await;
    let second = claim(&store, 1, lease).await;
    assert_eq!(second[0].attempts, 2, "a new claim, fencing the old one");
    assert!(
        !second[0].previous_claim_lost,
        "a claim that never reached its call cannot have delivered"
    );

    // The second reaches its call and dies: the third must not send again.
    let mut conn = store.pool().acquire().await.expect("conn");
    assert!(
        outbox::renew_lease(&mut conn, &second[0], lease)
            .await
            .expect("renew")
    );
    assert!(
        !outbox::renew_lease(&mut conn, &first[0], lease)
            .await
            .expect("renew"),
        "the first claim is fenced off"
    );
    expire_leases(&store).await;
    let third = claim(&store, 1, lease).await;
    assert!(third[0].previous_claim_lost);

    // And the claim after a lost third that never called starts clean again.
    expire_leases(&store).await;
    let fourth = claim(&store, 1, lease).await;
    assert_eq!(fourth[0].attempts, 4);
    assert!(!fourth[0].previous_claim_lost, "each claim starts uncalled");
}

#[tokio::test]
async fn unknown_intents_are_overdue_after_their_deadline_and_resolve_once() {
    let (_db, store) = common::store().await;
    for key in ["late", "early"] {
        enqueue(&store, key, Some(Uuid::now_v7())).await;
    }
    let claims = claim(&store, 10, Duration::from_secs(30)).await;
    let within = |secs| Settlement::Unknown {
        settle_within: Duration::from_secs(secs),
        error: "timeout".into(),
    };
    assert!(settle(&store, &claims[0], within(0)).await);
    assert!(settle(&store, &claims[1], within(3600)).await);

    let overdue = outbox::overdue_unknown(store.pool(), KIND, 10)
        .await
        .expect("overdue");
    let keys: Vec<&str> = overdue.iter().map(|o| o.intent_key.as_str()).collect();
    assert_eq!(keys, ["late"]);

    let mut conn = store.pool().acquire().await.expect("conn");
    assert!(
        outbox::resolve(&mut conn, "late", false, Some("no echo"))
            .await
            .expect("resolve")
    );
    assert!(
        !outbox::resolve(&mut conn, "late", false, None)
            .await
            .expect("again")
    );
    // An echo arriving after the deadline still proves delivery.
    assert!(
        outbox::resolve(&mut conn, "late", true, None)
            .await
            .expect("echo")
    );
    assert!(
        outbox::resolve(&mut conn, "early", true, None)
            .await
            .expect("echo")
    );
    drop(conn);
    assert_eq!(status(&store, "late").await, "sent");
    assert_eq!(status(&store, "early").await, "sent");
}

async fn run(store: &Store, sql: &'static str) {
    sqlx::query(sql)
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Every lease runs out now (as if the clock moved past it).
async fn expire_leases(store: &Store) {
    run(
        store,
        "UPDATE outbox SET lease_until = now() - interval '1 second'",
    )
    .await;
}

#[tokio::test]
async fn open_rows_are_those_that_may_still_lead_to_a_call() {
    let (_db, store) = common::store().await;
    let stream = Some(Uuid::now_v7());
    enqueue(&store, "first", stream).await;
    enqueue(&store, "queued-behind", stream).await;
    let open = || async { outbox::open_count(store.pool()).await.expect("count") };
    assert_eq!(open().await, 2, "pending and queued");
    let claimed = claim(&store, 10, Duration::from_secs(30)).await;
    assert_eq!(open().await, 2, "sending and queued");
    assert!(settle(&store, &claimed[0], Settlement::Sent).await);
    let next = claim(&store, 10, Duration::from_secs(30)).await;
    let failed = Settlement::Failed {
        error: "rejected".into(),
    };
    assert!(settle(&store, &next[0], failed).await);
    assert_eq!(open().await, 0, "sent and failed are settled");
}

#[tokio::test]
async fn a_lease_is_renewed_before_a_call_only_while_the_claim_is_current_and_unexpired() {
    let (_db, store) = common::store().await;
    enqueue(&store, "r", Some(Uuid::now_v7())).await;
    let lease = Duration::from_secs(30);
    let first = claim(&store, 1, lease).await;
    assert_eq!(first[0].tried_for, Duration::ZERO, "the first attempt");
    let mut conn = store.pool().acquire().await.expect("conn");
    assert!(
        outbox::renew_lease(&mut conn, &first[0], lease)
            .await
            .expect("renew")
    );

    // The lease ran out before the call left (the clock moved past it): no renewal, so no
    // call; the claim is still the row's, so it is given back untried.
    expire_leases(&store).await;
    assert!(
        !outbox::renew_lease(&mut conn, &first[0], lease)
            .await
            .expect("renew")
    );
    assert!(
        outbox::release(&mut conn, &first[0], Duration::ZERO)
            .await
            .expect("release")
    );
    let again = claim(&store, 1, lease).await;
    assert_eq!(again[0].attempts, 1, "the released claim did not count");
    assert!(!again[0].previous_claim_lost, "nothing left, nothing lost");

    // Another worker took the row over after the lease ran out: the stale claim may neither
    // renew nor release it.
    expire_leases(&store).await;
    let current = claim(&store, 1, lease).await;
    assert!(
        !outbox::renew_lease(&mut conn, &again[0], lease)
            .await
            .expect("renew")
    );
    assert!(
        !outbox::release(&mut conn, &again[0], Duration::ZERO)
            .await
            .expect("release")
    );
    assert!(
        outbox::renew_lease(&mut conn, &current[0], lease)
            .await
            .expect("renew")
    );
}

#[tokio::test]
async fn the_retry_window_counts_from_the_first_attempt_and_a_release_does_not_start_it() {
    let (_db, store) = common::store().await;
    enqueue(&store, "r", None).await;
    let lease = Duration::from_secs(30);
    let first = claim(&store, 1, lease).await;
    let mut conn = store.pool().acquire().await.expect("conn");
    // Given back before any call: the window has not started.
    run(
        &store,
        "UPDATE outbox SET first_attempt_at = now() - interval '5 hours'",
    )
    .await;
    assert!(
        outbox::release(&mut conn, &first[0], Duration::ZERO)
            .await
            .expect("release")
    );
    let tried = claim(&store, 1, lease).await;
    assert_eq!(tried[0].tried_for, Duration::ZERO);

    // Tried two hours ago and retried since: the window is two hours in.
    run(
        &store,
        "UPDATE outbox SET first_attempt_at = now() - interval '2 hours'",
    )
    .await;
    let retry = Settlement::Retry {
        after: Duration::ZERO,
        error: "503".into(),
    };
    assert!(settle(&store, &tried[0], retry).await);
    let retried = claim(&store, 1, lease).await;
    assert_eq!(retried[0].attempts, 2);
    assert!(
        retried[0].tried_for >= Duration::from_secs(2 * 3600)
            && retried[0].tried_for < Duration::from_secs(3 * 3600),
        "{:?}",
        retried[0].tried_for
    );
}
