//! Health, readiness and metrics.

mod common;

use serde_json::{Value, json};

use common::{spawn_app, spawn_app_without_database};

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("request");
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
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("request")
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
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("request");
    assert_eq!(health.status(), 200);
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("request");
    assert_eq!(ready.status(), 503);
    let write = app
        .post("/api/v1/groups", &json!({"name": "Support"}))
        .await;
    assert_eq!(write.status(), 503);
    let body: Value = write.json().await.expect("json");
    assert!(body["error"].is_string());
}
