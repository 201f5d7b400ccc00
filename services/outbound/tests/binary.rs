//! The `deskie-outbound` binary as ops run it: a bad variable is named and nothing starts;
//! a good configuration serves `/healthz`, `/readyz` and `/metrics`.

use deskie_testkit::{ServiceProcess, TestDb, TestNats, run_with};

const BIN: &str = env!("CARGO_BIN_EXE_deskie-outbound");
const KEY: &str = "abababababababababababababababababababababababababababababababab";

#[test]
fn a_bad_variable_is_named_and_nothing_starts() {
    let base = [
        ("DESKIE_ENCRYPTION_KEY", KEY),
        (
            "DESKIE_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/never",
        ),
    ];
    for (var, value) in [
        ("DESKIE_OUTBOUND_RATE_PER_SECOND", "lots"),
        ("DESKIE_OUTBOUND_LEASE_SECS", "0"),
        ("DESKIE_OUTBOUND_ADDR", "nowhere"),
        ("DESKIE_TELEGRAM_API_URL", "api.telegram.org"),
    ] {
        let output = run_with(BIN, &base, var, value);
        assert!(!output.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(var), "{var} not named: {stderr}");
    }
}

#[tokio::test]
async fn it_serves_health_readiness_and_metrics() {
    let (db, nats) = (TestDb::create().await, TestNats::new());
    let envs = [
        ("DESKIE_ENCRYPTION_KEY", KEY),
        ("DESKIE_DATABASE_URL", db.url()),
        ("DESKIE_NATS_URL", nats.url()),
        ("DESKIE_NATS_PREFIX", nats.prefix()),
    ];
    let service = ServiceProcess::spawn(BIN, &envs, "DESKIE_OUTBOUND_ADDR");
    let ready = service.ready().await;
    assert_eq!(ready["checks"]["nats"], true);
    assert_eq!(ready["checks"]["database"], true);
    assert_eq!(service.get("/healthz").await.map(|(s, _)| s), Some(200));
    let (_, metrics) = service.get("/metrics").await.expect("metrics");
    assert!(metrics.contains("outbound_replies_total"), "{metrics}");
}
