//! The endpoints of the `deskie-agent-sync` binary, as a probe and a scraper see them.

mod common;

use std::time::Duration;

use common::harness;

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let h = harness(Duration::from_secs(60)).await;
    let ann = h.agent("ann@example.com", &["live_chat"]).await;
    h.set_status(ann, "online").await;
    let sent = h
        .wait_for(1, Duration::from_secs(5), || {
            h.metrics.pings("sent") as usize
        })
        .await;
    assert_eq!(sent, 1);

    let base = format!("http://127.0.0.1:{}", h.port);
    let get = |path: &'static str| {
        let url = format!("{base}{path}");
        async move {
            let response = reqwest::get(url).await.expect(path);
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        }
    };
    assert_eq!(
        get("/healthz").await,
        (200, r#"{"status":"ok"}"#.to_owned())
    );
    let ready = r#"{"status":"ready","checks":{"nats":true,"database":true}}"#;
    assert_eq!(get("/readyz").await, (200, ready.to_owned()));
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"agent_sync_pings_total{outcome="sent"} 1"#),
        "{metrics}"
    );
}
