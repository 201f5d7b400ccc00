//! `PUT /api/v1/agents/me/status`: an agent goes online or offline.

mod common;

use reqwest::Method;
use serde_json::{Value, json};

use common::{ADMIN_TOKEN, TestApp, spawn_app};

const PATH: &str = "/api/v1/agents/me/status";

async fn put_status(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.with_token(token, Method::PUT, PATH)
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("json")
}

#[tokio::test]
async fn an_agent_goes_online_and_offline_and_only_changes_are_recorded() {
    let app = spawn_app().await;
    let agent = app.create_agent("ann@example.com", &["live_chat"]).await;
    let token = agent["token"].as_str().expect("token");

    let response = put_status(&app, token, &json!({"status": "online"})).await;
    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    assert_eq!(body["id"], agent["id"]);
    assert_eq!(body["status"], "online");
    assert!(
        body.get("token").is_none(),
        "the token is never shown again"
    );

    // Listed with its status, in the same shape as the answer.
    let listed = json_of(app.get("/api/v1/agents").await).await;
    assert_eq!(listed[0], body);

    // The same status again records nothing.
    let again = put_status(&app, token, &json!({"status": "online"})).await;
    assert_eq!(again.status(), 200);
    assert_eq!(json_of(again).await["status"], "online");
    let offline = put_status(&app, token, &json!({"status": "offline"})).await;
    assert_eq!(json_of(offline).await["status"], "offline");
    assert_eq!(
        app.event_types().await,
        [
            "agent_created",
            "agent_status_changed",
            "agent_status_changed"
        ]
    );
}

#[tokio::test]
async fn the_admin_has_no_status_and_gets_403() {
    let app = spawn_app().await;
    app.create_agent("ann@example.com", &["live_chat"]).await;
    for body in [json!({"status": "online"}), json!("not even an object")] {
        let response = put_status(&app, ADMIN_TOKEN, &body).await;
        assert_eq!(response.status(), 403, "{body}");
        let refusal = json_of(response).await;
        let message = refusal["error"].as_str().unwrap_or_default();
        assert!(message.contains("agent's own token"), "{message}");
    }
    let unauthenticated = app
        .client
        .put(format!("{}{PATH}", app.address))
        .json(&json!({"status": "online"}))
        .send()
        .await
        .expect("request");
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(app.event_types().await, ["agent_created"]);
}

#[tokio::test]
async fn a_bad_or_missing_status_is_refused_naming_the_field_and_stores_nothing() {
    let app = spawn_app().await;
    let agent = app.create_agent("ann@example.com", &["live_chat"]).await;
    let token = agent["token"].as_str().expect("token");
    for (body, field) in [
        (json!({}), "status"),
        (json!({"status": null}), "status"),
        (json!({"status": "away"}), "status"),
        (json!({"status": ["online"]}), "status"),
        (json!({"state": "online"}), "status"),
        (json!(["online"]), "body"),
    ] {
        let response = put_status(&app, token, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let refusal = json_of(response).await;
        assert_eq!(refusal["field"], field, "{body}: {refusal}");
        let message = refusal["error"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{message}");
    }
    let raw = app
        .with_token(token, Method::PUT, PATH)
        .header("Content-Type", "application/json")
        .body("{\"status\": ")
        .send()
        .await
        .expect("request");
    assert_eq!(raw.status(), 400);
    assert_eq!(app.event_types().await, ["agent_created"]);
    let listed = json_of(app.get("/api/v1/agents").await).await;
    assert_eq!(listed[0]["status"], "offline");
}
