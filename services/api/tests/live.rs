//! `GET /api/v1/stream`: case events relayed from the event store reach agents as
//! server-sent events, resumable with `Last-Event-ID`.

mod common;

use std::time::Duration;

use deskie_proto::events::{Event, NotificationRequested};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use common::{TestApp, assigned, customer_says, spawn_app};
use deskie_testkit::{Sse, SseReader};

/// Long enough for the relay (polling every 20 ms) and the consumer, on a busy machine.
const WAIT: Duration = Duration::from_secs(10);

async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = app.with_token(token, Method::GET, "/api/v1/stream");
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    request.send().await.expect("request")
}

async fn stream(app: &TestApp, token: &str, last_event_id: Option<&str>) -> SseReader {
    let response = open(app, token, last_event_id).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some("text/event-stream")
    );
    SseReader::new(response, WAIT)
}

async fn live_chat_agent(app: &TestApp, email: &str) -> (Uuid, String) {
    let agent = app.create_agent(email, &["live_chat"]).await;
    let id = agent["id"].as_str().expect("id").parse().expect("uuid");
    (id, agent["token"].as_str().expect("token").to_owned())
}

/// An app with a relay, a group, and a Live Chat agent's token.
async fn watched_app() -> (TestApp, String, Uuid) {
    let app = spawn_app().await;
    app.start_relay();
    let (_, token) = live_chat_agent(&app, "ann@example.com").await;
    let group = app.create_group("Support").await;
    (app, token, group)
}

fn sound() -> Event {
    Event::NotificationRequested(NotificationRequested {
        notification_id: Uuid::now_v7().to_string(),
        kind: "sound".into(),
        sound: Some("bell".into()),
        rule_id: Some(Uuid::now_v7().to_string()),
        ..Default::default()
    })
}

#[tokio::test]
async fn a_stream_receives_case_events_as_they_are_relayed() {
    let (app, token, group) = watched_app().await;
    let mut live = stream(&app, &token, None).await;

    let case = app.open_case(group, "chat-1").await;
    app.record_case(
        case,
        vec![
            customer_says("Where is my parcel?")
                .at(1_700_000_000)
                .into(),
        ],
    )
    .await;

    let first = live.next().await;
    assert_eq!(first.event, "case_opened");
    assert_eq!(first.data["type"], "case_opened");
    assert_eq!(first.data["case_id"], case.to_string());
    assert_eq!(first.data["version"], 1);
    assert_eq!(first.data["data"]["group_id"], group.to_string());
    let second = live.next().await;
    assert_eq!(second.event, "customer_message_received");
    assert_eq!(second.data["version"], 2);
    assert_eq!(second.data["data"]["text"], "Where is my parcel?");
    assert!(second.id > first.id, "ids are stream sequences");
}

#[tokio::test]
async fn last_event_id_resumes_right_after_it_without_gaps_or_duplicates() {
    let (app, token, group) = watched_app().await;
    let mut live = stream(&app, &token, None).await;
    let case = app.open_case(group, "chat-1").await;
    for n in 0..4 {
        app.record_case(
            case,
            vec![customer_says(&format!("message {n}")).at(n).into()],
        )
        .await;
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(live.next().await);
    }
    let last = seen.last().expect("three events").id;
    drop(live);

    // While disconnected, more happens.
    for n in 4..6 {
        app.record_case(
            case,
            vec![customer_says(&format!("message {n}")).at(n).into()],
        )
        .await;
    }
    let mut resumed = stream(&app, &token, Some(&last.to_string())).await;
    let mut versions = Vec::new();
    for _ in 0..4 {
        let event = resumed.next().await;
        assert!(event.id > last, "nothing at or before {last}: {event:?}");
        versions.push(event.data["version"].as_u64().expect("version"));
    }
    assert_eq!(versions, [4, 5, 6, 7], "the rest, in order, once");
    assert!(
        resumed
            .next_within(Duration::from_millis(500))
            .await
            .is_none(),
        "no duplicates"
    );
}

