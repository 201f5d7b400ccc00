//! `assign_round_robin` against real PostgreSQL and NATS, with the relay: a case of group A
//! goes only to the online Live Chat agents of A and to those without groups, evenly;
//! offline agents, agents of other groups and agents without Live Chat access get none;
//! with nobody eligible online the case stays unassigned, and why the rule fired is still
//! recorded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use deskie_config::Cipher;
use deskie_proto::events::{
    AgentCreated, AgentGroups, AgentStatusChanged, AgentUpdated, Event, GroupCreated, RuleCreated,
};
use deskie_rules::RulesMetrics;
use deskie_store::relay::{Relay, RelayConfig};
use deskie_store::startup::Backing;
use deskie_store::{Cause, Store, StreamKey};
use deskie_testkit::case_events::opened;
use deskie_testkit::{TestDb, TestNats, record_case_as};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Harness {
    store: Store,
    shutdown: CancellationToken,
    _db: TestDb,
    _nats: TestNats,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The relay and rules, with one rule: every new case → `assign_round_robin`.
async fn harness() -> Harness {
    let db = TestDb::create().await;
    let nats = TestNats::new();
    let Backing { store, bus, .. } =
        Backing::open(db.url(), nats.url(), nats.prefix(), "rules-test")
            .await
            .expect("store and bus");
    bus.provision().await.expect("provision");
    let shutdown = CancellationToken::new();
    let relay = Relay::new(store.url(), bus.clone(), RelayConfig::default());
    tokio::spawn(relay.run(shutdown.clone()));
    let spec = r#"{"name": "Spread", "trigger": "case_created",
                   "actions": [{"type": "assign_round_robin"}]}"#;
    store
        .record_config_event(
            StreamKey::new("rule", Uuid::now_v7()),
            Event::RuleCreated(RuleCreated {
                spec_json: spec.into(),
                secrets: Vec::new(),
            }),
            "test",
            "api",
        )
        .await
        .expect("rule");
    tokio::spawn(deskie_rules::run(
        Cipher::from_key_bytes(&[7; 32]),
        store.clone(),
        bus,
        RulesMetrics::new().expect("metrics"),
        shutdown.clone(),
    ));
    Harness {
        store,
        shutdown,
        _db: db,
        _nats: nats,
    }
}

impl Harness {
    async fn config(&self, stream_type: &'static str, id: Uuid, event: Event) {
        self.store
            .record_config_event(StreamKey::new(stream_type, id), event, "test", "api")
            .await
            .expect("config event");
    }

    async fn group(&self, name: &str) -> Uuid {
        let id = Uuid::now_v7();
        let event = Event::GroupCreated(GroupCreated { name: name.into() });
        self.config("group", id, event).await;
        id
    }

    /// A new agent with `channels` and `groups`, online when `online`.
    async fn agent(&self, channels: &[&str], groups: &[Uuid], online: bool) -> Uuid {
        let id = Uuid::now_v7();
        let created = Event::AgentCreated(AgentCreated {
            email: format!("{id}@example.com"),
            name: "Agent".into(),
            channel_access: channels.iter().map(|c| (*c).to_owned()).collect(),
            token_sha256: id.as_bytes().repeat(2),
            group_ids: groups.iter().map(Uuid::to_string).collect(),
        });
        self.config("agent", id, created).await;
        if online {
            self.set_status(id, "online").await;
        }
        id
    }

    async fn set_status(&self, id: Uuid, status: &str) {
        let event = Event::AgentStatusChanged(AgentStatusChanged {
            status: status.into(),
        });
        self.config("agent", id, event).await;
    }

    /// A new Live Chat case in `group`, as routing opens one; its id.
    async fn open_case(&self, group: Uuid) -> Uuid {
        let case_id = Uuid::now_v7();
        let opened = opened().in_group(group).chat(&format!("chat-{case_id}"));
        let webhook = format!("webhook-{case_id}");
        let routing = Cause::new_chain(&webhook, "routing");
        record_case_as(&self.store, case_id, &routing, vec![opened.into()]).await;
        case_id
    }

    /// Waits (up to 20 s) until rules recorded `rule_fired` on `case`; then its assignee.
    async fn assignee_once_fired(&self, case: Uuid) -> Option<Uuid> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let events: Vec<Event> = self
                .store
                .load_stream(case)
                .await
                .expect("load")
                .into_iter()
                .filter_map(|stored| stored.envelope.event)
                .collect();
            if events.iter().any(|e| matches!(e, Event::RuleFired(_))) {
                return events.iter().rev().find_map(|e| match e {
                    Event::CaseAssigned(assigned) => assigned
                        .assignee_id
                        .as_deref()
                        .and_then(|id| id.parse().ok()),
                    _ => None,
                });
            }
            assert!(
                Instant::now() < deadline,
                "rules never fired on {case}: {events:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens `n` cases of `group` at once; who got each (`None`: nobody).
    async fn spread(&self, group: Uuid, n: usize) -> BTreeMap<Option<Uuid>, usize> {
        let mut opened = Vec::with_capacity(n);
        for _ in 0..n {
            opened.push(self.open_case(group).await);
        }
        let mut counts = BTreeMap::new();
        for case in opened {
            *counts
                .entry(self.assignee_once_fired(case).await)
                .or_insert(0) += 1;
        }
        counts
    }
}

#[tokio::test]
async fn a_groups_cases_go_evenly_to_its_online_agents_and_to_agents_without_groups() {
    let h = harness().await;
    let (a, b, c) = (h.group("A").await, h.group("B").await, h.group("C").await);
    let a1 = h.agent(&["live_chat"], &[a], true).await;
    let a2 = h.agent(&["live_chat"], &[b, a], true).await;
    let everywhere = h.agent(&["live_chat"], &[], true).await;
    let b_only = h.agent(&["live_chat"], &[b], true).await;
    let a_offline = h.agent(&["live_chat"], &[a], false).await;
    let a_no_access = h.agent(&[], &[a], true).await;

    let counts = h.spread(a, 12).await;
    let expected: BTreeMap<Option<Uuid>, usize> =
        [(Some(a1), 4), (Some(a2), 4), (Some(everywhere), 4)].into();
    assert_eq!(
        counts, expected,
        "group A: 4 each for A's two online agents and the one without groups; none for \
         B's agent ({b_only}), the offline one ({a_offline}) or the one without access \
         ({a_no_access})"
    );

    let counts = h.spread(b, 6).await;
    let expected: BTreeMap<Option<Uuid>, usize> =
        [(Some(a2), 2), (Some(everywhere), 2), (Some(b_only), 2)].into();
    assert_eq!(counts, expected, "group B has a rotation of its own");

    // C has no members: only the agent without groups; once they are offline, nobody.
    assert_eq!(h.spread(c, 2).await, [(Some(everywhere), 2)].into());
    h.set_status(everywhere, "offline").await;
    assert_eq!(
        h.spread(c, 2).await,
        [(None, 2)].into(),
        "nobody eligible online: unassigned (rule_fired still recorded)"
    );

    // Leaving group A (the membership edited, the agent still online) ends their A cases.
    let edited = Event::AgentUpdated(AgentUpdated {
        email: format!("{a1}@example.com"),
        name: "Agent".into(),
        channel_access: vec!["live_chat".into()],
        groups: Some(AgentGroups {
            group_ids: vec![b.to_string()],
        }),
    });
    h.config("agent", a1, edited).await;
    assert_eq!(h.spread(a, 2).await, [(Some(a2), 2)].into());
}
