//! The scenarios, one fault each.

use std::time::{Duration, Instant};

use deskie_loadgen::Plan;
use deskie_testkit::{Fault, ProxyMode};

use crate::harness::{self, Setup};

/// How long the checker waits for the suite to drain after a fault before it reports.
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);

/// PostgreSQL unreachable for 80 s, longer than the old delivery budget (7 deliveries with
/// 1 s → 60 s delays ≈ 70 s of naks): open connections reset, new ones refused for 38 s,
/// then accepted and never answered for 40 s, while visitors keep writing. Nothing lost,
/// nothing dead-lettered, nothing doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_longer_than_the_old_budget() {
    let suite = harness::start(Setup {
        pg_proxy: true,
        ..Setup::default()
    })
    .await;
    let pg = suite.pg.as_ref().expect("proxy");
    // Visitors arrive over ~100 s: before, during and after the cut.
    let plan = Plan::new(100 * harness::scale(), 3, harness::scale() as f64);
    let driving = suite.drive(&plan);
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("cut: reset");
    pg.set(ProxyMode::Reset);
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("cut: refuse");
    pg.set(ProxyMode::Refuse);
    tokio::time::sleep(Duration::from_secs(38)).await;
    println!("cut: blackhole");
    pg.set(ProxyMode::Blackhole);
    tokio::time::sleep(Duration::from_secs(40)).await;
    pg.set(ProxyMode::Pass);
    let fault_ended = Instant::now();
    println!("cut: over (80 s)");
    let driven = driving.await.expect("driven");
    let report = suite
        .settle(
            "PostgreSQL unreachable 80 s",
            &plan,
            &driven,
            fault_ended,
            DRAIN_DEADLINE,
        )
        .await;
    assert_eq!(report.dead_letters, 0, "nothing dead-lettered");
    suite.stop().await;
}

/// Chatra answers the first greetings with 502 and 504 after it stored them (a gateway that
/// lost the answer): each is `unknown`, never sent again, and settled by its echo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatra_answers_502_and_504() {
    let suite = harness::start(Setup::default()).await;
    let faults = 10;
    for n in 0..faults {
        let code = if n % 2 == 0 { 502 } else { 504 };
        suite.sinks.chatra.fail_next(Fault::AcceptThenStatus(code));
    }
    let plan = Plan::new(30 * harness::scale(), 2, 5.0);
    let driving = suite.drive(&plan);
    let deadline = Instant::now() + DRAIN_DEADLINE;
    while suite.sinks.chatra_replies().len() < faults {
        assert!(Instant::now() < deadline, "the faults were never met");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fault_ended = Instant::now();
    let driven = driving.await.expect("driven");
    let report = suite
        .settle(
            "Chatra 502/504 on the first 10 greetings",
            &plan,
            &driven,
            fault_ended,
            DRAIN_DEADLINE,
        )
        .await;
    assert_eq!(
        report.settled_by_echo, faults,
        "each greeting answered 502/504 is settled by its echo"
    );
    suite.stop().await;
}

/// Every other webhook sent twice at once, and each of those once more after every visitor
/// is done: one case per chat, every message once, one greeting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_concurrent_webhooks() {
    let suite = harness::start(Setup::default()).await;
    let mut plan = Plan::new(30 * harness::scale(), 3, 5.0);
    plan.duplicate_every = Some(2);
    let driven = suite.drive(&plan).await.expect("driven");
    // The duplicates' last copies are the fault here: it ends when they were accepted.
    let fault_ended = driven.sent_all_at;
    let report = suite
        .settle(
            "duplicate and concurrent webhooks",
            &plan,
            &driven,
            fault_ended,
            DRAIN_DEADLINE,
        )
        .await;
    // Distinct bodies: each message, each echo, and the later copies in other bytes; the
    // copies sent at once share their bytes with the first and stop at JetStream.
    let resent = plan
        .visitors()
        .iter()
        .flat_map(|v| (0..v.messages.len()).map(move |k| (v.index, k)))
        .filter(|(n, k)| plan.duplicated(*n, *k))
        .count();
    let expected = report.messages_acked + report.chatra_replies + resent;
    let deadline = Instant::now() + DRAIN_DEADLINE;
    let mut routed = suite.routed().await;
    // Echoes and later copies may still be on their way when the greetings are settled.
    while (routed as usize) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        routed = suite.routed().await;
    }
    println!(
        "routing handled {routed} webhooks: {} messages, {} echoes, {resent} later copies in other bytes",
        report.messages_acked, report.chatra_replies
    );
    assert_eq!(
        routed as usize, expected,
        "the later copies reached routing (and were recognised)"
    );
    suite.stop().await;
}

/// A poison body (a `chatFragment` without `client.id`: accepted, unroutable) after every
/// fifth visitor: each one dead letter, everything else flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_webhooks_amid_good_traffic() {
    let suite = harness::start(Setup::default()).await;
    let mut plan = Plan::new(30 * harness::scale(), 3, 5.0);
    plan.poison_every = Some(5);
    let driven = suite.drive(&plan).await.expect("driven");
    // The poison comes with the load: the fault ends with the last webhook accepted.
    let fault_ended = driven.sent_all_at;
    let report = suite
        .settle(
            "poison webhooks amid good traffic",
            &plan,
            &driven,
            fault_ended,
            DRAIN_DEADLINE,
        )
        .await;
    assert!(report.poison_acked > 0, "poison was sent and accepted");
    assert_eq!(report.dead_letters, report.poison_acked as u64);
    suite.stop().await;
}

/// nats-server killed (SIGKILL) under load and restarted 15 s later on the same port and
/// store: ingest answers 503 meanwhile and the visitors resend; nothing acknowledged is lost,
/// nothing doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_killed_and_restarted_under_load() {
    let mut suite = harness::start(Setup {
        own_nats: true,
        ..Setup::default()
    })
    .await;
    let plan = Plan::new(40 * harness::scale(), 3, 2.0);
    let driving = suite.drive(&plan);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let server = suite.nats_server.as_mut().expect("own nats-server");
    println!("nats: killed");
    server.stop();
    tokio::time::sleep(Duration::from_secs(15)).await;
    server.start().await;
    let fault_ended = Instant::now();
    println!("nats: restarted (down 15 s)");
    let driven = driving.await.expect("driven");
    suite
        .settle(
            "nats-server killed for 15 s",
            &plan,
            &driven,
            fault_ended,
            DRAIN_DEADLINE,
        )
        .await;
    suite.stop().await;
}

/// `deskie run` (every service in one process) killed with SIGKILL under load and started
/// again: webhooks in flight get no answer and are resent; nothing acknowledged is lost,
/// nothing doubled, every greeting reaches Chatra once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_process_killed_under_load() {
    let mut suite = harness::start(Setup {
        child_process: true,
        ..Setup::default()
    })
    .await;
    let plan = Plan::new(40 * harness::scale(), 3, 2.0);
    let driving = suite.drive(&plan);
    tokio::time::sleep(Duration::from_secs(6)).await;
    println!("deskie run: killed");
    suite.kill_suite();
    tokio::time::sleep(Duration::from_secs(3)).await;
    suite.restart_suite().await;
    let fault_ended = Instant::now();
    println!("deskie run: restarted and ready");
    let driven = driving.await.expect("driven");
    suite
        .settle(
            "deskie run killed (SIGKILL) and restarted",
            &plan,
            &driven,
            fault_ended,
            DRAIN_DEADLINE,
        )
        .await;
    suite.kill_suite();
}
