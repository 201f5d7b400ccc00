//! A NATS server that goes silent (a cut network: no FIN, no RST) is noticed by the
//! client's pings in seconds, and the connection comes back once traffic passes again.

use std::time::{Duration, Instant};

use deskie_bus::{Bus, Topology};
use deskie_testkit::{FaultProxy, ProxyMode, TestNats};

async fn until(what: &str, limit: Duration, condition: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn a_silent_server_is_noticed_in_seconds_and_the_client_reconnects() {
    let nats = TestNats::new();
    let upstream = nats
        .url()
        .trim_start_matches("nats://")
        .parse()
        .expect("NATS address as host:port");
    let proxy = FaultProxy::start(upstream).await;
    let url = format!("nats://127.0.0.1:{}", proxy.port());
    let bus = Bus::connect(&url, Topology::new(nats.prefix()), "keepalive-test")
        .await
        .expect("connect");
    until("connected", Duration::from_secs(30), || bus.is_connected()).await;

    proxy.set(ProxyMode::Blackhole);
    let noticed = until("the silence noticed", Duration::from_secs(60), || {
        !bus.is_connected()
    })
    .await;
    eprintln!(
        "silent NATS noticed after {noticed:?} (ping every {:?})",
        Bus::PING_INTERVAL
    );

    proxy.set(ProxyMode::Pass);
    until("reconnected", Duration::from_secs(30), || {
        bus.is_connected()
    })
    .await;
}

#[tokio::test]
async fn the_message_limit_is_the_servers_max_payload() {
    let nats = TestNats::new();
    let bus = Bus::connect(nats.url(), Topology::new(nats.prefix()), "limit-test")
        .await
        .expect("connect");
    until("connected", Duration::from_secs(30), || bus.is_connected()).await;
    assert_eq!(
        bus.max_message_bytes(),
        bus.client().server_info().max_payload
    );
}
