//! The rules read model: projection of rule events, evaluation order, redelivery, deletion.

mod common;

use deskie_proto::events::{Event, RuleCreated, RuleDeleted, RuleSecret, RuleUpdated};
use deskie_store::StreamKey;
use deskie_store::read_models::{apply_config_event, rules};
use serde_json::{Value, json};
use uuid::Uuid;

fn spec(name: &str, trigger: &str, position: i64, enabled: bool) -> Value {
    json!({
        "name": name, "trigger": trigger, "enabled": enabled, "position": position,
        "stop_processing": false, "conditions": {"all": [], "any": []},
        "actions": [{"type": "play_sound", "sound": "bell"},
                    {"type": "notify_slack", "webhook_url": "", "text": "New case"}],
        "note": "a key a newer version wrote",
    })
}

fn created(spec: &Value, secret: &[u8]) -> Event {
    Event::RuleCreated(RuleCreated {
        spec_json: spec.to_string(),
        secrets: vec![RuleSecret {
            path: "actions[1].webhook_url".into(),
            encrypted: secret.to_vec(),
        }],
    })
}

async fn record(
    store: &deskie_store::Store,
    id: Uuid,
    event: Event,
) -> Vec<deskie_proto::events::Envelope> {
    store
        .record_config_event(StreamKey::new("rule", id), event, "cause", "test")
        .await
        .expect("record")
}

#[tokio::test]
async fn rules_are_listed_by_trigger_then_position_and_served_per_trigger() {
    let (_db, store) = common::store().await;
    let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    let rules_in = [
        (ids[0], spec("late", "case_created", 5, true)),
        (ids[1], spec("update", "case_updated", 0, true)),
        (ids[2], spec("early", "case_created", 1, true)),
        (ids[3], spec("off", "case_created", 0, false)),
    ];
    for (id, spec) in &rules_in {
        record(&store, *id, created(spec, b"sealed")).await;
    }
    let names = |rules: Vec<rules::StoredRule>| -> Vec<String> {
        rules.into_iter().map(|r| r.name).collect()
    };
    let listed = rules::list(store.pool()).await.expect("list");
    assert_eq!(names(listed), ["off", "early", "late", "update"]);
    let created_rules = rules::enabled_for_trigger(store.pool(), "case_created")
        .await
        .expect("enabled");
    assert_eq!(names(created_rules.clone()), ["early", "late"]);
    let early = &created_rules[0];
    assert_eq!(early.id, ids[2]);
    assert_eq!((early.version, early.position, early.enabled), (1, 1, true));
    assert_eq!(early.spec["note"], "a key a newer version wrote");
    assert_eq!(early.spec["actions"][1]["webhook_url"], "");
    assert_eq!(early.secret("actions[1].webhook_url"), Some(&b"sealed"[..]));
    assert_eq!(early.secret("actions[0].webhook_url"), None);
    let revealed = early
        .spec_with_secrets(|path, sealed| {
            Ok::<_, ()>(format!("{path}={}", String::from_utf8_lossy(sealed)))
        })
        .expect("reveal");
    assert_eq!(
        revealed["actions"][1]["webhook_url"],
        "actions[1].webhook_url=sealed"
    );
    assert!(!format!("{early:?}").contains("sealed"));
    let updates = rules::enabled_for_trigger(store.pool(), "case_updated")
        .await
        .expect("enabled");
    assert_eq!(names(updates), ["update"]);
}

#[tokio::test]
async fn updates_replace_the_rule_redeliveries_change_nothing_and_deleted_rules_stay_gone() {
    let (_db, store) = common::store().await;
    let id = Uuid::now_v7();
    let first = record(
        &store,
        id,
        created(&spec("one", "case_created", 1, true), b"a"),
    )
    .await;
    let mut changed = spec("two", "case_updated", 7, true);
    changed["actions"] = json!([{"type": "play_sound", "sound": "chime"}]);
    record(
        &store,
        id,
        Event::RuleUpdated(RuleUpdated {
            spec_json: changed.to_string(),
            secrets: Vec::new(),
        }),
    )
    .await;

    let mut conn = store.pool().acquire().await.expect("conn");
    for envelope in &first {
        apply_config_event(&mut conn, envelope)
            .await
            .expect("reapply");
    }
    let rule = rules::get(store.pool(), id)
        .await
        .expect("get")
        .expect("rule");
    assert_eq!((rule.version, rule.name.as_str()), (2, "two"));
    assert_eq!((rule.trigger.as_str(), rule.position), ("case_updated", 7));
    assert!(rule.secrets.is_empty());
    assert_eq!(rule.spec, changed);

    record(&store, id, Event::RuleDeleted(RuleDeleted {})).await;
    for envelope in &first {
        apply_config_event(&mut conn, envelope)
            .await
            .expect("reapply");
    }
    assert!(rules::get(store.pool(), id).await.expect("get").is_none());
    assert!(rules::list(store.pool()).await.expect("list").is_empty());
    let updates = rules::enabled_for_trigger(store.pool(), "case_updated")
        .await
        .expect("enabled");
    assert!(updates.is_empty());
}
