//! `POST /api/v1/cases/{id}/replies`: 202 with the message id, the message pending at once,
//! one `ReplyRequested` per reply (what outbound delivers); refusals name the field and
//! write nothing.

mod common;

use reqwest::Method;
use serde_json::{Value, json};

use common::spawn_app;

#[tokio::test]
async fn an_agents_reply_is_accepted_pending_and_queued_once() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let case = app.open_case(group, "chat-1").await;
    let agent = app.create_agent("tom@example.com", &["live_chat"]).await;
    let token = agent["token"].as_str().expect("token");

    let response = app
        .with_token(
            token,
            Method::POST,
            &format!("/api/v1/cases/{case}/replies"),
        )
        .json(&json!({ "text": "  Your parcel arrives tomorrow 📦  " }))
        .send()
        .await
        .expect("reply");
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("json");
    let message_id = accepted["message_id"]
        .as_str()
        .expect("message_id")
        .to_owned();

    let detail: Value = app
        .get(&format!("/api/v1/cases/{case}"))
        .await
        .json()
        .await
        .expect("json");
    let messages = detail["messages"].as_array().expect("messages");
    let reply = messages
        .iter()
        .find(|m| m["id"] == message_id.as_str())
        .expect("the reply is in the case");
    assert_eq!(reply["delivery"], "pending");
    assert_eq!(reply["author"], "agent");
    assert_eq!(reply["source"], "deskie");
    assert_eq!(reply["agent_id"], agent["id"]);
    assert_eq!(reply["text"], "Your parcel arrives tomorrow 📦");

    let history = app.store.load_stream(case).await.expect("history");
    let requested: Vec<_> = history
        .iter()
        .filter_map(|e| match &e.envelope.event {
            Some(deskie_proto::events::Event::ReplyRequested(r)) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(requested.len(), 1, "one ReplyRequested per reply");
    assert_eq!(requested[0].message_id, message_id);
    assert_eq!(requested[0].agent_id.as_deref(), agent["id"].as_str());
    assert_eq!(requested[0].source, "deskie");
}

#[tokio::test]
async fn refused_replies_name_the_field_and_change_nothing() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let case = app.open_case(group, "chat-1").await;
    let before = app.case_event_count(case).await;
    for body in [
        json!({}),
        json!({ "text": "   " }),
        json!({ "text": 42 }),
        json!({ "text": "x".repeat(5001) }),
    ] {
        let response = app
            .post(&format!("/api/v1/cases/{case}/replies"), &body)
            .await;
        assert_eq!(response.status(), 400, "{body}");
        let refusal: Value = response.json().await.expect("json");
        assert_eq!(refusal["field"], "text", "{refusal}");
    }
    assert_eq!(app.case_event_count(case).await, before);

    let unknown = app
        .post(
            &format!("/api/v1/cases/{}/replies", uuid::Uuid::new_v4()),
            &json!({ "text": "hi" }),
        )
        .await;
    assert_eq!(unknown.status(), 404);

    // An agent without Live Chat access cannot answer: 403, nothing queued.
    let outsider = app.create_agent("eve@example.com", &[]).await;
    let response = app
        .with_token(
            outsider["token"].as_str().expect("token"),
            Method::POST,
            &format!("/api/v1/cases/{case}/replies"),
        )
        .json(&json!({ "text": "hi" }))
        .send()
        .await
        .expect("reply");
    assert_eq!(response.status(), 403);
    assert_eq!(app.case_event_count(case).await, before);
}
