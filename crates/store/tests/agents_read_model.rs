//! The agents read model: projection of agent events, token lookup, redelivery.

mod common;

use deskie_proto::events::{
    AgentCreated, AgentDisabled, AgentGroups, AgentStatusChanged, AgentTokenRotated, AgentUpdated,
    Event,
};
use deskie_store::StreamKey;
use deskie_store::read_models::{agents, apply_config_event};
use uuid::Uuid;

fn created(email: &str, token: u8) -> Event {
    Event::AgentCreated(AgentCreated {
        email: email.into(),
        name: "Ann".into(),
        channel_access: vec!["live_chat".into()],
        token_sha256: vec![token; 32],
        group_ids: Vec::new(),
    })
}

#[tokio::test]
async fn agent_events_project_and_tokens_work_only_while_enabled() {
    let (_db, store) = common::store().await;
    let id = Uuid::now_v7();
    let key = || StreamKey::new("agent", id);
    let first = store
        .record_config_event(key(), created("Ann@Example.com", 1), "c1", "test")
        .await
        .expect("create");
    let agent = agents::get(store.pool(), id)
        .await
        .expect("get")
        .expect("agent");
    assert_eq!(agent.version, 1);
    assert_eq!(agent.channel_access, ["live_chat"]);
    assert!(agent.has_access("live_chat") && !agent.has_access("email"));
    assert_eq!(agent.status, "offline");
    let by_email = agents::enabled_by_email(store.pool(), "ann@example.COM")
        .await
        .expect("by email");
    assert_eq!(by_email.map(|a| a.id), Some(id));

    let update = Event::AgentUpdated(AgentUpdated {
        email: "ann@example.com".into(),
        name: "Ann Lee".into(),
        channel_access: Vec::new(),
        groups: None,
    });
    store
        .record_config_event(key(), update, "c2", "test")
        .await
        .expect("update");
    let rotate = Event::AgentTokenRotated(AgentTokenRotated {
        token_sha256: vec![2; 32],
    });
    store
        .record_config_event(key(), rotate, "c3", "test")
        .await
        .expect("rotate");
    assert!(
        agents::by_token_sha256(store.pool(), &[1; 32])
            .await
            .expect("lookup")
            .is_none()
    );
    let found = agents::by_token_sha256(store.pool(), &[2; 32])
        .await
        .expect("lookup");
    assert_eq!(found.map(|a| a.name), Some("Ann Lee".to_owned()));

    // A redelivered older event changes nothing.
    let mut conn = store.pool().acquire().await.expect("conn");
    for envelope in &first {
        apply_config_event(&mut conn, envelope)
            .await
            .expect("reapply");
    }
    let agent = agents::get(store.pool(), id)
        .await
        .expect("get")
        .expect("agent");
    assert_eq!((agent.version, agent.name.as_str()), (3, "Ann Lee"));

    store
        .record_config_event(key(), Event::AgentDisabled(AgentDisabled {}), "c4", "test")
        .await
        .expect("disable");
    assert!(
        agents::by_token_sha256(store.pool(), &[2; 32])
            .await
            .expect("lookup")
            .is_none()
    );
    assert!(
        agents::enabled_by_email(store.pool(), "ann@example.com")
            .await
            .expect("email")
            .is_none()
    );
    let agent = agents::get(store.pool(), id)
        .await
        .expect("get")
        .expect("agent");
    assert!(agent.disabled_at.is_some());
    assert_eq!(agents::list(store.pool()).await.expect("list").len(), 1);
}

#[tokio::test]
async fn a_rebuild_stream_by_stream_accepts_emails_that_moved_between_agents() {
    // Live: B takes x, B moves to v, A (created earlier with w) moves to x. Applied stream by
    // stream (A entirely, then B), A holds x while B's first event also has x.
    let (_db, store) = common::store().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let events = [
        (a, created("w@example.com", 1)),
        (b, created("x@example.com", 2)),
        (
            b,
            Event::AgentUpdated(AgentUpdated {
                email: "v@example.com".into(),
                name: "B".into(),
                channel_access: Vec::new(),
                groups: None,
            }),
        ),
        (
            a,
            Event::AgentUpdated(AgentUpdated {
                email: "x@example.com".into(),
                name: "A".into(),
                channel_access: Vec::new(),
                groups: None,
            }),
        ),
    ];
    let mut envelopes = Vec::new();
    for (id, event) in events {
        let stored = store
            .record_config_event(StreamKey::new("agent", id), event, "c", "test")
            .await
            .expect("record");
        envelopes.extend(stored);
    }
    sqlx::query("TRUNCATE agents")
        .execute(store.pool())
        .await
        .expect("truncate");
    // A's stream entirely, then B's.
    envelopes.sort_by_key(|e| (e.stream_id != a.to_string(), e.version));
    let mut conn = store.pool().acquire().await.expect("conn");
    for envelope in &envelopes {
        apply_config_event(&mut conn, envelope)
            .await
            .expect("rebuild");
    }
    let emails: Vec<(Uuid, String)> = agents::list(store.pool())
        .await
        .expect("list")
        .into_iter()
        .map(|agent| (agent.id, agent.email))
        .collect();
    assert_eq!(
        emails,
        [
            (a, "x@example.com".to_owned()),
            (b, "v@example.com".to_owned())
        ]
    );
}

