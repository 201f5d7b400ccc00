//! The relay against real PostgreSQL and NATS: nothing skipped, nothing reordered,
//! nothing published twice, even with out-of-order commits and a killed leader.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use deskie_bus::{Bus, Topology};
use deskie_store::relay::{Relay, RelayConfig};
use deskie_store::{Store, StreamKey};
use deskie_testkit::TestNats;
use rand::Rng;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

async fn bus(nats: &TestNats) -> Bus {
    let bus = Bus::connect(nats.url(), Topology::new(nats.prefix()), "relay-test")
        .await
        .expect("connect");
    for _ in 0..50 {
        if bus.provision().await.is_ok() {
            return bus;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot provision streams");
}

fn start_relay(store: &Store, bus: &Bus) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let relay = Relay::new(
        store.url(),
        bus.clone(),
        RelayConfig {
            batch_size: 50,
            ..Default::default()
        },
    );
    let handle = tokio::spawn(relay.run(shutdown.clone()));
    (shutdown, handle)
}

/// Every message in the events stream, in stream order: (msg id, stream id, version).
async fn published(bus: &Bus, expected: usize, timeout: Duration) -> Vec<(String, String, u64)> {
    let stream = bus.topology().events_stream();
    deskie_testkit::read_stream(bus.jetstream(), &stream, expected, timeout)
        .await
        .iter()
        .map(|m| {
            let id = deskie_testkit::header(m, "Nats-Msg-Id");
            let version = deskie_testkit::header(m, deskie_bus::STREAM_VERSION_HEADER)
                .parse()
                .unwrap_or(0);
            let stream_id = m.subject.split('.').nth(4).unwrap_or_default().to_owned();
            (id, stream_id, version)
        })
        .collect()
}

fn assert_exactly_once_and_in_order(
    published: &[(String, String, u64)],
    stored_ids: &HashSet<String>,
) {
    let ids: HashSet<&String> = published.iter().map(|(id, _, _)| id).collect();
    assert_eq!(
        ids.len(),
        published.len(),
        "a Nats-Msg-Id was published twice"
    );
    assert_eq!(
        published.len(),
        stored_ids.len(),
        "published count differs from stored count"
    );
    assert!(
        published.iter().all(|(id, _, _)| stored_ids.contains(id)),
        "published an unknown event"
    );
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (_, stream, version) in published {
        let previous = last.insert(stream, *version).unwrap_or(0);
        assert_eq!(
            *version,
            previous + 1,
            "stream {stream}: version {version} after {previous}"
        );
    }
}

async fn stored_ids(store: &Store) -> HashSet<String> {
    sqlx::query_scalar::<_, Uuid>("SELECT event_id FROM events")
        .fetch_all(store.pool())
        .await
        .expect("ids")
        .into_iter()
        .map(|id| id.to_string())
        .collect()
}

#[tokio::test]
async fn a_late_committing_transaction_is_published_not_skipped() {
    let (_db, store) = common::store().await;
    let nats = TestNats::new();
    let bus = bus(&nats).await;
    let (shutdown, relay) = start_relay(&store, &bus);

    // T1 appends to case A first but commits last.
    let case_a = StreamKey::new("case", Uuid::new_v4());
    let mut late = store.begin_stream(case_a).await.expect("begin");
    late.append(0, vec![common::draft(1)])
        .await
        .expect("append");
    let case_b = StreamKey::new("case", Uuid::new_v4());
    let mut early = store.begin_stream(case_b).await.expect("begin");
    early
        .append(0, vec![common::draft(2)])
        .await
        .expect("append");
    early.commit().await.expect("commit");
    tokio::time::sleep(Duration::from_millis(300)).await;
    late.commit().await.expect("commit");

    let published = published(&bus, 2, Duration::from_secs(10)).await;
    shutdown.cancel();
    let _ = relay.await;
    assert_exactly_once_and_in_order(&published, &stored_ids(&store).await);
}

#[tokio::test]
async fn many_writers_and_a_killed_relay_publish_every_event_once_in_stream_order() {
    let (_db, store) = common::store().await;
    let nats = TestNats::new();
    let bus = bus(&nats).await;
    let cases: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();

    // Relay A leads; relay B waits as a standby.
    let (_stop_a, relay_a) = start_relay(&store, &bus);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (stop_b, relay_b) = start_relay(&store, &bus);

    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let store = store.clone();
            let cases = cases.clone();
            tokio::spawn(async move {
                for n in 0..60 {
                    let (case, count) = {
                        let mut rng = rand::thread_rng();
                        (cases[rng.gen_range(0..cases.len())], rng.gen_range(1..=3))
                    };
                    let mut tx = store
                        .begin_stream(StreamKey::new("case", case))
                        .await
                        .expect("begin");
                    let version = tx.version();
                    let drafts = (0..count)
                        .map(|i| common::draft(writer * 1000 + n * 10 + i))
                        .collect();
                    tx.append(version, drafts).await.expect("append");
                    tx.commit().await.expect("commit");
                }
            })
        })
        .collect();

    // Kill the leader mid-way: the task is dropped with its session, as a crashed process.
    tokio::time::sleep(Duration::from_millis(400)).await;
    relay_a.abort();
    let _ = relay_a.await;

    for writer in writers {
        writer.await.expect("writer");
    }
    let stored = stored_ids(&store).await;
    assert!(stored.len() >= 480, "writers stored {}", stored.len());
    let published = published(&bus, stored.len(), Duration::from_secs(30)).await;
    if published.len() < stored.len() {
        // The horizon is cluster-wide: say who holds it, should this ever stall again.
        eprintln!("stalled: {}", horizon_holders(&store).await);
    }
    stop_b.cancel();
    let _ = relay_b.await;
    assert_exactly_once_and_in_order(&published, &stored);
}

/// database, state, transaction id, query.
type Session = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The sessions holding the xid8 horizon back (an open transaction with an id, in any
/// database of the cluster), and the relay's checkpoint.
async fn horizon_holders(store: &deskie_store::Store) -> String {
    let holders: Vec<Session> = sqlx::query_as(
        "SELECT datname::text, state, backend_xid::text, left(query, 120)
           FROM pg_stat_activity
          WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL
          ORDER BY xact_start",
    )
    .fetch_all(store.pool())
    .await
    .unwrap_or_default();
    let horizon: Option<String> =
        sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
            .fetch_one(store.pool())
            .await
            .ok();
    let checkpoint: Vec<(String, i64, Option<String>)> =
        sqlx::query_as("SELECT relay, epoch, last_tx::text FROM relay_checkpoint")
            .fetch_all(store.pool())
            .await
            .unwrap_or_default();
    format!("horizon {horizon:?}; checkpoint {checkpoint:?}; sessions {holders:#?}")
}
