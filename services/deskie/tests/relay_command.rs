//! `deskie relay` as ops run it: it creates and migrates the database, leads, and serves
//! `/healthz`, `/readyz` and its lag on `/metrics` (`DESKIE_RELAY_ADDR`).

use std::time::{Duration, Instant};

use deskie_testkit::{ServiceProcess, TestDb, TestNats};

const BIN: &str = env!("CARGO_BIN_EXE_deskie");

#[tokio::test]
async fn it_serves_health_readiness_and_its_lag() {
    let (db, nats) = (TestDb::reserve(), TestNats::new());
    let envs = [
        ("DESKIE_DATABASE_URL", db.url()),
        ("DESKIE_NATS_URL", nats.url()),
        ("DESKIE_NATS_PREFIX", nats.prefix()),
    ];
    let relay =
        ServiceProcess::spawn_with_args(BIN, &["relay"], &envs, deskie::relay_command::ADDR_VAR);
    let ready = relay.ready().await;
    assert_eq!(ready["checks"]["database"], true);
    assert_eq!(ready["checks"]["nats"], true);
    assert_eq!(relay.get("/healthz").await.map(|(s, _)| s), Some(200));
    // It migrated the database it created, and leads.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = relay.get("/metrics").await.expect("metrics");
        assert!(page.contains("relay_unpublished_events"), "{page}");
        assert!(
            page.contains("relay_oldest_unpublished_age_seconds"),
            "{page}"
        );
        if page.contains("relay_leader 1") {
            break;
        }
        assert!(Instant::now() < deadline, "never leads:\n{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_bad_address_is_named_and_nothing_starts() {
    let output = std::process::Command::new(BIN)
        .arg("relay")
        .env(deskie::relay_command::ADDR_VAR, "nowhere")
        .env(
            "DESKIE_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/never",
        )
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DESKIE_RELAY_ADDR"), "{stderr}");
}
