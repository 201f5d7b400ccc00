//! The relay against real PostgreSQL and NATS: nothing skipped, nothing reordered,
//! nothing published twice, even with out-of-order commits and a killed leader; not held
//! back by other databases; an event NATS cannot carry refused at append; a leader cut off
//! from PostgreSQL stands down.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use deskie_bus::{Bus, StreamLimits, Topology};
use deskie_proto::events::{Event, GroupCreated};
use deskie_store::relay::{Relay, RelayConfig, RelayMetrics};
use deskie_store::{EventDraft, Store, StoreError, StreamKey};
use deskie_testkit::{FaultProxy, ProxyMode, TestDb, TestNats};
use rand::Rng;
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

async fn bus(nats: &TestNats) -> Bus {
    bus_with(nats, Topology::new(nats.prefix())).await
}

async fn bus_with(nats: &TestNats, topology: Topology) -> Bus {
    let bus = Bus::connect(nats.url(), topology, "relay-test")
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
    let (_, shutdown, handle) = start_relay_with(store.url(), bus, quick_config());
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
async fn many_writers_and_a_killed_relay_publish_every_event_once_in_stream_order() {
    let (_db, store) = common::store().await;
    let nats = TestNats::new();
    let bus = bus(&nats).await;
    let cases: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();

    // Relay A leads; relay B waits as a standby.
    let (_stop_a, relay_a) = start_relay(&store, &bus);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM relay_checkpoint WHERE epoch = 1")
        .fetch_one(store.pool())
        .await
        .expect("checkpoint")
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "A never led");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (stop_b, relay_b) = start_relay(&store, &bus);

    // Phase one while A leads; A is killed mid-way, as a crashed process (the task is
    // dropped with its session); phase two can only be published by B.
    let phase_one = spawn_writers(&store, &cases, 0, 30);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while stored_ids(&store).await.len() < 100 {
        assert!(std::time::Instant::now() < deadline, "writers stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    relay_a.abort();
    let _ = relay_a.await;
    for writer in phase_one {
        writer.await.expect("writer");
    }
    let epoch_at_kill = relay_epoch(&store).await;
    for writer in spawn_writers(&store, &cases, 30, 60) {
        writer.await.expect("writer");
    }
    let stored = stored_ids(&store).await;
    assert!(stored.len() >= 480, "writers stored {}", stored.len());
    let published = published(&bus, stored.len(), Duration::from_secs(30)).await;
    if published.len() < stored.len() {
        // Say who holds the horizon, should this ever stall again.
        eprintln!("stalled: {}", horizon_holders(&store).await);
    }
    stop_b.cancel();
    let _ = relay_b.await;
    assert_exactly_once_and_in_order(&published, &stored);
    // Fail-over really happened: B took the lead after A died and published phase two.
    assert!(
        relay_epoch(&store).await > 1,
        "B never led: epoch {} (at the kill: {epoch_at_kill})",
        relay_epoch(&store).await
    );
}

/// Eight writers, each appending 1–3 events to a random case per transaction, for
/// iterations `from..to`.
fn spawn_writers(
    store: &Store,
    cases: &[Uuid],
    from: usize,
    to: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..8)
        .map(|writer| {
            let store = store.clone();
            let cases = cases.to_vec();
            tokio::spawn(async move {
                for n in from..to {
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
        .collect()
}

/// The relay checkpoint's epoch: one more for each relay that took the lead.
async fn relay_epoch(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT epoch FROM relay_checkpoint WHERE relay = 'events'")
        .fetch_one(store.pool())
        .await
        .expect("epoch")
}

/// database, state, transaction id, query.
type Session = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Every session with a transaction id or a snapshot, in any database of the cluster (to
/// tell this database's holders from the rest), and the relay's checkpoint.
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

fn start_relay_with(
    url: &str,
    bus: &Bus,
    config: RelayConfig,
) -> (RelayMetrics, CancellationToken, tokio::task::JoinHandle<()>) {
    let metrics = RelayMetrics::new().expect("metrics");
    let shutdown = CancellationToken::new();
    let relay = Relay::new(url, bus.clone(), config).with_metrics(metrics.clone());
    let handle = tokio::spawn(relay.run(shutdown.clone()));
    (metrics, shutdown, handle)
}

fn quick_config() -> RelayConfig {
    RelayConfig {
        batch_size: 50,
        measure_lag_every: Duration::from_millis(20),
        ..Default::default()
    }
}

/// Polls `condition` every 20 ms until it holds; panics naming `what` after `limit`.
async fn until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

async fn stream_messages(bus: &Bus) -> u64 {
    let mut stream = bus
        .jetstream()
        .get_stream(bus.topology().events_stream())
        .await
        .expect("events stream");
    stream.info().await.expect("info").state.messages
}

#[tokio::test]
async fn a_transaction_open_in_another_database_does_not_hold_the_relay_back() {
    let (_db, store) = common::store().await;
    let nats = TestNats::new();
    let bus = bus(&nats).await;

    // Another database of the cluster, with a writing transaction left open in it.
    let other = TestDb::create().await;
    let mut blocker = PgConnection::connect(other.url()).await.expect("connect");
    sqlx::query("SET idle_in_transaction_session_timeout = 0")
        .execute(&mut blocker)
        .await
        .expect("set");
    sqlx::query("BEGIN")
        .execute(&mut blocker)
        .await
        .expect("begin");
    let xid: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut blocker)
        .await
        .expect("xid");
    // The cluster-wide horizon the relay used to read is held by it.
    let held: bool =
        sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot()) <= $1::text::xid8")
            .bind(&xid)
            .fetch_one(store.pool())
            .await
            .expect("horizon");
    assert!(
        held,
        "the other database's transaction must hold the cluster-wide horizon"
    );

    let (_metrics, shutdown, relay) = start_relay_with(store.url(), &bus, quick_config());
    let mut tx = store
        .begin_stream(StreamKey::new("case", Uuid::new_v4()))
        .await
        .expect("begin");
    tx.append(0, vec![common::draft(1)]).await.expect("append");
    tx.commit().await.expect("commit");

    let published = published(&bus, 1, Duration::from_secs(30)).await;
    let still: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut blocker)
        .await
        .expect("the blocker is still open");
    shutdown.cancel();
    let _ = relay.await;
    assert_eq!(still, xid, "the other transaction stayed open throughout");
    assert_exactly_once_and_in_order(&published, &stored_ids(&store).await);
}

#[tokio::test]
async fn a_transaction_of_this_database_that_appended_holds_later_events_back() {
    let (_db, store) = common::store().await;
    let nats = TestNats::new();
    let bus = bus(&nats).await;
    let (metrics, shutdown, relay) = start_relay_with(store.url(), &bus, quick_config());

    let mut first = store
        .begin_stream(StreamKey::new("case", Uuid::new_v4()))
        .await
        .expect("begin");
    first
        .append(0, vec![common::draft(1)])
        .await
        .expect("append");
    let mut second = store
        .begin_stream(StreamKey::new("case", Uuid::new_v4()))
        .await
        .expect("begin");
    second
        .append(0, vec![common::draft(2)])
        .await
        .expect("append");
    second.commit().await.expect("commit");

    // A pass of the relay saw the committed event and did not publish it.
    until(
        "the relay measures one waiting event",
        Duration::from_secs(30),
        || metrics.lag().unpublished == 1,
    )
    .await;
    assert_eq!(
        stream_messages(&bus).await,
        0,
        "published past an open writer"
    );

    first.commit().await.expect("commit");
    let published = published(&bus, 2, Duration::from_secs(30)).await;
    until("the lag drains", Duration::from_secs(30), || {
        metrics.lag().unpublished == 0
    })
    .await;
    shutdown.cancel();
    let _ = relay.await;
    assert_exactly_once_and_in_order(&published, &stored_ids(&store).await);
    assert_eq!(metrics.published(), 2);
}

fn draft_named(length: usize) -> EventDraft {
    EventDraft {
        event: Event::GroupCreated(GroupCreated {
            name: "x".repeat(length),
        }),
        causation_id: "cause-big".into(),
        correlation_id: "corr".into(),
        emitted_by: "test",
    }
}

#[tokio::test]
async fn an_event_nats_cannot_carry_is_refused_and_the_relay_keeps_publishing() {
    let (_db, store) = common::store().await;
    let nats = TestNats::new();
    let bus = bus(&nats).await;
    // The limit of the NATS server the test runs against (1 MiB by default).
    let store = store.with_max_message_bytes(bus.max_message_bytes());
    let limit = store.max_event_bytes();
    let (_metrics, shutdown, relay) = start_relay_with(store.url(), &bus, quick_config());

    let case = Uuid::new_v4();
    let mut tx = store
        .begin_stream(StreamKey::new("case", case))
        .await
        .expect("begin");
    // A batch with an oversized event is refused as a whole, before anything is written.
    let refused = tx
        .append(0, vec![common::draft(1), draft_named(limit)])
        .await
        .expect_err("too large");
    let size = match &refused {
        StoreError::EventTooLarge {
            event_type,
            stream_id,
            size,
            limit: reported,
        } => {
            assert_eq!(*event_type, "group_created");
            assert_eq!(*stream_id, case);
            assert_eq!(*reported, limit);
            assert!(*size > limit);
            *size
        }
        other => panic!("expected EventTooLarge, got {other}"),
    };
    let message = refused.to_string();
    assert!(
        message.contains("group_created") && message.contains(&size.to_string()),
        "{message}"
    );
    assert_eq!(tx.version(), 0);
    // Even a caller that commits regardless has written nothing.
    tx.commit().await.expect("commit");
    assert!(store.load_stream(case).await.expect("load").is_empty());

    // The largest event that fits (within a few bytes: timestamps vary in length) and a
    // small one after it are both published.
    let fits = limit - (size - limit) - 16;
    let mut tx = store
        .begin_stream(StreamKey::new("case", case))
        .await
        .expect("begin");
    tx.append(0, vec![draft_named(fits), common::draft(2)])
        .await
        .expect("append");
    tx.commit().await.expect("commit");

    let published = published(&bus, 2, Duration::from_secs(30)).await;
    shutdown.cancel();
    let _ = relay.await;
    assert_exactly_once_and_in_order(&published, &stored_ids(&store).await);
}

#[tokio::test]
async fn a_leader_cut_off_from_postgresql_stands_down_and_a_standby_takes_over() {
    let (db, store) = common::store().await;
    let nats = TestNats::new();
    let bus = bus(&nats).await;
    let proxy = FaultProxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let proxied = db
        .url()
        .replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port()), 1);
    assert_ne!(
        proxied,
        db.url(),
        "the test database is expected on 127.0.0.1:5432"
    );
    let config = RelayConfig {
        statement_deadline: Duration::from_secs(2),
        ..quick_config()
    };
    let (leader, stop_a, relay_a) = start_relay_with(&proxied, &bus, config.clone());
    until("relay A leads", Duration::from_secs(30), || {
        leader.is_leader()
    })
    .await;
    let (standby, stop_b, relay_b) = start_relay_with(store.url(), &bus, config);

    // The cable is cut: nothing passes, no FIN, no RST.
    proxy.set(ProxyMode::Blackhole);
    let noticed = until("relay A notices the cut", Duration::from_secs(30), || {
        !leader.is_leader()
    })
    .await;
    eprintln!("relay A stood down {noticed:?} after the cut (deadline 2 s + 1 s grace)");
    // A's server session still holds the lock: the proxy's kernel answers the server's
    // keepalives. In production the server's own keepalive ends it; here the host answers.
    assert!(!standby.is_leader());
    proxy.set(ProxyMode::Reset);
    until("relay B takes over", Duration::from_secs(30), || {
        standby.is_leader()
    })
    .await;

    let mut tx = store
        .begin_stream(StreamKey::new("case", Uuid::new_v4()))
        .await
        .expect("begin");
    tx.append(0, vec![common::draft(1)]).await.expect("append");
    tx.commit().await.expect("commit");
    let published = published(&bus, 1, Duration::from_secs(30)).await;
    stop_a.cancel();
    stop_b.cancel();
    let _ = relay_a.await;
    let _ = relay_b.await;
    assert_exactly_once_and_in_order(&published, &stored_ids(&store).await);
}

#[tokio::test]
async fn the_sessions_holding_the_horizon_are_named() {
    let (db, store) = common::store().await;
    let other = TestDb::create().await;
    let mut elsewhere = PgConnection::connect(other.url()).await.expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut elsewhere)
        .await
        .expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut elsewhere)
        .await
        .expect("xid");
    let url = format!("{}?application_name=the-open-writer", db.url());
    let mut writer = PgConnection::connect(&url).await.expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut writer)
        .await
        .expect("begin");
    let xid: String = sqlx::query_scalar("SELECT pg_current_xact_id()::xid::text")
        .fetch_one(&mut writer)
        .await
        .expect("xid");

    let mut conn = store.pool().acquire().await.expect("acquire");
    let holders = deskie_store::relay::lag::holders(&mut conn)
        .await
        .expect("holders");
    assert_eq!(holders.len(), 1, "only this database's writer: {holders:?}");
    let holder = &holders[0];
    assert_eq!(holder.application_name.as_deref(), Some("the-open-writer"));
    assert_eq!(holder.datname.as_deref(), Some(db.name()));
    assert_eq!(holder.state.as_deref(), Some("idle in transaction"));
    assert!(holder.pid.is_some());
    assert_eq!(holder.xid.as_deref(), Some(xid.as_str()));
    assert!(
        holder
            .to_string()
            .contains("application_name=\"the-open-writer\"")
    );
}

