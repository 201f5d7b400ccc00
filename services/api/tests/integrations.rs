//! Connecting, listing, editing and disconnecting Chatra integrations.

mod common;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use common::{PUBLIC_URL, chatra_body, spawn_app};

const PATH: &str = "/api/v1/integrations/chatra";

#[tokio::test]
async fn connecting_answers_201_with_the_webhook_url_and_never_the_secret_key() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let response = app
        .post(PATH, &chatra_body(group, "pub-key", "the-secret-key"))
        .await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.expect("text");
    assert!(!text.contains("the-secret-key"), "{text}");
    let body: Value = serde_json::from_str(&text).expect("json");

    let id = body["id"].as_str().expect("id");
    let token = body["webhook_token"].as_str().expect("token");
    assert!(token.len() >= 32, "{token}");
    assert_eq!(
        body["webhook_url"],
        format!("{PUBLIC_URL}/webhooks/chatra/{id}?token={token}")
    );
    assert_eq!(body["public_key"], "pub-key");
    assert_eq!(body["default_group_id"], group.to_string());
    assert_eq!(body["panel"], "separate");
    assert_eq!(body["group_mappings"], json!([]));
    assert_eq!(body["status"], "pending");
    assert_eq!(body["status_checked_at"], Value::Null);
    assert_eq!(body["status_detail"], Value::Null);
    assert!(body["created_at"].is_string() && body["updated_at"].is_string());
    assert!(body.get("secret_key").is_none());
    assert_eq!(
        app.event_types().await,
        ["group_created", "integration_connected"]
    );
}

#[tokio::test]
async fn integrations_are_listed_and_fetched_with_their_settings() {
    let app = spawn_app().await;
    let support = app.create_group("Support").await;
    let sales = app.create_group("Sales").await;
    let mut body = chatra_body(support, "pub-1", "secret-1");
    body["panel"] = json!("informational");
    body["group_mappings"] = json!([{"chatra_group_id": "chatra-sales", "group_id": sales}]);
    let first = app.connect_chatra(&body).await;
    let second = app
        .connect_chatra(&chatra_body(sales, "pub-2", "secret-2"))
        .await;

    let list: Value = app.get(PATH).await.json().await.expect("json");
    let ids: Vec<&Value> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|i| &i["id"])
        .collect();
    assert_eq!(ids, [&first["id"], &second["id"]]);

    let fetched: Value = app
        .get(&format!("{PATH}/{}", first["id"].as_str().expect("id")))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(fetched["webhook_token"], first["webhook_token"]);
    assert_eq!(fetched["webhook_url"], first["webhook_url"]);
    assert_eq!(fetched["panel"], "informational");
    assert_eq!(
        fetched["group_mappings"],
        json!([{"chatra_group_id": "chatra-sales", "group_id": sales}])
    );
}

#[tokio::test]
async fn a_patch_changes_only_the_fields_it_names() {
    let app = spawn_app().await;
    let support = app.create_group("Support").await;
    let sales = app.create_group("Sales").await;
    let created = app
        .connect_chatra(&chatra_body(support, "pub-1", "secret-1"))
        .await;
    let path = format!("{PATH}/{}", created["id"].as_str().expect("id"));

    let patch = json!({
        "panel": "informational",
        "default_group_id": sales,
        "group_mappings": [{"chatra_group_id": "g1", "group_id": support}],
    });
    let response = app.patch(&path, &patch).await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.expect("json");
    assert_eq!(updated["panel"], "informational");
    assert_eq!(updated["default_group_id"], sales.to_string());
    assert_eq!(
        updated["group_mappings"],
        json!([{"chatra_group_id": "g1", "group_id": support}])
    );
    assert_eq!(updated["public_key"], "pub-1");
    assert_eq!(updated["webhook_token"], created["webhook_token"]);
    assert_eq!(updated["created_at"], created["created_at"]);

    let public_key: Value = app
        .patch(&path, &json!({"public_key": "pub-2"}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(public_key["public_key"], "pub-2");
    assert_eq!(public_key["panel"], "informational");

    // An empty patch changes nothing and records nothing.
    let before = app.admin_events().await;
    let unchanged = app.patch(&path, &json!({})).await;
    assert_eq!(unchanged.status(), 200);
    assert_eq!(app.admin_events().await, before);
    let types = app.event_types().await;
    assert_eq!(
        types.iter().filter(|t| *t == "integration_updated").count(),
        2,
        "{types:?}"
    );
}

#[tokio::test]
async fn rotating_the_webhook_token_replaces_it_and_forgets_the_old_one() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let created = app
        .connect_chatra(&chatra_body(group, "pub-1", "secret-1"))
        .await;
    let id = created["id"].as_str().expect("id");
    let old_token = created["webhook_token"].as_str().expect("token");
    let old_hash = Sha256::digest(old_token.as_bytes()).to_vec();
    let hash_count = async |hash: &[u8]| -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM integrations WHERE webhook_token_sha256 = $1")
            .bind(hash.to_vec())
            .fetch_one(app.store.pool())
            .await
            .expect("count")
    };
    assert_eq!(hash_count(&old_hash).await, 1);

    let rotated: Value = app
        .patch(
            &format!("{PATH}/{id}"),
            &json!({"rotate_webhook_token": true}),
        )
        .await
        .json()
        .await
        .expect("json");
    let new_token = rotated["webhook_token"].as_str().expect("token");
    assert_ne!(new_token, old_token);
    assert_eq!(
        rotated["webhook_url"],
        format!("{PUBLIC_URL}/webhooks/chatra/{id}?token={new_token}")
    );
    assert_eq!(hash_count(&old_hash).await, 0);
    assert_eq!(hash_count(&Sha256::digest(new_token.as_bytes())).await, 1);
    let fetched: Value = app
        .get(&format!("{PATH}/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(fetched["webhook_token"], new_token);
}

#[tokio::test]
async fn disconnecting_answers_204_and_the_integration_is_gone() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let created = app
        .connect_chatra(&chatra_body(group, "pub-1", "secret-1"))
        .await;
    let path = format!("{PATH}/{}", created["id"].as_str().expect("id"));

    let deleted = app.delete(&path).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.get(&path).await.status(), 404);
    assert_eq!(
        app.patch(&path, &json!({"panel": "separate"}))
            .await
            .status(),
        404
    );
    assert_eq!(app.delete(&path).await.status(), 404);
    let list: Value = app.get(PATH).await.json().await.expect("json");
    assert_eq!(list, json!([]));
    let types = app.event_types().await;
    assert_eq!(
        types.last().map(String::as_str),
        Some("integration_disconnected")
    );
}

#[tokio::test]
async fn unknown_and_malformed_integration_ids_are_not_found() {
    let app = spawn_app().await;
    for id in [Uuid::new_v4().to_string(), "42".to_owned()] {
        let path = format!("{PATH}/{id}");
        for response in [
            app.get(&path).await,
            app.patch(&path, &json!({"panel": "separate"})).await,
            app.delete(&path).await,
        ] {
            assert_eq!(response.status(), 404, "{path}");
            let body: Value = response.json().await.expect("json");
            assert_eq!(body, json!({"error": "not found"}));
        }
    }
    assert_eq!(app.count("events").await, 0);
}