fn updated(name: &str, groups: Option<Vec<Uuid>>) -> Event {
    Event::AgentUpdated(AgentUpdated {
        email: "ann@example.com".into(),
        name: name.into(),
        channel_access: vec!["live_chat".into()],
        groups: groups.map(|ids| AgentGroups {
            group_ids: ids.iter().map(Uuid::to_string).collect(),
        }),
    })
}

async fn groups_of(store: &deskie_store::Store, id: Uuid) -> Vec<Uuid> {
    agents::get(store.pool(), id)
        .await
        .expect("get")
        .expect("agent")
        .group_ids
}

#[tokio::test]
async fn group_membership_projects_an_update_without_groups_keeps_it_and_a_rebuild_agrees() {
    let (_db, store) = common::store().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let id = Uuid::now_v7();
    let key = || StreamKey::new("agent", id);
    let mut envelopes = Vec::new();
    let mut record = async |event: Event| {
        let stored = store
            .record_config_event(key(), event, "c", "test")
            .await
            .expect("record");
        envelopes.extend(stored);
    };
    let Event::AgentCreated(mut create) = created("ann@example.com", 1) else {
        unreachable!()
    };
    create.group_ids = vec![a.to_string(), b.to_string()];
    record(Event::AgentCreated(create)).await;
    assert_eq!(groups_of(&store, id).await, [a, b]);

    // An update from before agents had groups leaves the membership as it was.
    record(updated("Ann Lee", None)).await;
    assert_eq!(groups_of(&store, id).await, [a, b]);
    record(updated("Ann Lee", Some(vec![b]))).await;
    assert_eq!(groups_of(&store, id).await, [b]);

    // The candidates of round-robin carry their groups.
    record(Event::AgentStatusChanged(AgentStatusChanged {
        status: "online".into(),
    }))
    .await;
    let online = agents::online_with_access(store.pool(), "live_chat")
        .await
        .expect("online");
    let online: Vec<(Uuid, Vec<Uuid>)> = online.into_iter().map(|a| (a.id, a.group_ids)).collect();
    assert_eq!(online, [(id, vec![b])]);

    // Present with no ids: every group again.
    record(updated("Ann Lee", Some(Vec::new()))).await;
    assert!(groups_of(&store, id).await.is_empty());
    record(updated("Ann", Some(vec![a]))).await;
    let live = agents::get(store.pool(), id).await.expect("get");

    // A rebuild from the events gives the same row.
    sqlx::query("TRUNCATE agents")
        .execute(store.pool())
        .await
        .expect("truncate");
    let mut conn = store.pool().acquire().await.expect("conn");
    for envelope in &envelopes {
        apply_config_event(&mut conn, envelope)
            .await
            .expect("rebuild");
    }
    assert_eq!(agents::get(store.pool(), id).await.expect("get"), live);
    assert_eq!(groups_of(&store, id).await, [a]);
}

#[tokio::test]
async fn a_group_id_that_is_not_a_uuid_is_refused_and_changes_nothing() {
    let (_db, store) = common::store().await;
    let id = Uuid::now_v7();
    let key = || StreamKey::new("agent", id);
    let first = store
        .record_config_event(key(), created("ann@example.com", 1), "c1", "test")
        .await
        .expect("create");
    let before = agents::get(store.pool(), id).await.expect("get");
    let bad = Event::AgentUpdated(AgentUpdated {
        email: "ann@example.com".into(),
        name: "Mallory".into(),
        channel_access: Vec::new(),
        groups: Some(AgentGroups {
            group_ids: vec![Uuid::now_v7().to_string(), "sales".into()],
        }),
    });
    let error = store
        .record_config_event(key(), bad, "c2", "test")
        .await
        .expect_err("a corrupt group id");
    assert!(error.to_string().contains("\"sales\""), "{error}");
    assert_eq!(agents::get(store.pool(), id).await.expect("get"), before);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(events, i64::try_from(first.len()).expect("small"));
}
