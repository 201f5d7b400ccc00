//! Cost per event vs case length (issue 12): one webhook routed onto a new case, and onto
//! cases that already hold 10, 1,000 and 10,000 messages, through routing's own handler
//! (decode, integration, case stream: lock, inbox, state, decide, record, project, commit).
//!
//! ```sh
//! cargo run --release -p deskie-bench --bin bench-case-length -- 300 10000
//! # webhooks per case length, longest case
//! ```
//!
//! Raw limits measured in the same run: PostgreSQL commits/s of a one-row transaction (what
//! one handler's commit costs at least), and the whole-history fold every writer paid per
//! event before case snapshots, on the longest case.

use std::time::{Duration, Instant};

use bytes::Bytes;
use deskie_bench::{Figures, latency_histogram, raw};
use deskie_bus::consumer::{Delivery, Handler};
use deskie_domain::case::{CaseState, case_id_for};
use deskie_proto::Message;
use deskie_proto::webhooks::ChatraWebhookReceived;
use deskie_routing::RouteWebhook;
use deskie_store::{Cause, Store};
use deskie_testkit::case_events::{customer_says, opened};
use deskie_testkit::{TestDb, connect_integration, integration_settings};
use uuid::Uuid;

/// Messages recorded per transaction while a long case is built.
const BUILD_BATCH: usize = 1_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let per_length: usize = args.next().map_or(Ok(300), |a| a.parse())?;
    let longest: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let db = TestDb::create().await;
    let store = Store::connect(db.url()).await?;
    store.migrate().await?;
    let integration = Uuid::now_v7();
    connect_integration(&store, integration, integration_settings(Uuid::now_v7())).await;
    let handler = RouteWebhook::new(store.clone(), "deskie".into());

    let commits = raw::commits(store.pool(), (per_length * 3) as u64, 1).await?;
    eprintln!("{}", commits.line());

    let mut lengths = vec![10, 1_000, longest];
    lengths.dedup();
    let mut report = Vec::new();
    // First webhooks of new chats: each opens its case.
    let new_chats =
        (0..per_length).map(|i| webhook(integration, &format!("new-{i}"), &format!("new-{i}-m")));
    let new_cases = route(&handler, "webhook opening a new case".into(), new_chats).await?;
    eprintln!("{}", new_cases.line());
    let baseline = mean_ms(&new_cases);
    report.push(new_cases);
    let mut longest_case = None;
    for length in lengths {
        let client = format!("client-{length}");
        let case_id = build_case(&store, integration, &client, length).await?;
        let onto =
            (0..per_length).map(|i| webhook(integration, &client, &format!("{client}-new-{i}")));
        let name = format!("webhook onto a case of {length} messages");
        let figures = route(&handler, name, onto).await?;
        eprintln!("{}", figures.line());
        report.push(figures);
        longest_case = Some(case_id);
    }
    let fold = match longest_case {
        Some(case_id) => Some(full_fold(&store, case_id, 20).await?),
        None => None,
    };

    println!("\n== cost per webhook vs case length ({per_length} webhooks each, one at a time) ==");
    println!("{}", commits.line());
    for figures in &report {
        println!(
            "{}   mean {:>6.2} ms = {:.2}x a new case",
            figures.line(),
            mean_ms(figures),
            mean_ms(figures) / baseline
        );
    }
    if let Some(fold) = fold {
        println!(
            "{}   (what every write of that case paid before snapshots, on top)",
            fold.line()
        );
    }
    Ok(())
}

fn mean_ms(figures: &Figures) -> f64 {
    figures.latency_us.mean() / 1000.0
}

/// A case of `length` customer messages, recorded through the case stream in batches.
async fn build_case(
    store: &Store,
    integration: Uuid,
    client: &str,
    length: usize,
) -> anyhow::Result<Uuid> {
    let case_id = case_id_for(integration, client, "chat");
    let started = Instant::now();
    let mut written = 0;
    while written < length {
        let mut case = store.open_case(case_id).await?;
        let mut events = Vec::with_capacity(BUILD_BATCH + 1);
        if written == 0 {
            let opened = opened()
                .integration(integration)
                .chat("chat")
                .client(client)
                .in_group(Uuid::now_v7())
                .panel("informational");
            events.push(opened.into());
        }
        let batch = BUILD_BATCH.min(length - written);
        for i in written..written + batch {
            let message = customer_says(&format!("message {i} of a long conversation"))
                .chatra_id(&format!("{client}-old-{i}"));
            events.push(message.into());
        }
        case.record(events, &Cause::new_chain("bench-build", "bench"))
            .await?;
        case.commit().await?;
        written += batch;
        eprintln!("building a case of {length} messages: {written}/{length}");
    }
    eprintln!(
        "built a case of {length} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(case_id)
}

/// Routes `deliveries` one at a time; each one's time in the handler.
async fn route(
    handler: &RouteWebhook,
    name: String,
    deliveries: impl Iterator<Item = Delivery>,
) -> anyhow::Result<Figures> {
    let mut latency = latency_histogram();
    let mut count = 0;
    let started = Instant::now();
    for delivery in deliveries {
        let at = Instant::now();
        handler
            .handle(&delivery)
            .await
            .map_err(|e| anyhow::anyhow!("routing refused a webhook: {e}"))?;
        record(&mut latency, at.elapsed());
        count += 1;
    }
    Ok(Figures {
        name,
        count,
        elapsed: started.elapsed(),
        latency_us: latency,
    })
}

/// Loading and folding the whole history of `case_id`, `times` times.
async fn full_fold(store: &Store, case_id: Uuid, times: usize) -> anyhow::Result<Figures> {
    let mut latency = latency_histogram();
    let started = Instant::now();
    let mut version = 0;
    for _ in 0..times {
        let at = Instant::now();
        let history = store.load_stream(case_id).await?;
        version = CaseState::from_events(history.iter().filter_map(|e| e.envelope.event.as_ref()))
            .version;
        record(&mut latency, at.elapsed());
    }
    Ok(Figures {
        name: format!("raw: whole-history fold of {version} events"),
        count: times as u64,
        elapsed: started.elapsed(),
        latency_us: latency,
    })
}

/// A `chatFragment` with one customer message, as ingest puts it on the bus.
fn webhook(integration: Uuid, client: &str, message_id: &str) -> Delivery {
    let body = serde_json::json!({
        "eventName": "chatFragment",
        "client": {"id": client, "chatId": "chat"},
        "messages": [{"id": message_id, "type": "client", "text": "Where is my parcel?"}],
    })
    .to_string();
    let message = ChatraWebhookReceived {
        integration_id: integration.to_string(),
        event_name: "chatFragment".into(),
        body: body.into_bytes(),
        received_at: None,
        dedupe_key: message_id.into(),
        body_encoding: String::new(),
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, message_id);
    Delivery {
        subject: "bench".into(),
        payload: Bytes::from(message.encode_to_vec()),
        headers: Some(headers),
        stream_sequence: 0,
        delivered: 1,
    }
}

fn record(histogram: &mut hdrhistogram::Histogram<u64>, elapsed: Duration) {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let _ = histogram.record(micros);
}
