//! `deskie dead-letters` / `deskie redrive` against a real NATS: a message a consumer gave up
//! on is listed, redriven once its cause is fixed, taken by the consumer with its trace
//! context, and then no longer listed; a bad redrive changes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_nats::HeaderMap;
use bytes::Bytes;
use deskie::dead_letters::{self, REDRIVEN_FROM, RedriveError};
use deskie_bus::consumer::{self, ConsumerSpec, Delivery, Handler, HandlerError};
use deskie_bus::{Bus, Topology};
use deskie_testkit::TestNats;
use tokio_util::sync::CancellationToken;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// What the consumer took: each payload with its headers.
type Taken = Arc<Mutex<Vec<(String, Option<HeaderMap>)>>>;

/// Refuses every message as poison until `fixed`; records what it took and its headers.
#[derive(Clone, Default)]
struct Picky {
    fixed: Arc<AtomicBool>,
    taken: Taken,
}

impl Handler for Picky {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        if !self.fixed.load(Ordering::SeqCst) {
            return Err(HandlerError::Poison {
                reason: "unknown integration".into(),
            });
        }
        let text = String::from_utf8_lossy(&delivery.payload).to_string();
        if let Ok(mut taken) = self.taken.lock() {
            taken.push((text, delivery.headers.clone()));
        }
        Ok(())
    }
}

async fn wait_for(what: &str, condition: impl AsyncFn() -> bool) {
    deskie_testkit::eventually(what, async || condition().await.then_some(())).await;
}

async fn provisioned_bus(nats: &TestNats) -> Bus {
    let bus = Bus::connect(nats.url(), Topology::new(nats.prefix()), "redrive-test")
        .await
        .expect("bus");
    bus.provision().await.expect("streams");
    bus
}

#[tokio::test]
async fn a_dead_letter_is_listed_redriven_once_taken_again_and_then_gone_from_the_list() {
    let nats = TestNats::new();
    let bus = provisioned_bus(&nats).await;
    let topology = bus.topology().clone();
    let spec = ConsumerSpec::new(
        topology.webhooks_stream(),
        topology.consumer_name("routing"),
        topology.all_webhooks(),
    );
    let handler = Picky::default();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(consumer::run(
        bus.clone(),
        spec,
        handler.clone(),
        shutdown.clone(),
    ));
    let subject = topology.webhook_subject("integration-1", "chatFragment");
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", TRACEPARENT);
    bus.publish_durable(
        subject.clone(),
        "webhook-1",
        headers,
        Bytes::from_static(b"{\"eventName\":\"chatFragment\"}"),
    )
    .await
    .expect("publish");

    wait_for("the dead letter", async || {
        dead_letters::list(&bus, 10)
            .await
            .is_ok_and(|l| l.len() == 1)
    })
    .await;
    let listed = dead_letters::list(&bus, 10).await.expect("list");
    let letter = &listed[0];
    assert_eq!(letter.consumer, topology.consumer_name("routing"));
    assert_eq!(letter.subject, subject);
    assert_eq!(letter.reason, "poison: unknown integration");

    // The cause is fixed (say, the integration is connected again): redrive.
    handler.fixed.store(true, Ordering::SeqCst);
    let redriven = dead_letters::redrive(&bus, letter.sequence)
        .await
        .expect("redrive");
    assert_eq!(redriven.sequence, letter.sequence);
    assert_eq!(redriven.subject, subject);
    assert_eq!(redriven.consumer, topology.consumer_name("routing"));
    wait_for("the consumer takes it", async || {
        handler.taken.lock().is_ok_and(|t| t.len() == 1)
    })
    .await;
    let (payload, headers) = handler.taken.lock().expect("lock")[0].clone();
    assert_eq!(payload, "{\"eventName\":\"chatFragment\"}");
    let header = |name: &str| {
        headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    };
    assert_eq!(header("traceparent").as_deref(), Some(TRACEPARENT));
    assert_eq!(
        header(REDRIVEN_FROM),
        Some(letter.sequence.to_string()),
        "the copy says where it came from"
    );
    assert_eq!(header("Deskie-Dead-Letter-Reason"), None);
    assert!(
        dead_letters::list(&bus, 10).await.expect("list").is_empty(),
        "a redriven letter is no longer listed"
    );

    // Twice, an unknown sequence, a marker: refused, and nothing more reaches the consumer
    // (nothing more is published to the webhook stream it reads).
    let published = webhook_stream_last_sequence(&bus).await;
    let again = dead_letters::redrive(&bus, letter.sequence).await;
    assert!(
        matches!(again, Err(RedriveError::AlreadyRedriven { sequence, .. }) if sequence == letter.sequence),
        "{again:?}"
    );
    let unknown = dead_letters::redrive(&bus, 999).await;
    assert!(
        matches!(unknown, Err(RedriveError::NotFound(999))),
        "{unknown:?}"
    );
    let marker = letter.sequence + 1;
    let not_a_letter = dead_letters::redrive(&bus, marker).await;
    assert!(
        matches!(not_a_letter, Err(RedriveError::NotADeadLetter(s)) if s == marker),
        "{not_a_letter:?}"
    );
    // The same in one batch: each outcome reported, in order, as it happens.
    let mut reported = Vec::new();
    let batch = dead_letters::redrive_each(&bus, &[999, letter.sequence], |i, outcome| {
        reported.push((i, outcome.is_ok()));
    })
    .await
    .expect("the stream reads");
    assert!(
        matches!(
            batch.as_slice(),
            [
                Err(RedriveError::NotFound(999)),
                Err(RedriveError::AlreadyRedriven { .. })
            ]
        ),
        "{batch:?}"
    );
    assert_eq!(reported, [(0, false), (1, false)]);
    assert_eq!(
        webhook_stream_last_sequence(&bus).await,
        published,
        "no refused redrive published a copy"
    );
    assert_eq!(handler.taken.lock().expect("lock").len(), 1, "taken once");

    shutdown.cancel();
    let _ = running.await;
}

