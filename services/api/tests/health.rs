//! Health, readiness and metrics.

mod common;

use serde_json::{Value, json};

use common::{spawn_app, spawn_app_without_database, spawn_app_without_nats};

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.get_anonymously(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body, json!({"status": "ok"}));
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    app.create_group("Support").await;
    let _ = app.get("/api/v1/groups/not-a-uuid").await;
    let text = app
        .get_anonymously("/metrics")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(r#"api_requests_total{route="/api/v1/groups",status="201"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"api_requests_total{route="/api/v1/groups/{id}",status="404"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn without_a_database_readiness_fails_and_writes_answer_503() {
    let app = spawn_app_without_database().await;
    let health = app.get_anonymously("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = app.get_anonymously("/readyz").await;
    assert_eq!(ready.status(), 503);
    let write = app
        .post("/api/v1/groups", &json!({"name": "Support"}))
        .await;
    assert_eq!(write.status(), 503);
    let body: Value = write.json().await.expect("json");
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn without_nats_readiness_fails_naming_it_and_live_updates_answer_503() {
    let app = spawn_app_without_nats().await;
    let ready = app.get_anonymously("/readyz").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["checks"], json!({"database": true, "nats": false}));
    assert_eq!(app.get("/api/v1/stream").await.status(), 503);
    let write = app
        .post("/api/v1/groups", &json!({"name": "Support"}))
        .await;
    assert_eq!(write.status(), 201, "everything else works without NATS");
}
