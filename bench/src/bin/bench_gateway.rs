//! Gateway benchmark: webhooks per second and p50/p99 latency at saturation, next to two raw
//! limits of the same machine measured in the same run: JetStream publish-with-ack, and a
//! bare actix-web handler that publishes the body and answers 200 after the PubAck (no
//! token check, no parsing), driven by the same HTTP load as the gateway.
//!
//! `cargo run --release -p deskie-bench --bin bench-gateway -- [webhooks] [concurrency]`
//!
//! Uses the machine's PostgreSQL and NATS (a throw-away database and NATS prefix, removed
//! afterwards). Every request is bounded in count and sent only to 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use deskie_bench::{Figures, raw};
use deskie_bus::{Bus, Topology};
use deskie_ingest::{Application, IngestConfig};
use deskie_proto::events::IntegrationSettings;
use deskie_store::Store;
use deskie_testkit::{TestDb, TestNats, connect_integration, integration_settings};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TOKEN: &str = "bench-webhook-token-0123456789abcdef";

/// A Chatra fragment of realistic size (~1 KiB) with unique ids, so nothing dedupes.
fn webhook_body(n: u64) -> Vec<u8> {
    format!(
        r#"{{"eventName":"chatFragment","client":{{"id":"bench-client-{c}","chatId":"bench-chat-{c}","displayedName":"Visitor {c}",
"info":{{"name":"Visitor {c}","email":"visitor{c}@example.com","Order number":"A-{n}"}}}},"agents":[{{"id":"Zx8Cv2Bn4Mq6Lk1Jh"}}],
"messages":[{{"id":"bench-msg-{n}","type":"client","text":"Hello, this is message {n}. My parcel still has not arrived and I would like to know when it will be delivered, please.","createdAt":1732608000123}},
{{"id":"bench-msg-{n}-a","type":"agent","text":"Sorry about that. Let me check with the courier right away and come back to you.","agentId":"Zx8Cv2Bn4Mq6Lk1Jh","agentName":"Julia","createdAt":1732608041500}}]}}"#,
        c = n % 500,
        n = n
    )
    .into_bytes()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let total: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    println!(
        "deskie gateway benchmark: {total} webhooks, {concurrency} concurrent clients, ~{} B bodies",
        webhook_body(0).len()
    );

    let db = TestDb::create().await;
    let nats = TestNats::new();
    let store = Store::connect(db.url()).await?;
    store.migrate().await?;
    let bus = Bus::connect(nats.url(), Topology::new(nats.prefix()), "bench").await?;
    bus.provision().await?;

    let subject = bus.topology().webhook_subject("raw", "chatFragment");
    let raw = raw::publishes(&bus, subject, total, concurrency, webhook_body).await?;
    println!("{}", raw.line());
    let bare_url = bare_handler(bus.clone())?;
    let bare = http_load(
        "raw: bare actix handler (HTTP → PubAck → 200)",
        &bare_url,
        total,
        concurrency,
    )
    .await?;
    println!("{}", bare.line());

    // An integration whose webhook token is TOKEN.
    let integration = Uuid::new_v4();
    let settings = IntegrationSettings {
        webhook_token_sha256: Sha256::digest(TOKEN.as_bytes()).to_vec(),
        ..integration_settings(Uuid::new_v4())
    };
    connect_integration(&store, integration, settings).await;
    let shutdown = CancellationToken::new();
    let app = Application::build(
        IngestConfig {
            addr: "127.0.0.1:0".parse()?,
            max_body_bytes: 1024 * 1024,
        },
        store.clone(),
        bus.clone(),
    )
    .await?;
    let url = format!(
        "http://127.0.0.1:{}/webhooks/chatra/{integration}?token={TOKEN}",
        app.port()
    );
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let gateway = http_load(
        "ingest gateway (HTTP → PubAck → 200)",
        &url,
        total,
        concurrency,
    )
    .await?;
    println!("{}", gateway.line());
    println!(
        "gateway throughput = {:.0}% of the bare actix handler, {:.0}% of raw JetStream publish-with-ack",
        100.0 * gateway.rate() / bare.rate(),
        100.0 * gateway.rate() / raw.rate()
    );
    shutdown.cancel();
    Ok(())
}

/// The floor under any webhook gateway: an actix-web handler that publishes the body to
/// JetStream and answers 200 after the PubAck; its URL.
fn bare_handler(bus: Bus) -> anyhow::Result<String> {
    let subject = bus.topology().webhook_subject("bare", "chatFragment");
    let next = Arc::new(AtomicU64::new(0));
    let server = actix_web::HttpServer::new(move || {
        let (bus, subject, next) = (bus.clone(), subject.clone(), next.clone());
        actix_web::App::new().default_service(actix_web::web::to(move |body: Bytes| {
            let (bus, subject, next) = (bus.clone(), subject.clone(), next.clone());
            async move {
                let id = format!("bare-{}", next.fetch_add(1, Ordering::Relaxed));
                match bus
                    .publish_durable(subject, &id, HeaderMap::new(), body)
                    .await
                {
                    Ok(_) => actix_web::HttpResponse::Ok().finish(),
                    Err(_) => actix_web::HttpResponse::ServiceUnavailable().finish(),
                }
            }
        }))
    })
    .bind(("127.0.0.1", 0))?;
    let port = server
        .addrs()
        .first()
        .map(|a| a.port())
        .ok_or_else(|| anyhow::anyhow!("the bare handler has no address"))?;
    tokio::spawn(server.run());
    Ok(format!("http://127.0.0.1:{port}/"))
}

/// Webhooks over HTTP keep-alive connections, `concurrency` clients each awaiting its answer.
async fn http_load(
    name: &str,
    url: &str,
    total: u64,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let failures = Arc::new(AtomicU64::new(0));
    let (url, counted) = (url.to_owned(), failures.clone());
    let figures = raw::drive(name, total, concurrency, move |n| {
        let (http, url, failures) = (http.clone(), url.clone(), counted.clone());
        async move {
            let response = http
                .post(&url)
                .header("content-type", "application/json")
                .body(webhook_body(1_000_000_000 + n))
                .send()
                .await;
            let ok = matches!(&response, Ok(r) if r.status() == 200);
            if !ok {
                failures.fetch_add(1, Ordering::Relaxed);
            }
            Ok(ok)
        }
    })
    .await?;
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        println!("  ({failed} requests did not get a 200)");
    }
    Ok(figures)
}
