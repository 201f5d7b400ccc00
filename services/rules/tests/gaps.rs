//! A trigger rules never saw (dead-lettered, expired from the event window) is evaluated
//! before the next one of its case, from the event store, and only once.

use deskie_bus::Topology;
use deskie_bus::consumer::{Delivery, Handler};
use deskie_config::Cipher;
use deskie_proto::Message;
use deskie_proto::events::{Envelope, Event, ReplyRequested, RuleCreated};
use deskie_rules::{EvaluateRules, RulesMetrics};
use deskie_store::case_consumer::CaseEventHandler;
use deskie_store::{Store, StreamKey};
use deskie_testkit::case_events::{customer_says, opened};
use deskie_testkit::{TestDb, append_case};
use uuid::Uuid;

async fn store_with_greeting_rule() -> (TestDb, Store) {
    let db = TestDb::create().await;
    let store = Store::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    let spec = r#"{"name": "Greet", "trigger": "case_created",
                   "actions": [{"type": "reply", "text": "Welcome!"}]}"#;
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
    (db, store)
}

/// Appends `event` as routing would, but nothing evaluates or projects it yet.
async fn append(store: &Store, case_id: Uuid, event: Event) -> Envelope {
    let mut stored = append_case(store, case_id, vec![event]).await;
    stored.remove(0)
}

fn delivery_of(envelope: &Envelope) -> Delivery {
    Delivery {
        subject: format!("t.events.case.00.{}.x", envelope.stream_id),
        payload: envelope.encode_to_vec().into(),
        headers: None,
        stream_sequence: envelope.version,
        delivered: 1,
    }
}

async fn greetings(store: &Store, case_id: Uuid) -> Vec<ReplyRequested> {
    store
        .load_stream(case_id)
        .await
        .expect("stream")
        .into_iter()
        .filter_map(|e| match e.envelope.event {
            Some(Event::ReplyRequested(reply)) if reply.source == "rule" => Some(reply),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_case_created_trigger_never_delivered_still_greets_once() {
    let (_db, store) = store_with_greeting_rule().await;
    let case_id = Uuid::now_v7();
    let opened = append(&store, case_id, opened().into()).await;
    let message = append(&store, case_id, customer_says("hello?").into()).await;
    let handler = CaseEventHandler::new(
        store.clone(),
        Topology::new("t"),
        EvaluateRules::new(
            Cipher::from_key_bytes(&[7; 32]),
            RulesMetrics::new().expect("metrics"),
        ),
    );

    // `case_opened` was dead-lettered; the customer's message arrives.
    handler.handle(&delivery_of(&message)).await.expect("v2");
    let greeted = greetings(&store, case_id).await;
    assert_eq!(greeted.len(), 1, "the missed trigger was evaluated");
    assert_eq!(greeted[0].text, "Welcome!");

    // The dead letter redriven, and both redelivered: nothing more.
    handler.handle(&delivery_of(&opened)).await.expect("v1");
    handler
        .handle(&delivery_of(&message))
        .await
        .expect("v2 again");
    assert_eq!(greetings(&store, case_id).await.len(), 1);
}
