//! Admin authentication and groups.

mod common;

use reqwest::Method;
use serde_json::{Value, json};

use common::{ADMIN_TOKEN, spawn_app};

#[tokio::test]
async fn requests_without_the_admin_token_are_refused_and_create_nothing() {
    let app = spawn_app().await;
    let one_off = {
        let mut token = ADMIN_TOKEN.to_owned();
        token.pop();
        token.push('8');
        token
    };
    let url = format!("{}/api/v1/groups", app.address);
    let attempts = [
        app.client.post(&url),
        app.client.post(&url).bearer_auth("wrong-token-wrong-token"),
        app.client.post(&url).bearer_auth(&one_off),
        app.client
            .post(&url)
            .bearer_auth(&ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]),
        app.client.post(&url).bearer_auth(format!("{ADMIN_TOKEN}x")),
        app.client
            .post(&url)
            .header("Authorization", format!("Basic {ADMIN_TOKEN}")),
    ];
    for attempt in attempts {
        let response = attempt
            .json(&json!({"name": "Support"}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.expect("json");
        assert!(body["error"].is_string(), "{body}");
    }
    let list = app.client.get(&url).send().await.expect("request");
    assert_eq!(list.status(), 401);
    let integrations = app
        .client
        .get(format!("{}/api/v1/integrations/chatra", app.address))
        .bearer_auth(&one_off)
        .send()
        .await
        .expect("request");
    assert_eq!(integrations.status(), 401);
    assert_eq!(app.count("groups").await, 0);
    assert_eq!(app.count("events").await, 0);
}

#[tokio::test]
async fn a_group_is_created_listed_fetched_and_renamed() {
    let app = spawn_app().await;
    let created = app
        .post("/api/v1/groups", &json!({"name": "  Support "}))
        .await;
    assert_eq!(created.status(), 201);
    let group: Value = created.json().await.expect("json");
    let id = group["id"].as_str().expect("id").to_owned();
    assert_eq!(group["name"], "Support");
    assert!(group["created_at"].is_string());

    app.create_group("Sales").await;
    let list: Value = app.get("/api/v1/groups").await.json().await.expect("json");
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(names, ["Support", "Sales"]);

    let fetched: Value = app
        .get(&format!("/api/v1/groups/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(fetched, group);

    let renamed = app
        .patch(
            &format!("/api/v1/groups/{id}"),
            &json!({"name": "Customer care"}),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    let renamed: Value = renamed.json().await.expect("json");
    assert_eq!(renamed["name"], "Customer care");
    assert_eq!(renamed["created_at"], group["created_at"]);
    let fetched: Value = app
        .get(&format!("/api/v1/groups/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(fetched["name"], "Customer care");
    assert_eq!(
        app.event_types().await,
        ["group_created", "group_created", "group_renamed"]
    );
}

#[tokio::test]
async fn unknown_and_malformed_group_ids_are_not_found() {
    let app = spawn_app().await;
    for path in [
        format!("/api/v1/groups/{}", uuid::Uuid::new_v4()),
        "/api/v1/groups/not-a-uuid".to_owned(),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body, json!({"error": "not found"}));
        let patched = app.patch(&path, &json!({"name": "x"})).await;
        assert_eq!(patched.status(), 404, "{path}");
    }
    assert_eq!(app.count("events").await, 0);
}

#[tokio::test]
async fn invalid_group_bodies_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let long = "n".repeat(201);
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"name": long}), "name"),
        (json!(["Support"]), "body"),
    ] {
        let response = app.post("/api/v1/groups", &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let refusal: Value = response.json().await.expect("json");
        assert_eq!(refusal["field"], field, "{body}");
        assert!(
            refusal["error"].as_str().is_some_and(|e| e.contains(field)),
            "{refusal}"
        );
    }
    let malformed = app
        .admin(Method::POST, "/api/v1/groups")
        .header("Content-Type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("request");
    assert_eq!(malformed.status(), 400);
    let refusal: Value = malformed.json().await.expect("json");
    assert_eq!(refusal["field"], "body");
    let form = app
        .admin(Method::POST, "/api/v1/groups")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("name=Support")
        .send()
        .await
        .expect("request");
    assert_eq!(form.status(), 400);
    assert_eq!(app.count("groups").await, 0);
    assert_eq!(app.count("events").await, 0);
}
