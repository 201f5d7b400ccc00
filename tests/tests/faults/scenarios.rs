//! The scenarios, one fault each.

use std::time::{Duration, Instant};

use deskie_loadgen::{Plan, Poison};
use deskie_testkit::{Fault, ProxyMode};

use crate::harness::{self, DESKIE_RUN, DRAIN_DEADLINE, Deployment, FaultEnd, SERVICES, Setup};

/// PostgreSQL unreachable for 90 s, longer than the old delivery budget (7 deliveries with
/// 1 s → 60 s delays ≈ 70 s of naks): open connections reset, new ones refused for 40 s,
/// then accepted and never answered for 40 s, then every byte 300 ms late for 8 s, while
/// visitors keep writing. Nothing lost, nothing dead-lettered, nothing doubled.
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
    tokio::time::sleep(Duration::from_secs(40)).await;
    println!("cut: blackhole");
    pg.set(ProxyMode::Blackhole);
    tokio::time::sleep(Duration::from_secs(40)).await;
    println!("cut: delay");
    pg.set(ProxyMode::Delay(Duration::from_millis(300)));
    tokio::time::sleep(Duration::from_secs(8)).await;
    pg.set(ProxyMode::Pass);
    let fault_ended = Instant::now();
    println!("cut: over (90 s)");
    let report = suite
        .settle(
            "PostgreSQL unreachable 90 s",
            &plan,
            driving,
            FaultEnd::At(fault_ended),
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
    let fault_ended = suite.faults_met(faults, DRAIN_DEADLINE).await;
    let report = suite
        .settle(
            "Chatra 502/504 on the first 10 greetings",
            &plan,
            driving,
            FaultEnd::At(fault_ended),
        )
        .await;
    assert_eq!(
        report.settled_by_echo, faults,
        "each greeting answered 502/504 is settled by its echo"
    );
    suite.stop().await;
}

/// A visitor message so large that its case event cannot fit a NATS message (ingest takes
/// the webhook) after every fifth visitor: each is refused when routing appends it and
/// becomes one dead letter; the relay never meets it, and everything else flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_events_amid_good_traffic() {
    let suite = harness::start(Setup::default()).await;
    // Past the largest event NATS can carry (its max payload less the relay's header room),
    // and with the webhook's other fields still under both ingest's and NATS's limits.
    let text_bytes = suite.nats_max_payload().await - deskie_store::event_limit::HEADER_ROOM / 2;
    let mut plan = Plan::new(30 * harness::scale(), 2, 5.0);
    plan.poison_every = Some(5);
    plan.poison = Poison::Oversized { text_bytes };
    let report = suite
        .settle(
            "oversized events amid good traffic",
            &plan,
            suite.drive(&plan),
            FaultEnd::LastWebhookAccepted,
        )
        .await;
    assert!(
        report.poison_acked > 0,
        "the oversized webhooks were accepted"
    );
    assert_eq!(report.dead_letters, report.poison_acked as u64);
    let reasons = suite.dead_letter_reasons().await;
    assert_eq!(reasons.len() as u64, report.dead_letters);
    assert!(
        reasons
            .iter()
            .all(|r| r.contains("could never be published")),
        "each was refused as too large to publish: {reasons:?}"
    );
    suite.stop().await;
}

