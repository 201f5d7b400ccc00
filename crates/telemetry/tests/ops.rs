//! The ops endpoints served on a real port, as a probe or a scraper sees them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use deskie_telemetry::ops::{self, OpsEndpoints};
use tokio::sync::oneshot;

/// A server on a free port; the database check answers what `database_up` holds.
struct Served {
    base: String,
    database_up: Arc<AtomicBool>,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

fn serve() -> Served {
    let (listener, port) = ops::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let database_up = Arc::new(AtomicBool::new(true));
    let database = Arc::clone(&database_up);
    let endpoints = OpsEndpoints::new(
        move || {
            let database = database.load(Ordering::SeqCst);
            async move { [("nats", true), ("database", database)] }
        },
        || "ops_test_total 3\n".to_owned(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(ops::serve(listener, endpoints, async {
        let _ = stopped.await;
    }));
    Served {
        base: format!("http://127.0.0.1:{port}"),
        database_up,
        stop,
        server,
    }
}

async fn get(url: String) -> (u16, String) {
    let response = reqwest::get(url).await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn healthz_answers_ok() {
    let served = serve();
    let (status, body) = get(format!("{}/healthz", served.base)).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
}

#[tokio::test]
async fn readyz_is_200_when_every_check_passes_and_503_naming_a_failing_one() {
    let served = serve();
    let url = format!("{}/readyz", served.base);
    let ready = r#"{"status":"ready","checks":{"nats":true,"database":true}}"#;
    assert_eq!(get(url.clone()).await, (200, ready.to_owned()));

    served.database_up.store(false, Ordering::SeqCst);
    let not_ready = r#"{"status":"not_ready","checks":{"nats":true,"database":false}}"#;
    assert_eq!(get(url).await, (503, not_ready.to_owned()));
}

#[tokio::test]
async fn metrics_serves_the_rendered_page_as_prometheus_text() {
    let served = serve();
    let response = reqwest::get(format!("{}/metrics", served.base))
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(response.text().await.expect("body"), "ops_test_total 3\n");
}

#[tokio::test]
async fn the_server_returns_once_stop_resolves() {
    let served = serve();
    let (status, _) = get(format!("{}/healthz", served.base)).await;
    assert_eq!(status, 200);
    served.stop.send(()).expect("server running");
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), served.server)
        .await
        .expect("stopped in time");
    stopped.expect("joined").expect("served without error");
}

#[tokio::test]
async fn serving_alongside_ends_when_the_work_and_the_server_have_both_stopped() {
    let (listener, port) = ops::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let endpoints = OpsEndpoints::new(|| async { [("nats", true)] }, String::new);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let work_done = Arc::new(AtomicBool::new(false));
    let work = {
        let (mut stopped, work_done) = (stop.subscribe(), Arc::clone(&work_done));
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
            work_done.store(true, Ordering::SeqCst);
        }
    };
    let when_stopped = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let running = tokio::spawn(ops::serve_alongside(
        listener,
        endpoints,
        when_stopped,
        work,
    ));
    let (status, _) = get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert_eq!(status, 200);
    stop.send_replace(true);
    tokio::time::timeout(std::time::Duration::from_secs(10), running)
        .await
        .expect("stopped in time")
        .expect("joined")
        .expect("served without error");
    assert!(work_done.load(Ordering::SeqCst));
}

#[test]
fn a_taken_address_is_named_in_the_error() {
    let (_held, port) = ops::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let error = ops::bind(addr).expect_err("taken");
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot listen on {addr}")),
        "{error}"
    );
}
