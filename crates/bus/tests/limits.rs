//! Stream limits: provisioning updates existing streams to the configured limits (NATS
//! accepts the update), and a stream at its byte limit refuses publishes as
//! [`BusError::StreamFull`].

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::stream::Config;
use bytes::Bytes;
use deskie_bus::{Bus, BusError, StreamLimits, Topology};
use deskie_testkit::TestNats;

async fn connected(nats: &TestNats, topology: Topology) -> Bus {
    let bus = Bus::connect(nats.url(), topology, "limits-test")
        .await
        .expect("connect");
    assert!(
        bus.is_connected(),
        "NATS at {} is not reachable",
        nats.url()
    );
    bus
}

fn tiny_limits() -> StreamLimits {
    StreamLimits {
        webhooks_max_bytes: 4096,
        webhooks_max_age: Duration::from_secs(3600),
        events_max_bytes: 4096,
        events_max_age: Duration::from_secs(3600),
        dead_letters_max_bytes: 1 << 20,
    }
}

#[tokio::test]
async fn provisioning_takes_existing_streams_to_the_configured_limits() {
    let nats = TestNats::new();
    // Streams as an earlier release made them: no byte limit, 30 and 365 days.
    let old = Topology::new(nats.prefix());
    let bus = connected(&nats, old.clone()).await;
    for mut config in old.stream_configs() {
        config.max_bytes = -1;
        config.max_age = if config.name == old.webhooks_stream() {
            Duration::from_secs(30 * 86_400)
        } else if config.name == old.events_stream() {
            Duration::from_secs(365 * 86_400)
        } else {
            Duration::ZERO
        };
        bus.jetstream()
            .create_stream(config)
            .await
            .expect("old-style stream");
    }

    let limits = StreamLimits {
        webhooks_max_bytes: 64 << 20,
        webhooks_max_age: Duration::from_secs(7 * 86_400),
        events_max_bytes: 128 << 20,
        events_max_age: Duration::from_secs(7 * 86_400),
        dead_letters_max_bytes: 32 << 20,
    };
    let bounded = connected(&nats, Topology::new(nats.prefix()).with_limits(limits)).await;
    bounded.provision().await.expect("the update is accepted");

    for expected in bounded.topology().stream_configs() {
        let mut stream = bounded
            .jetstream()
            .get_stream(&expected.name)
            .await
            .expect("stream");
        let Config {
            max_bytes, max_age, ..
        } = stream.info().await.expect("info").config.clone();
        assert_eq!(
            (max_bytes, max_age),
            (expected.max_bytes, expected.max_age),
            "{}",
            expected.name
        );
    }
    // Dead letters still never expire.
    let mut dead = bounded
        .jetstream()
        .get_stream(bounded.topology().dead_letter_stream())
        .await
        .expect("dead letters");
    assert_eq!(
        dead.info().await.expect("info").config.max_age,
        Duration::ZERO
    );
}

#[tokio::test]
async fn a_full_stream_refuses_the_publish_as_stream_full() {
    let nats = TestNats::new();
    let topology = Topology::new(nats.prefix()).with_limits(tiny_limits());
    let bus = connected(&nats, topology).await;
    bus.provision().await.expect("tiny streams");
    let subject = bus.topology().webhook_subject("i", "chatStarted");
    let payload = Bytes::from(vec![b'x'; 3000]);

    let first = bus
        .publish_durable(subject.clone(), "m-1", HeaderMap::new(), payload.clone())
        .await
        .expect("the first fits");
    assert!(!first.duplicate);
    let error = bus
        .publish_durable(subject, "m-2", HeaderMap::new(), payload)
        .await
        .expect_err("the second does not");
    assert!(
        matches!(&error, BusError::StreamFull(reason) if reason.contains("maximum")),
        "{error:?}"
    );
}
