//! The agents read model: projection of agent events, token lookup, redelivery.

mod common;

use deskie_proto::events::{AgentCreated, AgentDisabled, AgentTokenRotated, AgentUpdated, Event};
use deskie_store::StreamKey;
use deskie_store::read_models::{agents, apply_config_event};
use uuid::Uuid;

fn created(email: &str, token: u8) -> Event {
    Event::AgentCreated(AgentCreated {
        email: email.into(),
        name: "Ann".into(),
        channel_access: vec!["live_chat".into()],
        token_sha256: vec![token; 32],
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
            }),
        ),
        (
            a,
            Event::AgentUpdated(AgentUpdated {
                email: "x@example.com".into(),
                name: "A".into(),
                channel_access: Vec::new(),
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
