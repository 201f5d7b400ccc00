//! `deskie replay`: read models dropped and rebuilt from the event store end identical to
//! the live ones, which writers and the projector built event by event.

use deskie_proto::Timestamp;
use deskie_proto::events::{
    ChatEnded, CustomerDetails, Event, GroupCreated, GroupMapping, GroupRenamed,
    IntegrationConnected, IntegrationDisconnected, IntegrationKeysChecked, IntegrationSettings,
};
use deskie_store::read_models::cases;
use deskie_store::{Store, StreamKey};
use deskie_testkit::case_events::{
    assigned, at, customer_data, customer_says, delivered, opened, reply, status,
};
use deskie_testkit::{TestDb, record_case};
use uuid::Uuid;

/// Every read-model table, each as one JSON array of its rows in key order.
async fn snapshot(store: &Store) -> Vec<(String, String)> {
    let mut tables = vec!["cases", "case_messages", "groups", "integrations"];
    let agents: bool = sqlx::query_scalar("SELECT to_regclass('agents') IS NOT NULL")
        .fetch_one(store.pool())
        .await
        .expect("regclass");
    if agents {
        tables.push("agents");
    }
    let mut out = Vec::new();
    for table in tables {
        let sql =
            format!("SELECT COALESCE(json_agg(t ORDER BY t.id), '[]'::json)::text FROM {table} t");
        let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(store.pool())
            .await
            .expect("snapshot");
        out.push((table.to_owned(), rows));
    }
    out
}

async fn record_config(store: &Store, stream_type: &'static str, id: Uuid, event: Event) {
    store
        .record_config_event(StreamKey::new(stream_type, id), event, "replay-test", "api")
        .await
        .expect("config event");
}

fn settings(group: Uuid, public_key: &str) -> IntegrationSettings {
    IntegrationSettings {
        public_key: public_key.into(),
        secret_key_encrypted: vec![1, 2, 3],
        default_group_id: group.to_string(),
        panel: "separate".into(),
        group_mappings: vec![GroupMapping {
            chatra_group_id: "chatra-sales".into(),
            group_id: group.to_string(),
        }],
        webhook_token_encrypted: vec![4, 5, 6],
        webhook_token_sha256: vec![7; 32],
        ..Default::default()
    }
}

/// Groups, integrations and a few cases with messages, replies and customer data.
async fn a_busy_history(store: &Store) {
    let (support, sales) = (Uuid::now_v7(), Uuid::now_v7());
    record_config(
        store,
        "group",
        support,
        Event::GroupCreated(GroupCreated {
            name: "Support".into(),
        }),
    )
    .await;
    record_config(
        store,
        "group",
        sales,
        Event::GroupCreated(GroupCreated {
            name: "Sale".into(),
        }),
    )
    .await;
    record_config(
        store,
        "group",
        sales,
        Event::GroupRenamed(GroupRenamed {
            name: "Sales".into(),
        }),
    )
    .await;
    let (live, gone) = (Uuid::now_v7(), Uuid::now_v7());
    record_config(
        store,
        "integration",
        live,
        Event::IntegrationConnected(IntegrationConnected {
            settings: Some(settings(support, "pub-live")),
        }),
    )
    .await;
    record_config(
        store,
        "integration",
        live,
        Event::IntegrationKeysChecked(IntegrationKeysChecked {
            status: "connected".into(),
            checked_at: Some(Timestamp {
                seconds: 1_732_608_000,
                nanos: 0,
            }),
            settings_version: 1,
            detail: None,
        }),
    )
    .await;
    record_config(
        store,
        "integration",
        gone,
        Event::IntegrationConnected(IntegrationConnected {
            settings: Some(settings(sales, "pub-gone")),
        }),
    )
    .await;
    record_config(
        store,
        "integration",
        gone,
        Event::IntegrationDisconnected(IntegrationDisconnected {}),
    )
    .await;

    for n in 0..6 {
        let case_id = Uuid::now_v7();
        let group = if n % 2 == 0 { support } else { sales };
        let reply_id = Uuid::now_v7();
        let opened = opened()
            .integration(live)
            .in_group(group)
            .client(&format!("client-{n}"))
            .chat(&format!("chat-{n}"))
            .chatra_group((n % 2 == 1).then_some("chatra-sales"));
        record_case(store, case_id, vec![opened.into()]).await;
        let mut says = customer_says(&format!("Hallo {n} 👋")).chatra_id(&format!("m-{n}"));
        // Sub-second precision survives the rebuild.
        says.0.created_at = Some(Timestamp {
            seconds: 1_732_608_000 + n,
            nanos: 500_000_000,
        });
        let details = CustomerDetails {
            ip: Some("203.0.113.7".into()),
            language: Some("de".into()),
            last_visit: at(1_732_600_000),
            ..Default::default()
        };
        let mut data = customer_data()
            .name(Some("Zoë"))
            .field("order", &n.to_string())
            .details(details);
        if n % 3 == 0 {
            data = data.email(Some("zoe@example.com"));
        }
        record_case(store, case_id, vec![says.into(), data.into()]).await;
        let asked = reply("How can I help?")
            .id(reply_id)
            .by_agent(Some(Uuid::now_v7()));
        record_case(store, case_id, vec![asked.into()]).await;
        if n % 2 == 0 {
            let mut delivered = delivered(reply_id).chatra_id(&format!("echo-{n}"));
            delivered.0.chatra_agent_id = Some("chatra-agent".into());
            record_case(
                store,
                case_id,
                vec![
                    delivered.into(),
                    assigned(Uuid::now_v7()).into(),
                    status("closed").from("open").into(),
                    Event::ChatEnded(ChatEnded {}),
                ],
            )
            .await;
        }
    }
}

