//! Neither the events nor the read model hold a Chatra secret key or webhook token in clear.

mod common;

use serde_json::{Value, json};

use common::{TestApp, chatra_body, spawn_app};

/// Every stored byte that could leak a secret: event payloads and rows as PostgreSQL prints
/// them, and the integrations rows' bytea columns.
async fn stored_bytes(app: &TestApp) -> Vec<Vec<u8>> {
    let pool = app.store.pool();
    let mut blobs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM events")
        .fetch_all(pool)
        .await
        .expect("payloads");
    for sql in [
        "SELECT convert_to(e::text, 'UTF8') FROM events e",
        "SELECT convert_to(i::text, 'UTF8') FROM integrations i",
        "SELECT secret_key_encrypted FROM integrations",
        "SELECT webhook_token_encrypted FROM integrations",
        "SELECT webhook_token_sha256 FROM integrations",
    ] {
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(sql).fetch_all(pool).await.expect("rows");
        blobs.extend(rows);
    }
    blobs
}

fn contains(blobs: &[Vec<u8>], needle: &str) -> bool {
    blobs
        .iter()
        .any(|blob| blob.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

#[tokio::test]
async fn secret_keys_and_webhook_tokens_are_stored_only_encrypted() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let secret = "chatra-secret-key-7f3a9c";
    let created = app
        .connect_chatra(&chatra_body(group, "pub-key-1", secret))
        .await;
    let id = created["id"].as_str().expect("id");
    let token = created["webhook_token"].as_str().expect("token").to_owned();

    let new_secret = "chatra-secret-key-rotated-b81e";
    let patched: Value = app
        .patch(
            &format!("/api/v1/integrations/chatra/{id}"),
            &json!({"secret_key": new_secret, "rotate_webhook_token": true}),
        )
        .await
        .json()
        .await
        .expect("json");
    let new_token = patched["webhook_token"].as_str().expect("token").to_owned();
    assert_ne!(new_token, token);

    let blobs = stored_bytes(&app).await;
    assert!(
        contains(&blobs, "pub-key-1"),
        "the search must see plain fields"
    );
    for needle in [secret, new_secret, token.as_str(), new_token.as_str()] {
        assert!(!contains(&blobs, needle), "{needle} is stored in clear");
    }
}
