//! Replies benchmark: agent replies from `POST /api/v1/cases/{id}/replies` to the Chatra
//! stand-in's `POST /messages/` (api → event store → relay → JetStream → outbound ledger →
//! Chatra call).
//!
//! `cargo run --release -p deskie-bench --bin bench-replies -- [replies] [senders] [cases] [rate]`
//!
//! Opens `cases` chats (default 200) through ingest, then sends `replies` (default 5,000)
//! from `senders` concurrent API clients (default 32), spread round-robin over the cases,
//! at `rate` replies per second (default 0: as fast as the senders go, i.e. saturation).
//! Latency is from the API request leaving to the stand-in receiving the Chatra call; the
//! rate is replies received by the stand-in per second of wall time. The per-integration
//! rate limit is lifted (it would measure itself); everything runs in this process against
//! the machine's PostgreSQL and NATS, on 127.0.0.1 only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskie_bench::Figures;
use deskie_domain::case::case_id_for;
use deskie_testkit::ChatraStandIn;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const ADMIN: &str = "bench-admin-token-0123456789";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _logs = deskie_bench::logs_from_env();
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().ok());
    let total = args.next().flatten().unwrap_or(5_000);
    let senders = args.next().flatten().unwrap_or(32).max(1) as usize;
    let case_count = args.next().flatten().unwrap_or(200).max(1);
    let rate = args.next().flatten().unwrap_or(0);

    let chatra = ChatraStandIn::start().await;
    chatra.accept_keys("bench-public", "bench-secret");
    let limits = deskie_bench::raw::before_load().await?;
    let env = deskie_bench::bench_env(ADMIN, chatra.base_url()).await?;
    let settings = &env.settings;
    let options = deskie_bench::unthrottled_suite_options(settings)?;
    let shutdown = CancellationToken::new();
    let suite = deskie::start_suite_with(settings, options, shutdown.clone()).await?;
    let api = format!("http://127.0.0.1:{}/api/v1", suite.api_port);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(senders)
        .build()?;
    let post = |path: String, token: &str, body: Value| {
        http.post(format!("{api}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };

    let group: Value = post("/groups".into(), ADMIN, json!({"name": "Bench"}))
        .await?
        .json()
        .await?;
    let integration: Value = post(
        "/integrations/chatra".into(),
        ADMIN,
        json!({"public_key": "bench-public", "secret_key": "bench-secret",
               "default_group_id": group["id"], "panel": "separate", "group_mappings": []}),
    )
    .await?
    .json()
    .await?;
    let agent: Value = post(
        "/agents".into(),
        ADMIN,
        json!({"email": "bench@example.com", "name": "Bench", "channel_access": ["live_chat"]}),
    )
    .await?
    .json()
    .await?;
    let token = agent["token"].as_str().unwrap_or_default().to_owned();
    let webhook_url = integration["webhook_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let integration_id: Uuid = integration["id"].as_str().unwrap_or_default().parse()?;

    println!("deskie replies benchmark: API → outbound → Chatra stand-in, 2 cores, loopback");
    eprintln!("  opening {case_count} cases");
    let mut cases = Vec::new();
    for n in 0..case_count {
        let body = format!(
            r#"{{"eventName":"chatStarted","client":{{"id":"client-{n}","chatId":"chat-{n}"}},"messages":[{{"id":"m-{n}","type":"client","text":"Hello {n}"}}]}}"#
        );
        let status = http
            .post(&webhook_url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?
            .status();
        anyhow::ensure!(status == 200, "webhook {n}: {status}");
        cases.push(case_id_for(
            integration_id,
            &format!("client-{n}"),
            &format!("chat-{n}"),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM cases")
            .fetch_one(suite.store.pool())
            .await?;
        if open >= i64::try_from(case_count)? || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let pace = (rate > 0).then(|| {
        Arc::new(tokio::sync::Mutex::new(tokio::time::interval(
            Duration::from_secs_f64(1.0 / rate as f64),
        )))
    });
    let started = Instant::now();
    let workers: Vec<_> = (0..senders)
        .map(|_| {
            let (http, api, token, cases) =
                (http.clone(), api.clone(), token.clone(), cases.clone());
            let (next, sent_at, pace) = (next.clone(), sent_at.clone(), pace.clone());
            tokio::spawn(async move {
                loop {
                    if let Some(pace) = &pace {
                        pace.lock().await.tick().await;
                    }
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    if n % 1000 == 0 && n > 0 {
                        eprintln!("  sent {n}/{total} replies");
                    }
                    let case = cases[usize::try_from(n).unwrap_or(0) % cases.len()];
                    if let Ok(mut s) = sent_at.lock() {
                        s.insert(n, Instant::now());
                    }
                    let accepted = http
                        .post(format!("{api}/cases/{case}/replies"))
                        .bearer_auth(&token)
                        .json(&json!({ "text": format!("bench reply {n}") }))
                        .send()
                        .await
                        .map(|r| r.status() == 202)
                        .unwrap_or(false);
                    if !accepted && let Ok(mut s) = sent_at.lock() {
                        s.remove(&n);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let accepted = sent_at.lock().map(|s| s.len()).unwrap_or(0);
    let api_elapsed = started.elapsed();
    println!(
        "API accepted {accepted} replies in {:.2} s = {:.0}/s",
        api_elapsed.as_secs_f64(),
        accepted as f64 / api_elapsed.as_secs_f64()
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_report = Instant::now();
    while chatra.sent_messages().len() < accepted && Instant::now() < deadline {
        if last_report.elapsed() > Duration::from_secs(2) {
            eprintln!("  Chatra has {}/{accepted}", chatra.sent_messages().len());
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received = chatra.sent_messages();
    let sent_at = sent_at.lock().map(|s| s.clone()).unwrap_or_default();
    let matched = deskie_bench::match_calls(
        &received,
        &sent_at,
        |call| {
            call.body["text"]
                .as_str()
                .and_then(|t| t.strip_prefix("bench reply "))
                .and_then(|t| t.parse::<u64>().ok())
        },
        started,
    );
    let figures = Figures {
        name: match rate {
            0 => format!(
                "API reply → Chatra call (saturation, {senders} senders, {case_count} cases)"
            ),
            rate => format!("API reply → Chatra call ({rate}/s, {case_count} cases)"),
        },
        count: matched.latency_us.len(),
        elapsed: matched.last.saturating_duration_since(started),
        latency_us: matched.latency_us,
    };
    println!("{}", figures.line());
    println!("{}", limits.ratio_line(&figures));
    println!(
        "Chatra received {} calls for {accepted} accepted replies ({} duplicates, {} not matched to a reply)",
        received.len(),
        matched.duplicates,
        matched.unmatched
    );
    anyhow::ensure!(
        figures.count as usize == accepted && matched.duplicates == 0,
        "not exactly one call per accepted reply"
    );
    shutdown.cancel();
    suite.wait().await;
    Ok(())
}