#[tokio::test]
async fn read_models_rebuilt_from_the_event_store_equal_the_live_ones() {
    let db = TestDb::create().await;
    let store = Store::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    a_busy_history(&store).await;
    let live = snapshot(&store).await;
    assert!(
        live.iter()
            .filter(|(table, _)| table != "agents")
            .all(|(_, rows)| rows != "[]"),
        "every read model this test feeds has rows: {live:?}"
    );

    // Damage the live tables, so only a real rebuild can restore them.
    sqlx::query("DELETE FROM case_messages WHERE author = 'agent'")
        .execute(store.pool())
        .await
        .expect("damage");
    sqlx::query("UPDATE cases SET status = 'pending', version = 1")
        .execute(store.pool())
        .await
        .expect("damage");
    sqlx::query("DELETE FROM groups")
        .execute(store.pool())
        .await
        .expect("damage");
    assert_ne!(snapshot(&store).await, live);

    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(store.pool())
        .await
        .expect("count");
    let mut calls = Vec::new();
    let report = deskie::replay::rebuild(&store, |done, total| calls.push((done, total)))
        .await
        .expect("rebuild");

    assert_eq!(snapshot(&store).await, live);
    let total = u64::try_from(total).expect("count");
    assert_eq!(report.events, total);
    assert_eq!(report.cases, 6);
    assert_eq!(report.skipped, 0);
    assert_eq!(calls.first(), Some(&(0, total)));
    assert_eq!(calls.last(), Some(&(total, total)));

    // A second rebuild changes nothing either.
    deskie::replay::rebuild(&store, |_, _| {})
        .await
        .expect("again");
    assert_eq!(snapshot(&store).await, live);
}

#[tokio::test]
async fn replay_refuses_while_a_service_is_connected_and_names_it_unless_forced() {
    let db = TestDb::create().await;
    let setup = Store::connect(db.url()).await.expect("connect");
    setup.migrate().await.expect("migrate");
    a_busy_history(&setup).await;
    setup.pool().close().await;
    let replay = Store::connect_as(db.url(), deskie::replay::REPLAY_APPLICATION)
        .await
        .expect("connect");
    until_alone(&replay).await;
    let before = snapshot(&replay).await;
    sqlx::query("UPDATE cases SET status = 'pending'")
        .execute(replay.pool())
        .await
        .expect("a change only a rebuild would undo");
    let damaged = snapshot(&replay).await;
    assert_ne!(damaged, before);

    // A service holds a session on the database.
    let service = Store::connect_as(db.url(), "deskie-routing")
        .await
        .expect("connect");
    assert!(service.ping().await);
    let refused = deskie::replay::run_with_progress(&replay, false).await;
    let Err(deskie::replay::ReplayError::OthersConnected(others)) = &refused else {
        panic!("not refused: {refused:?}");
    };
    assert!(
        others.iter().any(|o| o.application == "deskie-routing"),
        "{others:?}"
    );
    let message = refused.map(|_| ()).expect_err("refused").to_string();
    assert!(message.contains("deskie-routing pid"), "{message}");
    assert!(message.contains("--force"), "{message}");
    assert_eq!(snapshot(&replay).await, damaged, "nothing was rebuilt");

    let report = deskie::replay::run_with_progress(&replay, true)
        .await
        .expect("forced");
    assert!(report.events > 0);
    assert_eq!(snapshot(&replay).await, before);

    // With the service gone, no force is needed.
    service.pool().close().await;
    until_alone(&replay).await;
    deskie::replay::run_with_progress(&replay, false)
        .await
        .expect("nobody else connected");
}

/// Waits until the sessions of closed pools have left `pg_stat_activity` (a backend goes
/// away a moment after its client said goodbye).
async fn until_alone(replay: &Store) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let others = deskie::replay::other_sessions(replay)
            .await
            .expect("sessions");
        if others.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still connected: {others:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_case_stream_that_cannot_follow_its_case_is_left_out_and_the_rest_rebuilt() {
    let db = TestDb::create().await;
    let store = Store::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    let (good, broken) = (Uuid::now_v7(), Uuid::now_v7());
    deskie_testkit::record_case(
        &store,
        good,
        vec![
            deskie_testkit::case_events::opened().into(),
            deskie_testkit::case_events::customer_says("hello").into(),
        ],
    )
    .await;
    // A stream whose first event is not `case_opened` (a writer's bug, a restored table).
    deskie_testkit::append_case(
        &store,
        broken,
        vec![
            deskie_testkit::case_events::status("pending").into(),
            deskie_testkit::case_events::customer_says("orphan").into(),
        ],
    )
    .await;
    let live = cases::get(store.pool(), good).await.expect("get");

    let report = deskie::replay::rebuild(&store, |_, _| {})
        .await
        .expect("rebuild");
    assert_eq!((report.events, report.skipped, report.cases), (4, 2, 1));
    assert_eq!(cases::get(store.pool(), good).await.expect("get"), live);
    assert!(
        cases::get(store.pool(), broken)
            .await
            .expect("get")
            .is_none()
    );
}
