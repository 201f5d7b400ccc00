//! Every bad integration request is refused with 400 naming its field, and stores nothing.

mod common;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use common::{TestApp, chatra_body, spawn_app};

const PATH: &str = "/api/v1/integrations/chatra";

async fn stored(app: &TestApp) -> (i64, i64) {
    (app.count("integrations").await, app.admin_events().await)
}

async fn assert_refused(response: reqwest::Response, field: &str, case: &str) {
    assert_eq!(response.status(), 400, "{case}");
    let refusal: Value = response.json().await.expect("json");
    assert_eq!(refusal["field"], field, "{case}: {refusal}");
    let message = refusal["error"].as_str().unwrap_or_default();
    assert!(message.contains(field), "{case}: {message}");
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

fn without(mut body: Value, field: &str) -> Value {
    body.as_object_mut().map(|o| o.remove(field));
    body
}

#[tokio::test]
async fn each_invalid_connect_body_is_refused_naming_its_field() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let valid = chatra_body(group, "pub", "secret");
    let long = "k".repeat(201);
    let unknown_group = Uuid::new_v4();
    let mapping =
        |chatra: &str, group: Value| json!({"chatra_group_id": chatra, "group_id": group});
    let cases = [
        (without(valid.clone(), "public_key"), "public_key"),
        (with(valid.clone(), "public_key", json!("")), "public_key"),
        (with(valid.clone(), "public_key", json!(long)), "public_key"),
        (without(valid.clone(), "secret_key"), "secret_key"),
        (with(valid.clone(), "secret_key", json!(" ")), "secret_key"),
        (with(valid.clone(), "secret_key", json!(long)), "secret_key"),
        (
            without(valid.clone(), "default_group_id"),
            "default_group_id",
        ),
        (
            with(valid.clone(), "default_group_id", json!("support")),
            "default_group_id",
        ),
        (
            with(valid.clone(), "default_group_id", json!(unknown_group)),
            "default_group_id",
        ),
        (with(valid.clone(), "panel", json!("sidebar")), "panel"),
        (with(valid.clone(), "panel", json!(1)), "panel"),
        (
            with(valid.clone(), "group_mappings", json!("g1")),
            "group_mappings",
        ),
        (
            with(
                valid.clone(),
                "group_mappings",
                json!([mapping("g1", json!("nope"))]),
            ),
            "group_mappings[0].group_id",
        ),
        (
            with(
                valid.clone(),
                "group_mappings",
                json!([
                    mapping("g1", json!(group)),
                    mapping("g2", json!(unknown_group))
                ]),
            ),
            "group_mappings[1].group_id",
        ),
        (
            with(
                valid.clone(),
                "group_mappings",
                json!([mapping("g1", json!(group)), mapping("g1", json!(group))]),
            ),
            "group_mappings[1].chatra_group_id",
        ),
        (
            with(
                valid.clone(),
                "group_mappings",
                json!([mapping("", json!(group))]),
            ),
            "group_mappings[0].chatra_group_id",
        ),
        (json!([valid.clone()]), "body"),
    ];
    let before = stored(&app).await;
    for (body, field) in cases {
        let response = app.post(PATH, &body).await;
        assert_refused(response, field, &body.to_string()).await;
    }
    let malformed = app
        .admin(Method::POST, PATH)
        .header("Content-Type", "application/json")
        .body(r#"{"public_key": "pub", "#)
        .send()
        .await
        .expect("request");
    assert_refused(malformed, "body", "malformed JSON").await;
    let wrong_type = app
        .admin(Method::POST, PATH)
        .header("Content-Type", "text/plain")
        .body(valid.to_string())
        .send()
        .await
        .expect("request");
    assert_refused(wrong_type, "body", "text/plain").await;
    assert_eq!(stored(&app).await, before);
}

#[tokio::test]
async fn a_body_over_64_kib_is_refused() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let mut body = chatra_body(group, "pub", "secret");
    body["padding"] = json!("x".repeat(70 * 1024));
    let response = app.post(PATH, &body).await;
    assert_eq!(response.status(), 413);
    let refusal: Value = response.json().await.expect("json");
    assert_eq!(refusal["field"], "body");
    assert_eq!(app.count("integrations").await, 0);
}

#[tokio::test]
async fn each_invalid_patch_is_refused_naming_its_field_and_changes_nothing() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let created = app
        .connect_chatra(&chatra_body(group, "pub", "secret"))
        .await;
    let path = format!("{PATH}/{}", created["id"].as_str().expect("id"));
    let cases = [
        (json!({"public_key": ""}), "public_key"),
        (json!({"secret_key": "s".repeat(201)}), "secret_key"),
        (json!({"default_group_id": "x"}), "default_group_id"),
        (
            json!({"default_group_id": Uuid::new_v4()}),
            "default_group_id",
        ),
        (json!({"panel": "popup"}), "panel"),
        (
            json!({"group_mappings": [{"chatra_group_id": "g1", "group_id": Uuid::new_v4()}]}),
            "group_mappings[0].group_id",
        ),
        (
            json!({"rotate_webhook_token": "yes"}),
            "rotate_webhook_token",
        ),
    ];
    let before = stored(&app).await;
    for (body, field) in cases {
        let response = app.patch(&path, &body).await;
        assert_refused(response, field, &body.to_string()).await;
    }
    assert_eq!(stored(&app).await, before);
    let unchanged: Value = app.get(&path).await.json().await.expect("json");
    assert_eq!(unchanged["webhook_token"], created["webhook_token"]);
    assert_eq!(unchanged["updated_at"], created["updated_at"]);
}
