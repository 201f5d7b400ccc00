//! `deskie replay` over a large event store (issue 12): every read model rebuilt from
//! `events`, with the rate and the raw limit of the same run.
//!
//! ```sh
//! cargo run --release -p deskie-bench --bin bench-replay -- 1000000 100
//! # events in all, events per case
//! ```
//!
//! It fills a throw-away database with cases of `per_case` events each (a `CaseOpened`, then
//! customer and agent messages with an assignment and a status change among them), appended
//! without projecting (testkit's `append_case`), one statement per case. Then, as the raw limit, it reads every event
//! in replay's order and decodes it (what a rebuild cannot go below), and finally runs
//! `deskie replay`'s [`deskie::replay::rebuild`], printing progress to stderr.

use std::time::Instant;

use deskie_proto::events::Event;
use deskie_store::Store;
use deskie_store::event_store::envelope_of;
use deskie_testkit::case_events::{agent_says, assigned, customer_says, opened, status};
use deskie_testkit::{TestDb, append_case};
use futures::TryStreamExt;
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let total: u64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let per_case: u64 = args.next().map_or(Ok(100), |a| a.parse())?;
    let per_case = per_case.max(2);
    let db = TestDb::create().await;
    let store = Store::connect(db.url()).await?;
    store.migrate().await?;

    let cases = total.div_ceil(per_case);
    let started = Instant::now();
    let integration = Uuid::now_v7();
    let group = Uuid::now_v7();
    for n in 0..cases {
        append_case(
            &store,
            Uuid::now_v7(),
            case_events(integration, group, n, per_case),
        )
        .await;
        if (n + 1) % 1_000 == 0 || n + 1 == cases {
            eprintln!(
                "filling: {}/{} cases ({} events)",
                n + 1,
                cases,
                (n + 1) * per_case
            );
        }
    }
    sqlx::query("VACUUM ANALYZE events")
        .execute(store.pool())
        .await?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(store.pool())
        .await?;
    eprintln!(
        "filled {stored} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Raw: read and decode every event in replay's order, nothing written.
    let started = Instant::now();
    let mut read = 0u64;
    let mut rows = sqlx::query(
        "SELECT event_id, payload FROM events WHERE stream_type = 'case' ORDER BY stream_id, version",
    )
    .fetch(store.pool());
    while let Some(row) = rows.try_next().await? {
        envelope_of(&row)?;
        read += 1;
    }
    drop(rows);
    let raw = started.elapsed();

    let rebuilt = deskie::replay::run_with_progress(&store, true).await?;
    let rate = |events: u64, seconds: f64| events as f64 / seconds.max(f64::EPSILON);
    println!("\n== deskie replay over {stored} events ({per_case} per case, {cases} cases) ==");
    println!(
        "raw: read and decode every event in order   {read} events in {:>6.2} s = {:>9.0} events/s",
        raw.as_secs_f64(),
        rate(read, raw.as_secs_f64())
    );
    println!(
        "deskie replay (rebuild)                     {} events in {:>6.2} s = {:>9.0} events/s ({:.1} % of raw)",
        rebuilt.events,
        rebuilt.elapsed.as_secs_f64(),
        rate(rebuilt.events, rebuilt.elapsed.as_secs_f64()),
        100.0 * raw.as_secs_f64() / rebuilt.elapsed.as_secs_f64().max(f64::EPSILON)
    );
    println!(
        "rebuilt: {} cases, {} events left out",
        rebuilt.cases, rebuilt.skipped
    );
    Ok(())
}

/// A case of `count` events: opened, then a conversation with one assignment and one status
/// change.
fn case_events(integration: Uuid, group: Uuid, n: u64, count: u64) -> Vec<Event> {
    let mut events: Vec<Event> = vec![
        opened()
            .integration(integration)
            .in_group(group)
            .client(&format!("client-{n}"))
            .chat(&format!("chat-{n}"))
            .into(),
    ];
    for i in 1..count {
        let event: Event = match i {
            2 => assigned(Uuid::now_v7()).into(),
            3 => status("open").from("new").into(),
            i if i % 2 == 0 => agent_says(&format!("Reply {i}: we are looking into it."))
                .chatra_id(&format!("{n}-agent-{i}"))
                .into(),
            i => customer_says(&format!("Message {i}: my order has not arrived yet."))
                .chatra_id(&format!("{n}-client-{i}"))
                .into(),
        };
        events.push(event);
    }
    events
}
