//! Agents' customer edits reach Chatra's client card; replies and mirrored messages teach
//! which Chatra agent a Deskie agent is.

mod common;

use std::time::Duration;

use common::{CLIENT_ID, Harness, PUBLIC_KEY, SECRET_KEY, eventually, harness, quiet_harness};
use deskie_agent_sync::{CaseEvents, ClientUpdateSender};
use deskie_bus::consumer::{Delivery, Handler, HandlerError};
use deskie_chatra::ChatraClient;
use deskie_proto::Message;
use deskie_proto::events::{AgentDisabled, CustomerDataChanged, Envelope, Event, OptionalText};
use deskie_store::case_consumer::CaseEventHandler;
use deskie_store::client_updates::{self, ClientUpdate};
use deskie_store::read_models::agent_links;
use deskie_testkit::Fault;
use deskie_testkit::case_events::{self, agent_says};
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);
const CLIENTS: &str = "/clients/k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s";

fn text(value: Option<&str>) -> Option<OptionalText> {
    Some(OptionalText {
        value: value.map(str::to_owned),
    })
}

fn agent_edit(name: Option<Option<&str>>, phone: Option<Option<&str>>) -> Event {
    Event::CustomerDataChanged(CustomerDataChanged {
        name: name.and_then(text),
        phone: phone.and_then(text),
        source: "agent".into(),
        agent_id: Some(Uuid::now_v7().to_string()),
        ..Default::default()
    })
}

/// A reply of `agent`, delivered as the Chatra agent `chatra_agent`.
fn delivered(agent: Uuid, chatra_agent: &str) -> Event {
    case_events::delivered(Uuid::now_v7())
        .by(agent, chatra_agent)
        .into()
}

/// A message the Chatra agent `chatra_agent` (with `email`) wrote in Chatra.
fn mirrored(chatra_agent: &str, email: Option<&str>) -> Event {
    agent_says(&format!("typed in Chatra by {chatra_agent}"))
        .chatra_agent(chatra_agent)
        .email(email)
        .into()
}

fn links_recorded(types: &[String]) -> usize {
    types.iter().filter(|t| *t == "agent_chatra_linked").count()
}

/// The links in the agent's stream once agent-sync acted on every event of `case` so far
/// (a barrier), so "no more than" is checked too.
async fn links_of(h: &Harness, agent: Uuid, case: Uuid) -> usize {
    h.barrier(case).await;
    links_recorded(&h.stream_types(agent).await)
}

/// Waits until the agent edits of `case` up to version `up_to` are done with (sent or
/// given up) and none is due.
async fn edits_settled(h: &Harness, case: Uuid, up_to: u64) -> ClientUpdate {
    eventually("the customer edits to settle", || async {
        let row = client_updates::get(h.store.pool(), case)
            .await
            .expect("read")?;
        (row.sent_up_to >= up_to && row.sent_up_to >= row.due_up_to).then_some(row)
    })
    .await
}

#[tokio::test]
async fn an_agents_customer_edit_is_one_put_with_only_the_changed_fields() {
    let h = harness(Duration::from_secs(60)).await;
    let case = h.open_case().await;
    h.case_events(case, vec![agent_edit(Some(Some("Ann Lee")), Some(None))])
        .await;
    let puts = h.wait_for(1, WAIT, || h.requests_to(CLIENTS).len()).await;
    assert_eq!(puts, 1);
    // A change that came from Chatra is not sent back.
    h.case_events(
        case,
        vec![Event::CustomerDataChanged(CustomerDataChanged {
            email: text(Some("ann@example.com")),
            source: "chatra".into(),
            ..Default::default()
        })],
    )
    .await;
    // Acted on, and nothing left due: no PUT can follow.
    h.barrier(case).await;
    let row = client_updates::get(h.store.pool(), case)
        .await
        .expect("read")
        .expect("the case's row");
    assert!(row.due_up_to <= row.sent_up_to, "{row:?}");
    let puts = h.requests_to(CLIENTS);
    assert_eq!(puts.len(), 1, "exactly one PUT");
    assert_eq!(puts[0].method, "PUT");
    assert_eq!(
        puts[0].authorization.as_deref(),
        Some(format!("Chatra.Simple {PUBLIC_KEY}:{SECRET_KEY}").as_str())
    );
    assert_eq!(puts[0].body, json!({"name": "Ann Lee", "phone": null}));
    assert!(CLIENTS.ends_with(CLIENT_ID));
}