/// Both streams reach their byte limits under load (8 MiB, the least the settings allow;
/// messages of 64 KiB): ingest answers 503 and the visitors resend, the relay leaves events
/// in PostgreSQL and backs off. Then the limits are raised, as a restart with new settings
/// does, and everything flows: nothing lost, doubled or dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_streams_under_load() {
    let suite = harness::start(Setup {
        vars: &[
            ("DESKIE_NATS_WEBHOOKS_MAX_BYTES", "8MiB"),
            ("DESKIE_NATS_EVENTS_MAX_BYTES", "8MiB"),
        ],
        ..Setup::default()
    })
    .await;
    // 180 webhooks and their events of 64 KiB each: about 11 MiB a stream.
    let mut plan = Plan::new(60 * harness::scale(), 3, 4.0);
    plan.text_bytes = 64 * 1024;
    let driving = suite.drive(&plan);
    let deadline = Instant::now() + DRAIN_DEADLINE;
    while suite.sender.ledger().totals().refusals == 0 {
        assert!(Instant::now() < deadline, "the webhook stream never filled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("streams: the webhook stream is full");
    // Full for a while, visitors still writing and resending.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let before = suite.raise_stream_limits(64 * 1024 * 1024).await;
    let fault_ended = Instant::now();
    println!("streams: limits raised to 64 MiB (bytes held before: {before:?})");
    let report = suite
        .settle(
            "full webhook and event streams",
            &plan,
            driving,
            FaultEnd::At(fault_ended),
        )
        .await;
    assert!(report.ledger.refusals > 0, "ingest refused while full");
    assert_eq!(report.dead_letters, 0, "nothing dead-lettered");
    suite.stop().await;
}

/// Chatra, Slack and Telegram refuse and hang under load. Chatra: 429 with `Retry-After`,
/// 503, and a hang after it stored the reply (`unknown`, settled by the echo). Slack and
/// Telegram: 429 with a wait, 503, 502, 504 and a hang, each before the post took effect
/// (retried). Every greeting and every notification arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_refuse_and_hang_under_load() {
    let suite = harness::start(Setup::default()).await;
    let chatra = [
        Fault::Status(429, Some(1)),
        Fault::Status(503, None),
        Fault::AcceptThenHang,
        Fault::Status(429, Some(2)),
        Fault::Status(503, Some(1)),
        Fault::AcceptThenHang,
    ];
    let staff = [
        Fault::Status(429, Some(1)),
        Fault::Status(503, None),
        Fault::Status(502, None),
        Fault::Hang,
        Fault::Status(504, None),
        Fault::Status(429, Some(2)),
    ];
    for fault in &chatra {
        suite.sinks.chatra.fail_next(fault.clone());
    }
    for fault in &staff {
        suite.sinks.slack.fail_next(fault.clone());
        suite.sinks.telegram.fail_next(fault.clone());
    }
    // 45 chats, 15 of them in the sales group: notified on Slack and Telegram.
    let plan = Plan::new(45 * harness::scale(), 2, 5.0);
    let driving = suite.drive(&plan);
    let faults = chatra.len() + 2 * staff.len();
    let fault_ended = suite.faults_met(faults, DRAIN_DEADLINE).await;
    let report = suite
        .settle(
            "Chatra, Slack and Telegram refuse and hang",
            &plan,
            driving,
            FaultEnd::At(fault_ended),
        )
        .await;
    assert_eq!(
        report.calls_without_effect,
        faults - 2,
        "every fault but Chatra's two hangs after storing left no effect and was retried"
    );
    assert_eq!(
        report.settled_by_echo, 2,
        "the greetings whose answer never came are settled by their echo"
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
    // The duplicates' last copies are the fault here: it ends when they were accepted.
    let report = suite
        .settle(
            "duplicate and concurrent webhooks",
            &plan,
            suite.drive(&plan),
            FaultEnd::LastWebhookAccepted,
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
    // The poison comes with the load: the fault ends with the last webhook accepted.
    let report = suite
        .settle(
            "poison webhooks amid good traffic",
            &plan,
            suite.drive(&plan),
            FaultEnd::LastWebhookAccepted,
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
    suite
        .settle(
            "nats-server killed for 15 s",
            &plan,
            driving,
            FaultEnd::At(fault_ended),
        )
        .await;
    suite.stop().await;
}

/// NATS unreachable without a word for 20 s under load (every connection, open and new,
/// silent; what was sent is held and arrives afterwards): publishes time out, ingest answers
/// 503 and the visitors resend, the clients notice the dead connection by their pings and
/// reconnect once it answers. A webhook stored by a held publish after its 503 and stored
/// again by the resend is one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_blackholed_under_load() {
    let suite = harness::start(Setup {
        nats_proxy: true,
        ..Setup::default()
    })
    .await;
    let proxy = suite.nats_proxy.as_ref().expect("proxy");
    let plan = Plan::new(40 * harness::scale(), 3, 2.0);
    let driving = suite.drive(&plan);
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("nats: blackholed");
    proxy.set(ProxyMode::Blackhole);
    tokio::time::sleep(Duration::from_secs(20)).await;
    proxy.set(ProxyMode::Pass);
    let fault_ended = Instant::now();
    println!("nats: answering again (silent 20 s)");
    let report = suite
        .settle(
            "NATS blackholed for 20 s",
            &plan,
            driving,
            FaultEnd::At(fault_ended),
        )
        .await;
    assert!(
        report.ledger.attempts > report.ledger.webhooks,
        "webhooks were refused or unanswered during the cut and resent"
    );
    assert_eq!(report.dead_letters, 0, "nothing dead-lettered");
    suite.stop().await;
}

/// `deskie run` (every service in one process) killed with SIGKILL under load and started
/// again: webhooks in flight get no answer and are resent; nothing acknowledged is lost,
/// nothing doubled, every greeting reaches Chatra once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_process_killed_under_load() {
    let mut suite = harness::start(Setup {
        deployment: Deployment::DeskieRun,
        ..Setup::default()
    })
    .await;
    let plan = Plan::new(40 * harness::scale(), 3, 2.0);
    let driving = suite.drive(&plan);
    tokio::time::sleep(Duration::from_secs(6)).await;
    println!("deskie run: killed");
    suite.kill(DESKIE_RUN);
    tokio::time::sleep(Duration::from_secs(3)).await;
    suite.restart(DESKIE_RUN).await;
    let fault_ended = Instant::now();
    println!("deskie run: restarted and ready");
    suite
        .settle(
            "deskie run killed (SIGKILL) and restarted",
            &plan,
            driving,
            FaultEnd::At(fault_ended),
        )
        .await;
    suite.kill_suite();
}

/// Each service its own process, as `docker-compose.yml` runs them, and each killed
/// (SIGKILL) in turn under load and started again 2 s later: ingest, routing, the relay, the
/// projector, rules, outbound, agent-sync and the api. Whatever each had in flight (an
/// unanswered webhook, an unacknowledged message, a claimed reply, a held leader lock) is
/// taken up again; nothing acknowledged is lost, nothing doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_killed_in_turn_under_load() {
    let mut suite = harness::start(Setup {
        deployment: Deployment::EachService,
        ..Setup::default()
    })
    .await;
    let plan = Plan::new(80 * harness::scale(), 3, 2.0 * harness::scale() as f64);
    let driving = suite.drive(&plan);
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (name, ..) in SERVICES {
        println!("{name}: killed");
        suite.kill(name);
        tokio::time::sleep(Duration::from_secs(2)).await;
        suite.restart(name).await;
        println!("{name}: restarted");
        // Let the restarted service take up its work before the next one goes down.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let fault_ended = Instant::now();
    suite
        .settle(
            "each service killed (SIGKILL) in turn and restarted",
            &plan,
            driving,
            FaultEnd::At(fault_ended),
        )
        .await;
    suite.kill_suite();
}
