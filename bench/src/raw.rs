//! The machine's raw limits, measured in the same run as a benchmark: what PostgreSQL and
//! JetStream do with nothing of ours in between, so a figure can be read as a share of them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_nats::HeaderMap;
use bytes::Bytes;
use deskie_bus::{Bus, Topology};
use deskie_testkit::{TestDb, TestNats};
use futures::StreamExt;
use sqlx::PgPool;

use crate::{Figures, latency_histogram};

/// Runs `op(n)` for every `n` below `total` on `concurrency` workers, timing each, with
/// progress every 5,000. An op that returns `Ok(false)` is not counted (the caller counts
/// its failures); an error ends the run.
pub async fn drive<F, Fut>(
    name: &str,
    total: u64,
    concurrency: usize,
    op: F,
) -> anyhow::Result<Figures>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<bool>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers = (0..concurrency.max(1)).map(|_| {
        let (next, op, name) = (next.clone(), op.clone(), name.to_owned());
        tokio::spawn(async move {
            let mut histogram = latency_histogram();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return anyhow::Ok(histogram);
                }
                let at = Instant::now();
                if op(n).await? {
                    let _ = histogram.record(at.elapsed().as_micros() as u64);
                }
                if n > 0 && n % 5000 == 0 {
                    eprintln!("  {name}: {n}/{total}");
                }
            }
        })
    });
    let mut latency = latency_histogram();
    let mut results = futures::stream::iter(workers).buffer_unordered(usize::MAX);
    while let Some(histogram) = results.next().await {
        latency.add(histogram??)?;
    }
    Ok(Figures {
        name: name.to_owned(),
        count: latency.len(),
        elapsed: started.elapsed(),
        latency_us: latency,
    })
}

/// One-row transactions (`BEGIN`, one insert, `COMMIT`), `concurrency` at once: the floor
/// under any handler's commit.
pub async fn commits(pool: &PgPool, count: u64, concurrency: usize) -> anyhow::Result<Figures> {
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_commits (id bigint)")
        .execute(pool)
        .await?;
    let name = match concurrency {
        1 => "raw: PostgreSQL one-row commit".to_owned(),
        n => format!("raw: PostgreSQL one-row commits, {n} at once"),
    };
    let pool = pool.clone();
    drive(&name, count, concurrency, move |n| {
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO bench_commits (id) VALUES ($1)")
                .bind(i64::try_from(n).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        }
    })
    .await
}

/// Publish-with-ack straight to JetStream on `subject`, `concurrency` publishers each
/// awaiting its PubAck; message `n` carries `body(n)` under its own id.
pub async fn publishes(
    bus: &Bus,
    subject: String,
    total: u64,
    concurrency: usize,
    body: fn(u64) -> Vec<u8>,
) -> anyhow::Result<Figures> {
    let bus = bus.clone();
    drive(
        "raw: JetStream publish-with-ack",
        total,
        concurrency,
        move |n| {
            let (bus, subject) = (bus.clone(), subject.clone());
            async move {
                let id = format!("raw-{n}");
                let published = bus
                    .publish_durable(subject, &id, HeaderMap::new(), Bytes::from(body(n)))
                    .await;
                Ok(published.is_ok())
            }
        },
    )
    .await
}

/// PostgreSQL's and JetStream's raw rates on this machine, measured on a database and a
/// NATS prefix of their own (removed afterwards) before a benchmark starts its load.
#[derive(Debug)]
pub struct RawLimits {
    /// One-row commits, many at once.
    pub commits: Figures,
    /// JetStream publish-with-ack, many at once.
    pub publishes: Figures,
}

/// Measures [`RawLimits`] with `count` operations each, `concurrency` at once, and prints
/// them.
pub async fn limits(count: u64, concurrency: usize) -> anyhow::Result<RawLimits> {
    let db = TestDb::create().await;
    let pool = PgPool::connect(db.url()).await?;
    let commits = commits(&pool, count, concurrency).await?;
    pool.close().await;
    println!("{}", commits.line());
    let nats = TestNats::new();
    let bus = Bus::connect(nats.url(), Topology::new(nats.prefix()), "bench-raw").await?;
    bus.provision().await?;
    let subject = bus.topology().webhook_subject("raw", "chatFragment");
    let publishes = publishes(&bus, subject, count, concurrency, |n| {
        format!(
            r#"{{"eventName":"chatFragment","n":{n},"pad":"{}"}}"#,
            "x".repeat(900)
        )
        .into_bytes()
    })
    .await?;
    println!("{}", publishes.line());
    Ok(RawLimits { commits, publishes })
}

/// [`limits`] of 5,000 operations, 64 at once: what a benchmark measures before it starts
/// the suite, so the suite's load does not share the machine with them.
pub async fn before_load() -> anyhow::Result<RawLimits> {
    limits(5_000, 64).await
}

impl RawLimits {
    /// `figures`' rate as a share of each raw rate.
    pub fn ratio_line(&self, figures: &Figures) -> String {
        format!(
            "{} = {:.1}% of PostgreSQL one-row commits/s, {:.1}% of JetStream publish-with-ack/s (same run)",
            figures.name,
            100.0 * figures.rate() / self.commits.rate(),
            100.0 * figures.rate() / self.publishes.rate()
        )
    }
}
