//! The token hash cache: answers without a database read while ingest hears integration
//! changes, and never later than `CACHE_TTL` after a change, heard or not.

mod common;

use std::time::Instant;

use deskie_ingest::{CACHE_TTL, LISTENER_NAME};
use deskie_testkit::{ProxyMode, eventually};
use sha2::{Digest, Sha256};
use sqlx::Connection;

const NEW_TOKEN: &str = "n3w-webhook-token-after-rotation-0123456789";

const HEARD_ONE: &str = r#"ingest_credential_invalidations_total{scope="integration"}"#;

/// Ingest hearing integration changes, with its integration's answer cached by a webhook.
async fn cached() -> (common::TestIngest, uuid::Uuid) {
    let ingest = common::spawn().await;
    ingest.wait_listening(true).await;
    let id = ingest.integration_id;
    assert_eq!(ingest.post_to(id, common::TOKEN).await, 200);
    (ingest, id)
}

#[tokio::test]
async fn a_rotated_token_is_refused_and_the_new_one_accepted_once_the_change_is_heard() {
    let (ingest, id) = cached().await;
    assert_eq!(ingest.post_to(id, NEW_TOKEN).await, 401);

    common::rotate_token(&ingest.store, id, NEW_TOKEN).await;
    let committed = Instant::now();
    ingest.wait_answer(id, common::TOKEN, 401).await;
    println!(
        "old token refused {:?} after the commit",
        committed.elapsed()
    );
    assert_eq!(ingest.post_to(id, NEW_TOKEN).await, 200);
    assert_eq!(
        ingest.post_to(id, common::TOKEN).await,
        401,
        "and it stays refused"
    );
    ingest.wait_metric(HEARD_ONE, 1).await;
}

#[tokio::test]
async fn a_disconnected_integration_is_refused_once_the_change_is_heard() {
    let (ingest, id) = cached().await;

    common::disconnect_integration(&ingest.store, id).await;
    ingest.wait_answer(id, common::TOKEN, 404).await;
    assert_eq!(ingest.post_to(id, common::TOKEN).await, 404);
    ingest.wait_metric(HEARD_ONE, 1).await;
    // An id looked up before its integration was connected: the cached "unknown" is
    // dropped when the connect is heard.
    let other = uuid::Uuid::new_v4();
    assert_eq!(ingest.post_to(other, common::TOKEN).await, 404);
    common::connect_integration_as(&ingest.store, other, NEW_TOKEN).await;
    ingest.wait_answer(other, NEW_TOKEN, 200).await;
}

/// Anyone may notify on the channel: a payload that names no integration drops every
/// cached answer (it may have meant any) and changes nothing else.
#[tokio::test]
async fn a_notification_that_names_no_integration_drops_every_cached_answer() {
    let (ingest, id) = cached().await;

    sqlx::query("SELECT pg_notify('deskie_integrations', 'not-an-integration-id')")
        .execute(ingest.store.pool())
        .await
        .expect("notify");
    let all = r#"ingest_credential_invalidations_total{scope="all"}"#;
    ingest.wait_metric(all, 1).await;
    let (_, database_before) = ingest.lookups().await;
    assert_eq!(ingest.post_to(id, common::TOKEN).await, 200);
    assert_eq!(ingest.lookups().await.1, database_before + 1, "read again");
    assert_eq!(ingest.metric("ingest_credential_cache_listening").await, 1);
}

/// A database read answers for `CACHE_TTL`: with nothing invalidated, no integration is
/// read more than once per started period, and every other lookup is a cache hit.
#[tokio::test]
async fn cached_answers_do_not_read_the_database() {
    let ingest = common::spawn().await;
    ingest.wait_listening(true).await;
    let unknown = uuid::Uuid::new_v4();
    for (id, status) in [(ingest.integration_id, 200), (unknown, 404)] {
        let (cache_before, database_before) = ingest.lookups().await;
        let started = Instant::now();
        for _ in 0..10 {
            assert_eq!(ingest.post_to(id, common::TOKEN).await, status);
        }
        let elapsed = started.elapsed();
        let (cache, database) = ingest.lookups().await;
        let (cache, database) = (cache - cache_before, database - database_before);
        assert_eq!(cache + database, 10, "one lookup per webhook");
        let periods = u64::try_from(elapsed.as_millis() / CACHE_TTL.as_millis()).unwrap_or(0) + 1;
        assert!(
            database <= periods,
            "{database} database reads in {elapsed:?} for {id} ({status})"
        );
        if elapsed < CACHE_TTL {
            assert_eq!((cache, database), (9, 1), "{status}");
        }
    }
}