#[tokio::test]
async fn an_agent_without_live_chat_access_is_refused_and_a_bad_last_event_id_named() {
    let app = spawn_app().await;
    let outsider = app.create_agent("out@example.com", &[]).await;
    let response = open(&app, outsider["token"].as_str().expect("token"), None).await;
    assert_eq!(response.status(), 403);
    let response = open(&app, "not-a-token", None).await;
    assert_eq!(response.status(), 401);

    let (_, token) = live_chat_agent(&app, "ann@example.com").await;
    for bad in ["abc", "-1", "9999999"] {
        let response = open(&app, &token, Some(bad)).await;
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["field"], "Last-Event-ID", "{bad}");
    }
}

#[tokio::test]
async fn a_sound_reaches_only_the_assignee_or_everyone_on_an_unassigned_case() {
    let app = spawn_app().await;
    app.start_relay();
    let (ann, ann_token) = live_chat_agent(&app, "ann@example.com").await;
    let (_, bob_token) = live_chat_agent(&app, "bob@example.com").await;
    let group = app.create_group("Support").await;
    let mut ann_live = stream(&app, &ann_token, None).await;
    let mut bob_live = stream(&app, &bob_token, None).await;

    let case = app.open_case(group, "chat-1").await;
    app.record_case(case, vec![assigned(ann).into(), sound()])
        .await;
    app.record_case(case, vec![customer_says("hello?").at(1).into()])
        .await;
    let unassigned = app.open_case(group, "chat-2").await;
    app.record_case(unassigned, vec![sound()]).await;

    // Each case's events in its order; the relay keeps order per case, not across cases.
    let of_case = |events: &[Sse], case: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.data["case_id"] == case)
            .map(|e| e.event.clone())
            .collect()
    };
    let (case, unassigned) = (case.to_string(), unassigned.to_string());
    let ann_events = ann_live.take(6).await;
    let bob_events = bob_live.take(5).await;
    assert_eq!(
        of_case(&ann_events, &case),
        [
            "case_opened",
            "case_assigned",
            "sound",
            "customer_message_received"
        ]
    );
    assert_eq!(
        of_case(&bob_events, &case),
        ["case_opened", "case_assigned", "customer_message_received"],
        "the assignee's sound reaches only the assignee"
    );
    for events in [&ann_events, &bob_events] {
        assert_eq!(of_case(events, &unassigned), ["case_opened", "sound"]);
    }
    let heard = ann_events
        .iter()
        .find(|e| e.event == "sound" && e.data["case_id"] == case.as_str())
        .expect("ann's sound");
    assert_eq!(heard.data["data"]["sound"], "bell");
    assert_eq!(heard.data["data"]["kind"], "sound");
}

#[tokio::test]
async fn a_disabled_agents_stream_stops_and_every_stream_ends_on_shutdown() {
    let app = spawn_app().await;
    app.start_relay();
    let (ann, ann_token) = live_chat_agent(&app, "ann@example.com").await;
    let mut ann_live = stream(&app, &ann_token, None).await;
    let mut admin_live = stream(&app, common::ADMIN_TOKEN, None).await;
    let disabled = app
        .patch(&format!("/api/v1/agents/{ann}"), &json!({"disabled": true}))
        .await;
    assert_eq!(disabled.status(), 200);
    let group = app.create_group("Support").await;
    let case = app.open_case(group, "chat-1").await;

    assert_eq!(admin_live.next().await.data["case_id"], case.to_string());
    assert!(
        ann_live.next_within(WAIT).await.is_none(),
        "a disabled agent gets nothing more"
    );
    assert!(ann_live.ends_within(WAIT).await, "its stream ended");

    app.stop();
    assert!(
        admin_live.ends_within(Duration::from_secs(5)).await,
        "ended at once, not after the 10 s grace period"
    );
}