#[tokio::test]
async fn a_full_events_stream_holds_the_relay_back_until_there_is_room() {
    let (_db, store) = common::store().await;
    let nats = TestNats::new();
    // Room for two of the events below. (Events much smaller than the room left over are
    // not refused by NATS 2.9: its discard-new check leaves out the per-message overhead,
    // and the oldest message is dropped instead; docs/operations.md.)
    let tiny = StreamLimits {
        events_max_bytes: 4096,
        ..Default::default()
    };
    let bus = bus_with(&nats, Topology::new(nats.prefix()).with_limits(tiny)).await;
    let (metrics, shutdown, relay) = start_relay_with(store.url(), &bus, quick_config());
    let total = 6;
    for _ in 0..total {
        let mut tx = store
            .begin_stream(StreamKey::new("group", Uuid::new_v4()))
            .await
            .expect("begin");
        tx.append(0, vec![draft_named(1500)]).await.expect("append");
        tx.commit().await.expect("commit");
    }

    until(
        "the relay finds the events stream full, its lag showing the waiting events",
        Duration::from_secs(30),
        || metrics.is_stream_full() && metrics.lag().unpublished > 0,
    )
    .await;
    let held = stream_messages(&bus).await;
    assert!(held < total as u64, "{held} events fit in 4 KiB");
    assert!(metrics.stream_full_failures() >= 1);
    assert!(
        metrics.is_leader(),
        "a full stream does not cost the leadership"
    );

    // Room: the limit is raised (provisioning with the default limits updates the stream).
    let _roomy = bus_with(&nats, Topology::new(nats.prefix())).await;
    let published = published(&bus, total, Duration::from_secs(30)).await;
    until(
        "the lag drains and the stream is no longer full",
        Duration::from_secs(30),
        || metrics.lag().unpublished == 0 && !metrics.is_stream_full(),
    )
    .await;
    shutdown.cancel();
    let _ = relay.await;
    assert_exactly_once_and_in_order(&published, &stored_ids(&store).await);
    assert_eq!(metrics.published(), total as u64);
}
