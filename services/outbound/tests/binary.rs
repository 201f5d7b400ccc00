//! The `deskie-outbound` binary as ops run it: a bad variable is named and nothing starts;
//! a good configuration serves `/healthz`, `/readyz` and `/metrics`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deskie_testkit::{TestDb, TestNats};

const KEY: &str = "abababababababababababababababababababababababababababababababab";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Kills the process when dropped, so a failing test leaves none behind.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_bad_variable_is_named_and_nothing_starts() {
    for (var, value) in [
        ("DESKIE_OUTBOUND_RATE_PER_SECOND", "lots"),
        ("DESKIE_OUTBOUND_LEASE_SECS", "0"),
        ("DESKIE_OUTBOUND_ADDR", "nowhere"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_deskie-outbound"))
            .env("DESKIE_ENCRYPTION_KEY", KEY)
            .env(
                "DESKIE_DATABASE_URL",
                "postgres://postgres@127.0.0.1:1/never",
            )
            .env(var, value)
            .output()
            .expect("run");
        assert!(!output.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(var), "{var} not named: {stderr}");
    }
}

#[tokio::test]
async fn it_serves_health_readiness_and_metrics() {
    let db = TestDb::create().await;
    let nats = TestNats::new();
    let port = free_port();
    let _running = Running(
        Command::new(env!("CARGO_BIN_EXE_deskie-outbound"))
            .env("DESKIE_ENCRYPTION_KEY", KEY)
            .env("DESKIE_DATABASE_URL", db.url())
            .env("DESKIE_NATS_URL", nats.url())
            .env("DESKIE_NATS_PREFIX", nats.prefix())
            .env("DESKIE_OUTBOUND_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("deskie-outbound starts"),
    );
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await
            && response.status() == 200
        {
            break response.json::<serde_json::Value>().await.expect("json");
        }
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready["checks"]["nats"], true);
    assert_eq!(ready["checks"]["database"], true);
    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("outbound_"), "{metrics}");
}
