//! What agent-sync reads and writes: agents' online status, and the Chatra agent links.

mod common;

use deskie_proto::events::{
    AgentChatraLinked, AgentCreated, AgentDisabled, AgentStatusChanged, AgentUpdated, Event,
};
use deskie_store::read_models::{agent_links, agents, apply_config_event};
use deskie_store::{Store, StreamKey};
use uuid::Uuid;

async fn agent(store: &Store, email: &str, channels: &[&str]) -> Uuid {
    let id = Uuid::now_v7();
    let created = Event::AgentCreated(AgentCreated {
        email: email.into(),
        name: email.into(),
        channel_access: channels.iter().map(|c| (*c).to_owned()).collect(),
        token_sha256: Uuid::new_v4().as_bytes().repeat(2),
        group_ids: Vec::new(),
    });
    store
        .record_config_event(StreamKey::new("agent", id), created, "c", "test")
        .await
        .expect("create");
    id
}

async fn record(store: &Store, id: Uuid, event: Event) -> Vec<deskie_proto::events::Envelope> {
    store
        .record_config_event(StreamKey::new("agent", id), event, "c", "test")
        .await
        .expect("record")
}

fn status(status: &str) -> Event {
    Event::AgentStatusChanged(AgentStatusChanged {
        status: status.into(),
    })
}

fn linked(integration: Uuid, chatra: &str, from: &str) -> Event {
    Event::AgentChatraLinked(AgentChatraLinked {
        integration_id: integration.to_string(),
        chatra_agent_id: chatra.into(),
        learnt_from: from.into(),
        case_id: Uuid::nil().to_string(),
    })
}

async fn online_ids(store: &Store) -> Vec<Uuid> {
    agents::online_with_access(store.pool(), "live_chat")
        .await
        .expect("online")
        .into_iter()
        .map(|a| a.id)
        .collect()
}

#[tokio::test]
async fn status_changes_project_and_only_enabled_online_agents_with_access_are_listed() {
    let (_db, store) = common::store().await;
    let ann = agent(&store, "ann@example.com", &["live_chat"]).await;
    let bob = agent(&store, "bob@example.com", &[]).await;
    let cid = agent(&store, "cid@example.com", &["live_chat"]).await;
    assert!(
        online_ids(&store).await.is_empty(),
        "everyone starts offline"
    );

    let online = record(&store, ann, status("online")).await;
    record(&store, bob, status("online")).await;
    record(&store, cid, status("online")).await;
    assert_eq!(
        online_ids(&store).await,
        [ann, cid],
        "bob has no live_chat access"
    );

    record(&store, cid, Event::AgentDisabled(AgentDisabled {})).await;
    let cid_row = agents::get(store.pool(), cid)
        .await
        .expect("get")
        .expect("cid");
    assert_eq!(
        cid_row.status, "offline",
        "disabling takes the agent offline"
    );
    assert_eq!(online_ids(&store).await, [ann]);

    record(&store, ann, status("offline")).await;
    assert!(online_ids(&store).await.is_empty());

    // A redelivered older status change changes nothing.
    let mut conn = store.pool().acquire().await.expect("conn");
    apply_config_event(&mut conn, &online[0])
        .await
        .expect("reapply");
    let ann_row = agents::get(store.pool(), ann)
        .await
        .expect("get")
        .expect("ann");
    assert_eq!((ann_row.status.as_str(), ann_row.version), ("offline", 3));

    // Losing access takes the agent off the list even while online.
    record(&store, ann, status("online")).await;
    let no_access = Event::AgentUpdated(AgentUpdated {
        email: "ann@example.com".into(),
        name: "Ann".into(),
        channel_access: Vec::new(),
        groups: None,
    });
    record(&store, ann, no_access).await;
    assert!(online_ids(&store).await.is_empty());
}

#[tokio::test]
async fn links_project_per_integration_and_a_new_chatra_id_replaces_the_old_one() {
    let (_db, store) = common::store().await;
    let ann = agent(&store, "ann@example.com", &["live_chat"]).await;
    let bob = agent(&store, "bob@example.com", &["live_chat"]).await;
    let (one, two) = (Uuid::now_v7(), Uuid::now_v7());

    let first = record(&store, ann, linked(one, "A1", "delivery")).await;
    record(&store, ann, linked(two, "X9", "mirrored_message")).await;
    let link = agent_links::get(store.pool(), one, "A1")
        .await
        .expect("get")
        .expect("link");
    assert_eq!(
        (link.agent_id, link.learnt_from.as_str()),
        (ann, "delivery")
    );
    assert_eq!(link.case_id, Some(Uuid::nil()));
    assert_eq!(
        agent_links::for_agent(store.pool(), ann)
            .await
            .expect("links")
            .len(),
        2
    );
    let ann_row = agents::get(store.pool(), ann)
        .await
        .expect("get")
        .expect("ann");
    assert_eq!(ann_row.version, 3, "links move the agent stream's version");

    // Ann's Chatra id in integration one changed: the old link goes.
    record(&store, ann, linked(one, "A2", "delivery")).await;
    assert!(
        agent_links::get(store.pool(), one, "A1")
            .await
            .expect("get")
            .is_none()
    );
    let found = agent_links::for_chatra_agents(store.pool(), one, &["A1".into(), "A2".into()])
        .await
        .expect("found");
    assert_eq!(
        found
            .iter()
            .map(|l| l.chatra_agent_id.as_str())
            .collect::<Vec<_>>(),
        ["A2"]
    );

    // The same Chatra agent is now Bob: the later link wins.
    record(&store, bob, linked(one, "A2", "mirrored_message")).await;
    let link = agent_links::get(store.pool(), one, "A2")
        .await
        .expect("get")
        .expect("link");
    assert_eq!(link.agent_id, bob);

    // Redelivering Ann's first link changes nothing: it is older than what is stored.
    let mut conn = store.pool().acquire().await.expect("conn");
    apply_config_event(&mut conn, &first[0])
        .await
        .expect("reapply");
    let link = agent_links::get(store.pool(), one, "A2")
        .await
        .expect("get")
        .expect("link");
    assert_eq!(link.agent_id, bob);
    assert!(
        agent_links::get(store.pool(), one, "A1")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        agent_links::for_chatra_agents(store.pool(), one, &[])
            .await
            .expect("none")
            .is_empty()
    );
}
