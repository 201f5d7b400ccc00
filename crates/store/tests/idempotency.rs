//! The api's idempotency-key ledger: one claim per key, answers fenced by the claim,
//! released keys free again, abandoned and expired rows taken over, pruning by age.

mod common;

use std::time::Duration;

use deskie_store::Store;
use deskie_store::idempotency::{self, Claim, KeyScope, StoredAnswer};

const LEASE: Duration = Duration::from_secs(60);
const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
const BODY: [u8; 32] = [1; 32];
const OTHER_BODY: [u8; 32] = [2; 32];

fn scope(key: &str) -> KeyScope {
    KeyScope {
        caller: "admin".into(),
        method: "POST".into(),
        path: "/api/v1/groups".into(),
        key: key.into(),
    }
}

fn answer() -> StoredAnswer {
    StoredAnswer {
        status: 201,
        headers: vec![("content-type".into(), "application/json".into())],
        body_encrypted: b"sealed".to_vec(),
    }
}

async fn claim(store: &Store, scope: &KeyScope, body: &[u8; 32]) -> Claim {
    idempotency::claim(store.pool(), scope, body, LEASE, RETENTION)
        .await
        .expect("claim")
}

fn acquired(claim: &Claim) -> uuid::Uuid {
    match claim {
        Claim::Acquired(id) => *id,
        other => panic!("expected the key to be acquired, got {other:?}"),
    }
}

/// Moves the row's clock back by `secs` (its creation and its lease).
async fn age(store: &Store, scope: &KeyScope, secs: i64) {
    sqlx::query(
        "UPDATE api_idempotency_keys
            SET created_at = created_at - make_interval(secs => $2),
                locked_until = locked_until - make_interval(secs => $2)
          WHERE idempotency_key = $1",
    )
    .bind(&scope.key)
    .bind(secs as f64)
    .execute(store.pool())
    .await
    .expect("age");
}

#[tokio::test]
async fn the_first_claim_wins_and_its_answer_is_found_afterwards() {
    let (_db, store) = common::store().await;
    let key = scope("k1");
    let first = acquired(&claim(&store, &key, &BODY).await);

    let meanwhile = claim(&store, &key, &BODY).await;
    assert_eq!(
        meanwhile,
        Claim::InFlight {
            request_sha256: BODY.to_vec()
        }
    );

    assert!(
        idempotency::complete(store.pool(), &key, first, &answer())
            .await
            .expect("complete")
    );
    let again = claim(&store, &key, &OTHER_BODY).await;
    assert_eq!(
        again,
        Claim::Completed {
            request_sha256: BODY.to_vec(),
            answer: answer()
        }
    );

    // Another caller, method or path with the same key is another key.
    for other in [
        KeyScope {
            caller: "agent:0191d2a4-6a7e-7c1b-9e2f-3b8f1c0d4e5a".into(),
            ..key.clone()
        },
        KeyScope {
            path: "/api/v1/rules".into(),
            ..key.clone()
        },
    ] {
        acquired(&claim(&store, &other, &BODY).await);
    }
}

#[tokio::test]
async fn a_released_key_can_be_claimed_again_and_stale_claims_change_nothing() {
    let (_db, store) = common::store().await;
    let key = scope("k2");
    let first = acquired(&claim(&store, &key, &BODY).await);
    assert!(
        idempotency::release(store.pool(), &key, first)
            .await
            .expect("release")
    );
    let second = acquired(&claim(&store, &key, &BODY).await);
    assert_ne!(first, second);

    // The first holder's claim is no longer the row's.
    assert!(
        !idempotency::complete(store.pool(), &key, first, &answer())
            .await
            .expect("complete")
    );
    assert!(
        !idempotency::release(store.pool(), &key, first)
            .await
            .expect("release")
    );
    assert!(matches!(
        claim(&store, &key, &BODY).await,
        Claim::InFlight { .. }
    ));
}

#[tokio::test]
async fn an_abandoned_claim_is_taken_over_after_its_lease_by_the_same_body_only() {
    let (_db, store) = common::store().await;
    let key = scope("k3");
    let abandoned = acquired(&claim(&store, &key, &BODY).await);
    age(&store, &key, LEASE.as_secs() as i64 + 1).await;

    assert_eq!(
        claim(&store, &key, &OTHER_BODY).await,
        Claim::InFlight {
            request_sha256: BODY.to_vec()
        }
    );
    let taken_over = acquired(&claim(&store, &key, &BODY).await);
    assert_ne!(abandoned, taken_over);
    assert!(
        !idempotency::complete(store.pool(), &key, abandoned, &answer())
            .await
            .expect("complete")
    );
}

#[tokio::test]
async fn expired_answers_no_longer_count_and_are_pruned() {
    let (_db, store) = common::store().await;
    let old = scope("old");
    let fresh = scope("fresh");
    for key in [&old, &fresh] {
        let id = acquired(&claim(&store, key, &BODY).await);
        assert!(
            idempotency::complete(store.pool(), key, id, &answer())
                .await
                .expect("complete")
        );
    }
    age(&store, &old, RETENTION.as_secs() as i64 + 1).await;

    assert_eq!(
        idempotency::prune(store.pool(), RETENTION)
            .await
            .expect("prune"),
        1
    );
    assert!(matches!(
        claim(&store, &fresh, &BODY).await,
        Claim::Completed { .. }
    ));
    acquired(&claim(&store, &old, &OTHER_BODY).await);

    // Expired but not pruned yet: taken over with any body.
    age(&store, &fresh, RETENTION.as_secs() as i64 + 1).await;
    acquired(&claim(&store, &fresh, &OTHER_BODY).await);
}
