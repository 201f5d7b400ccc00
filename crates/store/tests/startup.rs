//! `startup::Backing::open`, what every service binary runs first: the database is created
//! if missing and migrated, and each failure names the variable to fix.

use deskie_store::startup::{Backing, StartupError};
use deskie_testkit::{TestDb, TestNats};
use sqlx::Connection;

#[tokio::test]
async fn a_missing_database_is_created_and_migrated_and_a_second_start_keeps_it() {
    let db = TestDb::reserve();
    let nats = TestNats::new();
    let backing = Backing::open(db.url(), nats.url(), nats.prefix(), "deskie-test")
        .await
        .expect("the first start creates the database");
    assert!(
        backing.created_database,
        "the first start says it created it"
    );
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(backing.store.pool())
        .await
        .expect("the migrations table");
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("the migrations folder")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert_eq!(
        usize::try_from(applied).ok(),
        Some(migrations),
        "every migration applied"
    );
    backing.store.pool().close().await;

    let again = Backing::open(db.url(), nats.url(), nats.prefix(), "deskie-test")
        .await
        .expect("a second start uses the database as it is");
    assert!(!again.created_database, "the second start found it");
    let applied_again: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(again.store.pool())
            .await
            .expect("the migrations table");
    assert_eq!(applied_again, applied, "nothing applied twice");
    again.store.pool().close().await;
}

#[tokio::test]
async fn an_unreachable_database_is_named() {
    let nats = TestNats::new();
    let error = Backing::open(
        "postgres://postgres@127.0.0.1:1/deskie_unreachable",
        nats.url(),
        nats.prefix(),
        "deskie-test",
    )
    .await
    .err()
    .expect("PostgreSQL on port 1 is unreachable");
    assert!(matches!(error, StartupError::Database(_)), "{error:?}");
    assert!(
        error.to_string().starts_with("DESKIE_DATABASE_URL: "),
        "{error}"
    );
}

#[tokio::test]
async fn a_malformed_nats_url_is_named() {
    let db = TestDb::reserve();
    let error = Backing::open(db.url(), "nats://[not-a-host", "deskie_t", "deskie-test")
        .await
        .err()
        .expect("a malformed NATS URL");
    assert!(matches!(error, StartupError::Bus(_)), "{error:?}");
    assert!(
        error.to_string().starts_with("DESKIE_NATS_URL: "),
        "{error}"
    );
    // The database came first: it exists, migrated, whatever NATS says.
    let mut conn = sqlx::PgConnection::connect(db.url())
        .await
        .expect("the database was created");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .expect("migrated");
    assert!(applied > 0);
    let _ = conn.close().await;
}