/// A notification lost on a session that still looks alive: simulated by changing the row
/// behind the projection's back, which announces nothing. The bound itself is the claim,
/// so the test waits exactly `CACHE_TTL` from the commit.
#[tokio::test]
async fn a_change_nobody_announced_takes_effect_within_the_ttl() {
    let (ingest, id) = cached().await;

    sqlx::query("UPDATE integrations SET webhook_token_sha256 = $2 WHERE id = $1")
        .bind(id)
        .bind(Sha256::digest(NEW_TOKEN.as_bytes()).to_vec())
        .execute(ingest.store.pool())
        .await
        .expect("update");
    let committed = Instant::now();
    tokio::time::sleep_until((committed + CACHE_TTL).into()).await;
    assert_eq!(ingest.post_to(id, common::TOKEN).await, 401);
    assert_eq!(ingest.post_to(id, NEW_TOKEN).await, 200);
    assert_eq!(ingest.metric(HEARD_ONE).await, 0, "nothing was announced");
}

/// Makes `store`'s pool hold `n` open sessions: a pool that finds none idle opens a new
/// one, which fails while the database refuses new sessions.
async fn open_sessions(store: &deskie_store::Store, n: usize) {
    let sleeps = (0..n).map(|_| sqlx::query("SELECT pg_sleep(0.1)").execute(store.pool()));
    for slept in futures::future::join_all(sleeps).await {
        slept.expect("a session");
    }
}

/// New sessions to the test database refused (the pools keep theirs) and the listener's
/// session ended: ingest cannot listen again until the database takes sessions again.
async fn keep_the_listener_out(ingest: &common::TestIngest, out: bool) {
    let mut admin = sqlx::PgConnection::connect(ingest.db.admin_url())
        .await
        .expect("admin");
    let allow = format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS {}",
        ingest.db.name(),
        !out
    );
    sqlx::query(sqlx::AssertSqlSafe(allow))
        .execute(&mut admin)
        .await
        .expect("alter database");
    if out {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = $1 AND application_name = $2",
        )
        .bind(ingest.db.name())
        .bind(LISTENER_NAME)
        .execute(&mut admin)
        .await
        .expect("terminate");
    }
}

#[tokio::test]
async fn while_the_listener_is_down_every_lookup_reads_the_database() {
    let (ingest, id) = cached().await;
    // A returned session goes back to its pool in the background, so back-to-back uses may
    // find none idle: enough stay open for the sequential requests below.
    open_sessions(&ingest.ingest_store, 4).await;
    open_sessions(&ingest.store, 4).await;

    keep_the_listener_out(&ingest, true).await;
    ingest.wait_listening(false).await;
    let (cache_before, database_before) = ingest.lookups().await;
    for _ in 0..5 {
        assert_eq!(ingest.post_to(id, common::TOKEN).await, 200);
    }
    // Unheard, a rotation still takes effect on the very next webhook.
    common::rotate_token(&ingest.store, id, NEW_TOKEN).await;
    assert_eq!(ingest.post_to(id, common::TOKEN).await, 401);
    assert_eq!(ingest.post_to(id, NEW_TOKEN).await, 200);
    let (cache, database) = ingest.lookups().await;
    assert_eq!(cache, cache_before, "nothing served from the cache");
    assert_eq!(database, database_before + 7);

    keep_the_listener_out(&ingest, false).await;
    ingest.wait_listening(true).await;
    eventually("the cache serving again", || async {
        assert_eq!(ingest.post_to(id, NEW_TOKEN).await, 200);
        (ingest.lookups().await.0 > cache_before).then_some(())
    })
    .await;
}

/// PostgreSQL unreachable for ingest: the credentials last read stand in (as before the
/// cache), an integration never read cannot be checked (503), and once PostgreSQL is back
/// ingest listens again by itself.
#[tokio::test]
async fn with_postgres_unreachable_the_last_known_token_stands_in() {
    let (ingest, proxy) = common::spawn_behind_pg_proxy().await;
    ingest.wait_listening(true).await;
    let id = ingest.integration_id;
    assert_eq!(ingest.post_to(id, common::TOKEN).await, 200);

    proxy.set(ProxyMode::Reset);
    ingest.wait_listening(false).await;
    assert_eq!(ingest.post_to(id, common::TOKEN).await, 200);
    assert_eq!(ingest.post_to(id, NEW_TOKEN).await, 401);
    assert_eq!(
        ingest.post_to(uuid::Uuid::new_v4(), common::TOKEN).await,
        503
    );
    let source = |s| format!(r#"ingest_credential_lookups_total{{source="{s}"}}"#);
    assert_eq!(ingest.metric(&source("last_known")).await, 2);
    assert_eq!(ingest.metric(&source("unavailable")).await, 1);

    proxy.set(ProxyMode::Pass);
    ingest.wait_listening(true).await;
    assert_eq!(ingest.post_to(id, common::TOKEN).await, 200);
}
