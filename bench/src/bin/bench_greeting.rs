//! Greeting benchmark: how long a new chat waits for a rule's auto-reply under load —
//! webhook into ingest → routing → rules → outbound → the Chatra stand-in.
//!
//! `cargo run --release -p deskie-bench --bin bench-greeting -- [chats] [rate_per_s]`
//!
//! One enabled `case_created` rule answers every new chat with a templated greeting. New
//! chats (one `chatStarted` each) arrive at a steady rate (default 1,000 at 100/s). Latency
//! runs from sending the webhook to the stand-in receiving the greeting's `POST /messages/`
//! (both clocks in this process), after 20 unmeasured warm-up chats. Compare with
//! `bench-cases` (webhook → readable case) for what the rule and the reply add.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskie_bench::Figures;
use deskie_testkit::ChatraStandIn;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "bench-admin-token-0123456789";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _logs = deskie_bench::logs_from_env();
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().ok());
    let total = args.next().flatten().unwrap_or(1_000);
    let rate = args.next().flatten().unwrap_or(100).max(1);

    let chatra = ChatraStandIn::start().await;
    chatra.accept_keys("bench-public", "bench-secret");
    let limits = deskie_bench::raw::before_load().await?;
    let env = deskie_bench::bench_env(ADMIN, chatra.base_url()).await?;
    let settings = &env.settings;
    let options = deskie_bench::unthrottled_suite_options(settings)?;
    let shutdown = CancellationToken::new();
    let suite = deskie::start_suite_with(settings, options, shutdown.clone()).await?;
    let api = format!("http://127.0.0.1:{}/api/v1", suite.api_port);
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{api}{path}"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    let group: Value = post("/groups", json!({"name": "Bench"}))
        .await?
        .json()
        .await?;
    let integration: Value = post(
        "/integrations/chatra",
        json!({"public_key": "bench-public", "secret_key": "bench-secret",
               "default_group_id": group["id"], "panel": "separate", "group_mappings": []}),
    )
    .await?
    .json()
    .await?;
    let created = post(
        "/rules",
        json!({"name": "Greet", "trigger": "case_created",
               "actions": [{"type": "reply", "text": "Hi {{customer.name}}, we are on it."}]}),
    )
    .await?;
    anyhow::ensure!(created.status() == 201, "rule: {}", created.text().await?);
    let webhook_url = integration["webhook_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    println!(
        "deskie greeting benchmark: new chat → rule → auto-reply at Chatra, 2 cores, loopback"
    );

    // Warm-up, not measured: the first chats pay for consumers being created and
    // connections opened (about a second), which is not what this measures.
    for n in 0..20 {
        let body = json!({"eventName": "chatStarted",
            "client": {"id": format!("warm-client-{n}"), "chatId": format!("warm-chat-{n}")},
            "messages": [{"id": format!("warm-m-{n}"), "type": "client", "text": "Hello?"}]});
        http.post(&webhook_url).json(&body).send().await?;
    }
    let warm_deadline = Instant::now() + Duration::from_secs(30);
    while chatra.sent_messages().len() < 20 && Instant::now() < warm_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let warm = chatra.sent_messages().len();
    eprintln!("  warmed up with {warm} chats");

    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..total {
        ticker.tick().await;
        let (http, url, sent_at) = (http.clone(), webhook_url.clone(), sent_at.clone());
        tasks.push(tokio::spawn(async move {
            let client = format!("greet-client-{n}");
            let body = json!({"eventName": "chatStarted",
                "client": {"id": client, "chatId": format!("greet-chat-{n}"), "info": {"name": format!("Visitor {n}")}},
                "messages": [{"id": format!("greet-m-{n}"), "type": "client", "text": "Hello?"}]});
            if let Ok(mut s) = sent_at.lock() {
                s.insert(client.clone(), Instant::now());
            }
            let ok = http.post(&url).json(&body).send().await.map(|r| r.status() == 200);
            if !matches!(ok, Ok(true))
                && let Ok(mut s) = sent_at.lock()
            {
                s.remove(&client);
            }
        }));
        if n > 0 && n.is_multiple_of(rate) {
            eprintln!("  sent {n}/{total} chats");
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    let expected = sent_at.lock().map(|s| s.len()).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while chatra.sent_messages().len() < warm + expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent_at = sent_at.lock().map(|s| s.clone()).unwrap_or_default();
    let greetings = chatra.sent_messages();
    let matched = deskie_bench::match_calls(
        &greetings,
        &sent_at,
        |call| call.body["clientId"].as_str().map(str::to_owned),
        started,
    );
    let figures = Figures {
        name: format!("new chat → greeting at Chatra ({rate}/s)"),
        count: matched.latency_us.len(),
        elapsed: matched.last.saturating_duration_since(started),
        latency_us: matched.latency_us,
    };
    println!("{}", figures.line());
    println!("{}", limits.ratio_line(&figures));
    println!(
        "{} greetings for {expected} accepted chats ({} calls in all, {} duplicates)",
        figures.count,
        greetings.len(),
        matched.duplicates
    );
    anyhow::ensure!(
        figures.count as usize == expected && matched.duplicates == 0,
        "not exactly one greeting per accepted chat"
    );
    shutdown.cancel();
    suite.wait().await;
    Ok(())
}
