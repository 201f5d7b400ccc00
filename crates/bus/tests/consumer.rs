//! The consumer runner against a real NATS: ack after success, delayed retry, dead letters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use deskie_bus::consumer::{self, ConsumerSpec, Delivery, Handler, HandlerError};
use deskie_bus::dead_letter::headers;
use deskie_bus::{Bus, Topology};
use deskie_testkit::TestNats;
use tokio_util::sync::CancellationToken;

/// Each payload's deliveries: (delivery count, when).
type CallLog = Arc<Mutex<HashMap<String, Vec<(i64, Instant)>>>>;

/// Fails each payload as its text says: "ok", "retry-N" (N transient failures first),
/// "poison", "always-retry", "outage-MS" (the database is away for MS milliseconds after
/// the first call), "crash" (the handler panics, as a process would die).
#[derive(Clone, Default)]
struct ScriptedHandler {
    calls: CallLog,
}

impl Handler for ScriptedHandler {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let text = String::from_utf8_lossy(&delivery.payload).to_string();
        let attempt = {
            let mut calls = self.calls.lock().expect("lock");
            let entry = calls.entry(text.clone()).or_default();
            entry.push((delivery.delivered, Instant::now()));
            entry.len()
        };
        match text.as_str() {
            "poison" => Err(HandlerError::Poison {
                reason: "cannot parse\nat all".into(),
            }),
            "crash" => panic!("the handler crashed"),
            t if t.starts_with("outage-") => {
                let millis: u64 = t[7..].parse().unwrap_or(0);
                let first = self.calls.lock().expect("lock")[&text][0].1;
                if first.elapsed() < Duration::from_millis(millis) {
                    Err(HandlerError::Unavailable {
                        reason: "connection refused".into(),
                    })
                } else {
                    Ok(())
                }
            }
            "always-retry" => Err(HandlerError::Retry {
                reason: "db down".into(),
                after: Some(Duration::from_millis(50)),
            }),
            t if t.starts_with("retry-") => {
                let failures: usize = t[6..].parse().unwrap_or(0);
                if attempt <= failures {
                    Err(HandlerError::Retry {
                        reason: "transient".into(),
                        after: None,
                    })
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }
}

async fn setup() -> (TestNats, Bus, ConsumerSpec) {
    let nats = TestNats::new();
    let bus = Bus::connect(nats.url(), Topology::new(nats.prefix()), "consumer-test")
        .await
        .expect("connect");
    let mut provisioned = false;
    for _ in 0..50 {
        if bus.provision().await.is_ok() {
            provisioned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(provisioned);
    let topology = bus.topology().clone();
    let mut spec = ConsumerSpec::new(
        topology.webhooks_stream(),
        topology.consumer_name("test"),
        topology.all_webhooks(),
    );
    spec.max_deliver = 3;
    spec.first_retry_delay = Duration::from_millis(200);
    spec.max_retry_delay = Duration::from_secs(1);
    (nats, bus, spec)
}

async fn publish(bus: &Bus, text: &str) {
    let subject = bus.topology().webhook_subject("i", "chatFragment");
    let mut headers = HeaderMap::new();
    headers.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    bus.publish_durable(
        subject,
        &format!("id-{text}"),
        headers,
        Bytes::from(text.to_owned()),
    )
    .await
    .expect("publish");
}

async fn dead_letters(bus: &Bus, expected: usize) -> Vec<async_nats::jetstream::Message> {
    // Wait for the expected letters, then a moment more: nothing beyond them may arrive.
    let stream = bus.topology().dead_letter_stream();
    let letters =
        deskie_testkit::read_stream(bus.jetstream(), &stream, expected, Duration::from_secs(10))
            .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = deskie_testkit::read_stream(bus.jetstream(), &stream, 0, Duration::ZERO).await;
    assert_eq!(
        letters.len(),
        again.len(),
        "more dead letters arrived than expected"
    );
    letters
}

async fn wait_for<F: Fn() -> bool>(condition: F) {
    deskie_testkit::wait_until("the condition", condition).await;
}

#[tokio::test]
async fn successes_are_acked_transient_failures_retried_with_growing_delay() {
    let (_nats, bus, spec) = setup().await;
    let handler = ScriptedHandler::default();
    let shutdown = CancellationToken::new();
    tokio::spawn(consumer::run(
        bus.clone(),
        spec.clone(),
        handler.clone(),
        shutdown.clone(),
    ));
    publish(&bus, "ok").await;
    publish(&bus, "retry-2").await;

    let calls = handler.calls.clone();
    wait_for(|| {
        calls
            .lock()
            .map(|c| c.get("retry-2").map_or(0, Vec::len) == 3)
            .unwrap_or(false)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.cancel();

    let calls = handler.calls.lock().expect("lock").clone();
    assert_eq!(calls["ok"].len(), 1, "an acked message is not redelivered");
    let retries = &calls["retry-2"];
    assert_eq!(
        retries.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Naks carry a delay: 200 ms, then 400 ms (never an immediate hot loop).
    assert!(
        retries[1].1 - retries[0].1 >= Duration::from_millis(180),
        "{:?}",
        retries[1].1 - retries[0].1
    );
    assert!(
        retries[2].1 - retries[1].1 >= Duration::from_millis(380),
        "{:?}",
        retries[2].1 - retries[1].1
    );
    assert!(dead_letters(&bus, 0).await.is_empty());
}

#[tokio::test]
async fn poison_and_exhausted_messages_become_dead_letters_with_the_reason() {
    let (_nats, bus, spec) = setup().await;
    let handler = ScriptedHandler::default();
    let shutdown = CancellationToken::new();
    tokio::spawn(consumer::run(
        bus.clone(),
        spec.clone(),
        handler.clone(),
        shutdown.clone(),
    ));
    publish(&bus, "poison").await;
    publish(&bus, "always-retry").await;
    publish(&bus, "ok").await;

    let letters = dead_letters(&bus, 2).await;
    shutdown.cancel();
    assert_eq!(letters.len(), 2, "exactly the two failed messages");
    let by_payload: HashMap<String, &async_nats::jetstream::Message> = letters
        .iter()
        .map(|m| (String::from_utf8_lossy(&m.payload).to_string(), m))
        .collect();
    let header = |m: &async_nats::jetstream::Message, name: &str| {
        m.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    let poison = by_payload["poison"];
    assert_eq!(
        header(poison, headers::REASON),
        "poison: cannot parse at all"
    );
    assert_eq!(
        header(poison, headers::DELIVERIES),
        "1",
        "poison is not retried"
    );
    assert_eq!(header(poison, headers::CONSUMER), spec.durable_name);
    assert_eq!(header(poison, headers::ORIGINAL_MESSAGE_ID), "id-poison");
    assert!(
        header(poison, "traceparent").starts_with("00-4bf92f35"),
        "trace context is kept"
    );
    let exhausted = by_payload["always-retry"];
    assert_eq!(
        header(exhausted, headers::DELIVERIES),
        "3",
        "retried up to max_deliver"
    );
    assert!(header(exhausted, headers::REASON).contains("db down"));
    let calls = handler.calls.lock().expect("lock").clone();
    assert_eq!(calls["always-retry"].len(), 3);
    assert_eq!(calls["poison"].len(), 1);
    assert_eq!(calls["ok"].len(), 1, "other messages keep flowing");
}

/// Records the order messages of each lane are handled in, and how many run at once.
#[derive(Clone, Default)]
struct LaneRecorder {
    order: Arc<Mutex<Vec<String>>>,
    running: Arc<std::sync::atomic::AtomicUsize>,
    peak: Arc<std::sync::atomic::AtomicUsize>,
}

impl Handler for LaneRecorder {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(now, SeqCst);
        tokio::time::sleep(Duration::from_millis(40)).await;
        self.order
            .lock()
            .expect("lock")
            .push(String::from_utf8_lossy(&delivery.payload).to_string());
        self.running.fetch_sub(1, SeqCst);
        Ok(())
    }

    fn lane(&self, message: &async_nats::jetstream::Message) -> Option<String> {
        // "a3" is in lane "a".
        message.payload.first().map(|b| (*b as char).to_string())
    }
}

/// Publishes `messages` ("a3": message 3 of lane "a") and runs a [`LaneRecorder`] over them,
/// 8 at a time, until every one is handled; the order they were handled in and how many
/// ran at once at most.
async fn run_lanes(messages: &[String]) -> (Vec<String>, usize) {
    let (_nats, bus, mut spec) = setup().await;
    spec.concurrency = 8;
    for message in messages {
        publish(&bus, message).await;
    }
    let handler = LaneRecorder::default();
    let shutdown = CancellationToken::new();
    tokio::spawn(consumer::run(
        bus.clone(),
        spec,
        handler.clone(),
        shutdown.clone(),
    ));
    let order = handler.order.clone();
    wait_for(|| {
        order
            .lock()
            .map(|o| o.len() == messages.len())
            .unwrap_or(false)
    })
    .await;
    shutdown.cancel();
    let order = handler.order.lock().expect("lock").clone();
    (
        order,
        handler.peak.load(std::sync::atomic::Ordering::SeqCst),
    )
}

/// Each of `lanes` handled its messages 0..`count` in that order.
fn assert_lanes_in_order(order: &[String], lanes: &[&str], count: usize) {
    for lane in lanes {
        let seen: Vec<&String> = order.iter().filter(|m| m.starts_with(lane)).collect();
        let expected: Vec<String> = (0..count).map(|n| format!("{lane}{n}")).collect();
        assert_eq!(
            seen,
            expected.iter().collect::<Vec<_>>(),
            "lane {lane} out of order"
        );
    }
}

#[tokio::test]
async fn messages_of_one_lane_keep_their_order_while_lanes_run_in_parallel() {
    let lanes = ["a", "b", "c"];
    let interleaved: Vec<String> = (0..6)
        .flat_map(|n| lanes.map(|lane| format!("{lane}{n}")))
        .collect();
    let (order, peak) = run_lanes(&interleaved).await;
    assert_lanes_in_order(&order, &lanes, 6);
    assert!(peak >= 2, "lanes never ran in parallel (peak {peak})");
    assert!(peak <= 3, "a lane ran two messages at once (peak {peak})");
}

#[tokio::test]
async fn a_run_of_one_lane_does_not_hold_back_the_lanes_behind_it() {
    // As case events come: a run of one case, then the next case's run.
    let lanes = ["a", "b", "c"];
    let runs: Vec<String> = lanes
        .iter()
        .flat_map(|lane| (0..4).map(move |n| format!("{lane}{n}")))
        .collect();
    let (order, peak) = run_lanes(&runs).await;
    assert_lanes_in_order(&order, &lanes, 4);
    // "a1" waiting for "a0" used to keep "b0" and "c0" from being taken at all.
    assert_eq!(peak, 3, "the three lanes did not run side by side");
}

#[tokio::test]
async fn an_outage_longer_than_the_budget_is_waited_out_without_spending_deliveries() {
    let (_nats, bus, mut spec) = setup().await;
    // Without in-progress acks every held message would be delivered again each second,
    // and the old budget (3 deliveries, 200 ms → 1 s) would be spent in under 2 s.
    spec.ack_wait = Duration::from_secs(1);
    spec.max_outage_delay = Duration::from_millis(300);
    publish(&bus, "outage-4000").await;
    publish(&bus, "ok").await;
    let handler = ScriptedHandler::default();
    let shutdown = CancellationToken::new();
    tokio::spawn(consumer::run(
        bus.clone(),
        spec.clone(),
        handler.clone(),
        shutdown.clone(),
    ));
    let calls = handler.calls.clone();
    wait_for(|| calls.lock().map(|c| c.contains_key("ok")).unwrap_or(false)).await;
    let info = consumer_info(&bus, &spec).await;
    shutdown.cancel();

    let calls = handler.calls.lock().expect("lock").clone();
    let outage = &calls["outage-4000"];
    assert!(
        outage.len() >= 5,
        "retried in place: {} calls",
        outage.len()
    );
    assert!(
        outage.iter().all(|(delivered, _)| *delivered == 1),
        "never redelivered: {outage:?}"
    );
    let waited = outage[outage.len() - 1].1 - outage[0].1;
    assert!(waited >= Duration::from_millis(3900), "{waited:?}");
    // The message behind it waited in our hands, kept alive, and was delivered once.
    assert_eq!(calls["ok"].iter().map(|(d, _)| *d).collect::<Vec<_>>(), [1]);
    assert_eq!(info.num_redelivered, 0, "nothing was redelivered");
    assert_eq!(
        info.config.max_deliver, -1,
        "JetStream itself never gives up"
    );
    assert!(dead_letters(&bus, 0).await.is_empty());
}

#[tokio::test]
async fn a_consumer_made_with_a_server_side_limit_is_updated_to_none() {
    let (_nats, bus, spec) = setup().await;
    let stream = bus
        .jetstream()
        .get_stream(&spec.stream)
        .await
        .expect("stream");
    stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(spec.durable_name.clone()),
            filter_subject: spec.filter_subject.clone(),
            max_deliver: 7,
            ..Default::default()
        })
        .await
        .expect("old consumer");
    consumer::ensure_consumer(&bus, &spec)
        .await
        .expect("ensure");
    assert_eq!(consumer_info(&bus, &spec).await.config.max_deliver, -1);
}

#[tokio::test]
async fn a_message_that_kills_its_handler_every_time_ends_as_a_dead_letter() {
    let (_nats, bus, mut spec) = setup().await;
    // Longer than a loaded machine takes from one run's crash to the next run's pull. At
    // 500 ms, with four busy loops beside it, the test failed five times of five: JetStream's
    // delivery count ran ahead of the crashes (7 deliveries after 5 crashes, from the
    // consumer's info at each run's start), so the budget ran out one run early and the last
    // run waited for a crash that never came: the message was delivered more often than a
    // handler was called (an ack wait expiring while a starved run was still starting up or
    // dying), each delivery spending the budget this test counts in crashes. With 3 s it
    // passed three times of three under the same load.
    spec.ack_wait = Duration::from_secs(3);
    // (A message held by each dying run would come back as often: it shares the fate.)
    publish(&bus, "crash").await;
    let handler = ScriptedHandler::default();
    // Each run dies with the handler, as the process would; the next one starts over.
    for _ in 0..spec.unsettled_limit() {
        let run = tokio::spawn(consumer::run(
            bus.clone(),
            spec.clone(),
            handler.clone(),
            CancellationToken::new(),
        ));
        let calls = handler.calls.clone();
        let crashes_before = calls.lock().expect("lock").get("crash").map_or(0, Vec::len);
        wait_for(|| {
            calls
                .lock()
                .map(|c| c.get("crash").map_or(0, Vec::len) > crashes_before)
                .unwrap_or(false)
                || run.is_finished()
        })
        .await;
        if !run
            .await
            .expect_err("the run dies with its handler")
            .is_panic()
        {
            panic!("the run ended without a panic");
        }
    }
    publish(&bus, "ok").await;
    let shutdown = CancellationToken::new();
    tokio::spawn(consumer::run(
        bus.clone(),
        spec.clone(),
        handler.clone(),
        shutdown.clone(),
    ));
    let letters = dead_letters(&bus, 1).await;
    let calls = handler.calls.clone();
    wait_for(|| calls.lock().map(|c| c.contains_key("ok")).unwrap_or(false)).await;
    shutdown.cancel();
    assert_eq!(letters.len(), 1);
    assert_eq!(&letters[0].payload[..], b"crash");
    let reason = letters[0]
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::REASON))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    assert!(reason.contains("without being settled"), "{reason}");
    let crashes = handler.calls.lock().expect("lock")["crash"].len();
    assert_eq!(
        i64::try_from(crashes).expect("count"),
        spec.unsettled_limit(),
        "handled until the budget and its spare were spent, not once more"
    );
}

async fn consumer_info(bus: &Bus, spec: &ConsumerSpec) -> async_nats::jetstream::consumer::Info {
    let stream = bus
        .jetstream()
        .get_stream(&spec.stream)
        .await
        .expect("stream");
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer(&spec.durable_name)
        .await
        .expect("consumer");
    consumer.info().await.expect("info").clone()
}
