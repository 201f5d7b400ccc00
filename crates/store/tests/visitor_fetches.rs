//! agent-sync's visitor-fetch ledger: one row per case and round, disjoint claims, retries
//! that wait and keep the error, settlements fenced by the claim, releases not counted.

mod common;

use std::time::Duration;

use deskie_store::Store;
use deskie_store::visitor_fetches::{self, ClaimedFetch, FetchSettlement, NewFetch};
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(30);

async fn enqueue(store: &Store, case_id: Uuid, round: &str) -> bool {
    let fetch = NewFetch {
        case_id,
        round: round.into(),
        causation_id: format!("event-{round}"),
        correlation_id: "corr".into(),
    };
    visitor_fetches::enqueue(store.pool(), &fetch)
        .await
        .expect("enqueue")
}

async fn claim(store: &Store) -> Vec<ClaimedFetch> {
    visitor_fetches::claim_due(store.pool(), 10, LEASE)
        .await
        .expect("claim")
}

async fn settle(store: &Store, claim: &ClaimedFetch, settlement: FetchSettlement) -> bool {
    let mut conn = store.pool().acquire().await.expect("conn");
    visitor_fetches::settle(&mut conn, claim, &settlement)
        .await
        .expect("settle")
}

async fn only_row(store: &Store, case_id: Uuid) -> visitor_fetches::VisitorFetch {
    let rows = visitor_fetches::for_case(store.pool(), case_id)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.into_iter().next().expect("one row")
}

#[tokio::test]
async fn one_row_per_case_and_round_and_concurrent_claims_are_disjoint() {
    let (_db, store) = common::store().await;
    let cases: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    for case in &cases {
        assert!(enqueue(&store, *case, "case_opened").await);
        assert!(
            !enqueue(&store, *case, "case_opened").await,
            "a redelivered event enqueues nothing"
        );
    }
    assert!(
        enqueue(&store, cases[0], "chat_ended:7").await,
        "another round"
    );
    let claim_four = || visitor_fetches::claim_due(store.pool(), 4, LEASE);
    let (a, b) = tokio::join!(claim_four(), claim_four());
    let (a, b) = (a.expect("claim a"), b.expect("claim b"));
    assert_eq!(a.len() + b.len(), 7);
    assert!(a.iter().all(|x| b.iter().all(|y| x.id != y.id)), "disjoint");
    assert!(a.iter().chain(&b).all(|c| c.attempts == 1));
    assert!(
        a.iter()
            .chain(&b)
            .any(|c| c.round == "chat_ended:7" && c.causation_id == "event-chat_ended:7")
    );
    assert!(claim(&store).await.is_empty(), "all leased");
}

#[tokio::test]
async fn a_retry_waits_keeps_the_error_and_counts_the_attempt() {
    let (_db, store) = common::store().await;
    let case = Uuid::now_v7();
    assert!(enqueue(&store, case, "case_opened").await);
    let first = claim(&store).await.remove(0);
    let retry = FetchSettlement::Retry {
        after: Duration::from_secs(600),
        error: "outcome unknown: HTTP 500".into(),
    };
    assert!(settle(&store, &first, retry).await);
    let row = only_row(&store, case).await;
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert_eq!(row.last_error.as_deref(), Some("outcome unknown: HTTP 500"));
    assert!(row.next_attempt_at > chrono::Utc::now() + chrono::Duration::seconds(500));
    assert!(claim(&store).await.is_empty(), "not due yet");

    let due_now = FetchSettlement::Retry {
        after: Duration::ZERO,
        error: "again".into(),
    };
    sqlx::query("UPDATE agent_sync_visitor_fetches SET next_attempt_at = now() WHERE case_id = $1")
        .bind(case)
        .execute(store.pool())
        .await
        .expect("make due");
    let second = claim(&store).await.remove(0);
    assert_eq!(second.attempts, 2);
    assert!(
        !settle(&store, &first, due_now).await,
        "the first claim is no longer current"
    );
    assert!(settle(&store, &second, FetchSettlement::Done).await);
    let row = only_row(&store, case).await;
    assert_eq!((row.status.as_str(), row.attempts), ("done", 2));
    assert!(
        claim(&store).await.is_empty(),
        "done rows are never claimed"
    );
}

#[tokio::test]
async fn a_lost_lease_is_claimed_again_and_a_release_is_not_an_attempt() {
    let (_db, store) = common::store().await;
    let case = Uuid::now_v7();
    assert!(enqueue(&store, case, "case_opened").await);
    let short = visitor_fetches::claim_due(store.pool(), 1, Duration::from_millis(1))
        .await
        .expect("claim")
        .remove(0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = claim(&store).await.remove(0);
    assert_eq!(again.attempts, 2, "the lease ran out");

    let mut conn = store.pool().acquire().await.expect("conn");
    assert!(
        !visitor_fetches::release(&mut conn, &short, Duration::ZERO)
            .await
            .expect("release")
    );
    assert!(
        visitor_fetches::release(&mut conn, &again, Duration::ZERO)
            .await
            .expect("release")
    );
    let row = only_row(&store, case).await;
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));

    let last = claim(&store).await.remove(0);
    let failed = FetchSettlement::Failed {
        error: "rejected by Chatra (HTTP 404)".into(),
    };
    assert!(settle(&store, &last, failed).await);
    let row = only_row(&store, case).await;
    assert_eq!(row.status, "failed");
    assert!(claim(&store).await.is_empty());
}