#[tokio::test]
async fn a_503_is_retried_and_the_edit_then_arrives() {
    let h = harness(Duration::from_secs(60)).await;
    let case = h.open_case().await;
    h.chatra.fail_next(Fault::Status(503, Some(1)));
    let edit = h
        .case_events(case, vec![agent_edit(None, Some(Some("+34 600")))])
        .await;
    let puts = h.wait_for(2, WAIT, || h.requests_to(CLIENTS).len()).await;
    assert_eq!(puts, 2, "refused once, then sent again");
    let puts = h.requests_to(CLIENTS);
    assert!(
        puts[1].at.duration_since(puts[0].at) >= Duration::from_millis(900),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(puts[1].body, json!({"phone": "+34 600"}));
    edits_settled(&h, case, edit[0].version).await;
    assert_eq!(h.requests_to(CLIENTS).len(), 2, "nothing after the success");
}

#[tokio::test]
async fn edits_refused_with_503_then_429_arrive_once_in_order_with_a_later_edit() {
    let h = harness(Duration::from_secs(60)).await;
    let case = h.open_case().await;
    h.chatra
        .fail_next(Fault::Status(503, Some(1)))
        .fail_next(Fault::Status(429, Some(1)));
    h.case_events(
        case,
        vec![agent_edit(Some(Some("Ann")), Some(Some("+34 600")))],
    )
    .await;
    h.wait_for(1, WAIT, || h.requests_to(CLIENTS).len()).await;
    // A newer edit of the name while the first one waits for its retry.
    let newer = h
        .case_events(case, vec![agent_edit(Some(Some("Ann Lee")), None)])
        .await;
    let row = edits_settled(&h, case, newer[0].version).await;
    assert_eq!((row.failures, row.last_error), (0, None));
    let puts = h.requests_to(CLIENTS);
    assert_eq!(puts.len(), 3, "503, 429, then the one that went through");
    for pair in puts.windows(2) {
        assert!(
            pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(900),
            "Retry-After: 1 was honoured"
        );
    }
    assert_eq!(
        puts[2].body,
        json!({"name": "Ann Lee", "phone": "+34 600"}),
        "the newer name, never the older one after it"
    );
    assert_eq!(h.metrics.client_updates("sent"), 1);
    assert_eq!(h.metrics.client_updates("retried"), 2);
}

#[tokio::test]
async fn a_rejected_edit_is_given_up_and_the_next_one_still_goes() {
    let h = harness(Duration::from_secs(60)).await;
    let case = h.open_case().await;
    h.chatra.fail_next(Fault::Status(400, None));
    let bad = h
        .case_events(case, vec![agent_edit(Some(Some("Bad")), None)])
        .await;
    edits_settled(&h, case, bad[0].version).await;
    assert_eq!(h.requests_to(CLIENTS).len(), 1, "a 400 is not retried");
    h.case_events(case, vec![agent_edit(Some(Some("Good")), None)])
        .await;
    h.wait_for(2, WAIT, || h.requests_to(CLIENTS).len()).await;
    let puts = h.requests_to(CLIENTS);
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[1].body, json!({"name": "Good"}));
}

#[tokio::test]
async fn a_delivery_links_the_agent_once_and_a_new_chatra_id_relinks() {
    let h = harness(Duration::from_secs(60)).await;
    let ann = h.agent("ann@example.com", &["live_chat"]).await;
    let case = h.open_case().await;
    h.case_events(case, vec![delivered(ann, "A1")]).await;
    assert_eq!(links_of(&h, ann, case).await, 1);
    // The next reply as the same Chatra agent records nothing.
    h.case_events(case, vec![delivered(ann, "A1")]).await;
    assert_eq!(links_of(&h, ann, case).await, 1);
    let link = agent_links::get(h.store.pool(), h.integration, "A1")
        .await
        .expect("get")
        .expect("link");
    assert_eq!(
        (link.agent_id, link.learnt_from.as_str()),
        (ann, "delivery")
    );
    assert_eq!(link.case_id, Some(case));

    h.case_events(case, vec![delivered(ann, "A2")]).await;
    assert_eq!(links_of(&h, ann, case).await, 2);
    assert!(
        agent_links::get(h.store.pool(), h.integration, "A1")
            .await
            .expect("get")
            .is_none(),
        "the old Chatra id is no longer Ann"
    );
}

#[tokio::test]
async fn a_mirrored_message_links_the_enabled_agent_with_that_email() {
    let h = harness(Duration::from_secs(60)).await;
    let ann = h.agent("ann@example.com", &["live_chat"]).await;
    let gone = h.agent("gone@example.com", &["live_chat"]).await;
    h.agent_event(gone, Event::AgentDisabled(AgentDisabled {}))
        .await;
    let case = h.open_case().await;
    h.case_events(
        case,
        vec![
            mirrored("A1", Some("ANN@example.com")),
            mirrored("G1", Some("gone@example.com")),
            mirrored("S1", Some("stranger@example.com")),
            mirrored("N1", None),
        ],
    )
    .await;
    assert_eq!(links_of(&h, ann, case).await, 1);
    let link = agent_links::get(h.store.pool(), h.integration, "A1")
        .await
        .expect("get")
        .expect("link");
    assert_eq!(
        (link.agent_id, link.learnt_from.as_str()),
        (ann, "mirrored_message")
    );
    assert_eq!(links_recorded(&h.stream_types(gone).await), 0, "disabled");
    for chatra in ["G1", "S1", "N1"] {
        assert!(
            agent_links::get(h.store.pool(), h.integration, chatra)
                .await
                .expect("get")
                .is_none(),
            "{chatra}"
        );
    }
}

