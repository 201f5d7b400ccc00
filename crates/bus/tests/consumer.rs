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
/// "poison", "always-retry".
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
    let deadline = Instant::now() + Duration::from_secs(15);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not met in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

#[tokio::test]
async fn messages_of_one_lane_keep_their_order_while_lanes_run_in_parallel() {
    let (_nats, bus, mut spec) = setup().await;
    spec.concurrency = 8;
    for n in 0..6 {
        for lane in ["a", "b", "c"] {
            publish(&bus, &format!("{lane}{n}")).await;
        }
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
    wait_for(|| order.lock().map(|o| o.len() == 18).unwrap_or(false)).await;
    shutdown.cancel();
    let order = handler.order.lock().expect("lock").clone();
    for lane in ["a", "b", "c"] {
        let seen: Vec<&String> = order.iter().filter(|m| m.starts_with(lane)).collect();
        let expected: Vec<String> = (0..6).map(|n| format!("{lane}{n}")).collect();
        assert_eq!(
            seen,
            expected.iter().collect::<Vec<_>>(),
            "lane {lane} out of order"
        );
    }
    let peak = handler.peak.load(std::sync::atomic::Ordering::SeqCst);
    assert!(peak >= 2, "lanes never ran in parallel (peak {peak})");
    assert!(peak <= 3, "a lane ran two messages at once (peak {peak})");
}