#[tokio::test]
async fn a_dead_letter_whose_subject_is_not_ours_is_refused_and_stays_listed() {
    let nats = TestNats::new();
    let bus = provisioned_bus(&nats).await;
    let mut headers = HeaderMap::new();
    headers.insert(
        deskie_bus::dead_letter::headers::SUBJECT,
        "elsewhere.orders.created",
    );
    headers.insert(deskie_bus::dead_letter::headers::CONSUMER, "someone");
    let stored = bus
        .publish_durable(
            bus.topology().dead_letter_subject("someone"),
            "forged-1",
            headers,
            Bytes::from_static(b"x"),
        )
        .await
        .expect("publish");
    let refused = dead_letters::redrive(&bus, stored.sequence).await;
    assert!(
        matches!(&refused, Err(RedriveError::ForeignSubject { subject, .. }) if subject == "elsewhere.orders.created"),
        "{refused:?}"
    );
    assert_eq!(
        dead_letters::list(&bus, 10).await.expect("list").len(),
        1,
        "still listed: nothing was recorded"
    );
}

#[tokio::test]
async fn a_discarded_dead_letter_is_no_longer_listed_nor_redrivable_and_others_stay() {
    let nats = TestNats::new();
    let bus = provisioned_bus(&nats).await;
    let letter = |id: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert(
            deskie_bus::dead_letter::headers::SUBJECT,
            bus.topology()
                .webhook_subject("integration-1", "chatFragment")
                .as_str(),
        );
        headers.insert(deskie_bus::dead_letter::headers::CONSUMER, "routing");
        bus.publish_durable(
            bus.topology().dead_letter_subject("routing"),
            id,
            headers,
            Bytes::from_static(b"{}"),
        )
    };
    let first = letter("letter-1").await.expect("publish").sequence;
    let second = letter("letter-2").await.expect("publish").sequence;

    let outcomes = dead_letters::discard_each(&bus, &[first, 999], |_, _| {})
        .await
        .expect("the stream reads");
    assert!(
        matches!(
            outcomes.as_slice(),
            [Ok(s), Err(RedriveError::NotFound(999))] if *s == first
        ),
        "{outcomes:?}"
    );
    let listed: Vec<u64> = dead_letters::list(&bus, 10)
        .await
        .expect("list")
        .iter()
        .map(|l| l.sequence)
        .collect();
    assert_eq!(listed, [second], "only the other letter is listed");

    let redrive = dead_letters::redrive(&bus, first).await;
    assert!(
        matches!(redrive, Err(RedriveError::Discarded(s)) if s == first),
        "{redrive:?}"
    );
    let again = dead_letters::discard_each(&bus, &[first], |_, _| {})
        .await
        .expect("the stream reads");
    assert!(
        matches!(again.as_slice(), [Err(RedriveError::Discarded(_))]),
        "{again:?}"
    );
    // The discard marker itself is no dead letter.
    let marker = second + 1;
    let not_a_letter = dead_letters::discard_each(&bus, &[marker], |_, _| {})
        .await
        .expect("the stream reads");
    assert!(
        matches!(not_a_letter.as_slice(), [Err(RedriveError::NotADeadLetter(s))] if *s == marker),
        "{not_a_letter:?}"
    );
}

/// The last sequence of the webhook stream: grows with every message published to it.
async fn webhook_stream_last_sequence(bus: &Bus) -> u64 {
    let mut stream = bus
        .jetstream()
        .get_stream(bus.topology().webhooks_stream())
        .await
        .expect("webhook stream");
    stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence
}