/// A customer-edit sender calling the harness's Chatra stand-in, and its queue.
fn sender_of(h: &Harness) -> (ClientUpdateSender, deskie_agent_sync::Wake) {
    ClientUpdateSender::new(
        h.store.clone(),
        ChatraClient::new(h.chatra.base_url(), h.config.http_client()),
        h.cipher.clone(),
        h.config.chatra_timeout,
        h.metrics.clone(),
    )
}

#[tokio::test]
async fn an_edit_never_delivered_reaches_chatra_with_the_cases_next_event() {
    let h = quiet_harness().await;
    let (sender, queue) = sender_of(&h);
    tokio::spawn(sender.run(h.shutdown()));
    let handler = CaseEventHandler::new(
        h.store.clone(),
        h.bus.topology().clone(),
        CaseEvents::new(h.store.clone(), h.metrics.clone(), queue),
    );
    let ann = h.agent("ann@example.com", &["live_chat"]).await;
    let case = h.open_case().await;
    let edit = h
        .case_events(case, vec![agent_edit(Some(Some("Ann Lee")), None)])
        .await;
    let reply = h.case_events(case, vec![delivered(ann, "A1")]).await;

    // The edit was dead-lettered (or expired): the case's next wanted event arrives.
    handler
        .handle(&delivery_of(&reply[0], 1))
        .await
        .expect("the delivery");
    let puts = h.wait_for(1, WAIT, || h.requests_to(CLIENTS).len()).await;
    assert_eq!(puts, 1, "the missed edit was sent");
    assert_eq!(h.requests_to(CLIENTS)[0].body, json!({"name": "Ann Lee"}));
    assert_eq!(
        links_recorded(&h.stream_types(ann).await),
        1,
        "and the link learnt"
    );

    // The dead letter redriven, the delivery redelivered: nothing more.
    for envelope in [&edit[0], &reply[0]] {
        handler
            .handle(&delivery_of(envelope, 2))
            .await
            .expect("again");
    }
    edits_settled(&h, case, edit[0].version).await;
    assert_eq!(h.requests_to(CLIENTS).len(), 1);
    assert_eq!(links_recorded(&h.stream_types(ann).await), 1);
}

/// The handler itself, for redelivery and bad input: what JetStream would hand it.
fn delivery_of(envelope: &Envelope, delivered: i64) -> Delivery {
    Delivery {
        subject: "test".into(),
        payload: envelope.encode_to_vec().into(),
        headers: None,
        stream_sequence: 1,
        delivered,
    }
}

#[tokio::test]
async fn a_redelivered_event_records_the_link_once_and_bad_input_changes_nothing() {
    let h = harness(Duration::from_secs(60)).await;
    let ann = h.agent("ann@example.com", &["live_chat"]).await;
    let case = h.open_case().await;
    h.case_events(case, vec![mirrored("A1", Some("ann@example.com"))])
        .await;
    assert_eq!(links_of(&h, ann, case).await, 1);
    let (_, queue) = sender_of(&h);
    let handler = CaseEventHandler::new(
        h.store.clone(),
        h.bus.topology().clone(),
        CaseEvents::new(h.store.clone(), h.metrics.clone(), queue),
    );
    let stored = h.store.load_stream(case).await.expect("case");
    let event = &stored.last().expect("mirrored").envelope;
    for attempt in 2..4 {
        handler
            .handle(&delivery_of(event, attempt))
            .await
            .expect("redelivery is fine");
    }
    assert_eq!(links_recorded(&h.stream_types(ann).await), 1);

    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(h.store.pool())
        .await
        .expect("count");
    let garbage = Delivery {
        payload: bytes_of(b"\xff\x00not protobuf"),
        ..delivery_of(event, 1)
    };
    match handler.handle(&garbage).await {
        Err(HandlerError::Poison { reason }) => {
            assert!(
                reason.contains("not a deskie.events.v1.Envelope"),
                "{reason}"
            );
        }
        other => panic!("expected poison, got {other:?}"),
    }
    let mut bad_id = event.clone();
    bad_id.stream_id = "not-a-uuid".into();
    match handler.handle(&delivery_of(&bad_id, 1)).await {
        Err(HandlerError::Poison { reason }) => assert!(reason.contains("not a UUID"), "{reason}"),
        other => panic!("expected poison, got {other:?}"),
    }
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(h.store.pool())
        .await
        .expect("count");
    assert_eq!(events_before, events_after);
    assert!(h.requests_to(CLIENTS).is_empty());
}

fn bytes_of(raw: &[u8]) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(raw)
}
