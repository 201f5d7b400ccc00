//! What every pooled session starts with, read back from a real PostgreSQL over TCP.

use deskie_store::Store;
use deskie_testkit::TestDb;

async fn setting(store: &Store, name: &str) -> String {
    sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = $1")
        .bind(name)
        .fetch_one(store.pool())
        .await
        .expect("setting")
}

#[tokio::test]
async fn sessions_ask_the_server_for_short_keepalives() {
    let db = TestDb::create().await;
    let store = Store::connect(db.url()).await.expect("connect");
    assert_eq!(setting(&store, "tcp_keepalives_idle").await, "5");
    assert_eq!(setting(&store, "tcp_keepalives_interval").await, "2");
    assert_eq!(setting(&store, "tcp_keepalives_count").await, "3");
    assert_eq!(setting(&store, "tcp_user_timeout").await, "10000");
}

#[tokio::test]
async fn the_idle_transaction_timeout_fills_in_only_where_nothing_is_configured() {
    let db = TestDb::create().await;
    // The test database configures 10 s itself: that stays.
    let configured = Store::connect(db.url()).await.expect("connect");
    assert_eq!(
        setting(&configured, "idle_in_transaction_session_timeout").await,
        "10000"
    );
    configured.pool().close().await;

    let reset = format!(
        "ALTER DATABASE {} RESET idle_in_transaction_session_timeout",
        db.name()
    );
    sqlx::query(sqlx::AssertSqlSafe(reset))
        .execute(configured_admin(&db).await.pool())
        .await
        .expect("reset");
    let unconfigured = Store::connect(db.url()).await.expect("connect");
    assert_eq!(
        setting(&unconfigured, "idle_in_transaction_session_timeout").await,
        "30000"
    );
}

/// A store on the same database, to run the `ALTER DATABASE`.
async fn configured_admin(db: &TestDb) -> Store {
    Store::connect(db.url()).await.expect("connect")
}
