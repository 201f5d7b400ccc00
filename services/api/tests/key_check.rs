//! The background check of an integration's API keys against Chatra.

mod common;

use std::time::Duration;

use deskie_proto::events::Event;
use serde_json::{Value, json};

use common::{
    ChatraStandIn, GOOD_PUBLIC_KEY, GOOD_SECRET_KEY, chatra_body, closed_port_url,
    spawn_app_with_chatra,
};

#[tokio::test]
async fn good_keys_become_connected() {
    let chatra = ChatraStandIn::start();
    let app = spawn_app_with_chatra(&chatra.url).await;
    let group = app.create_group("Support").await;
    let created = app
        .connect_chatra(&chatra_body(group, GOOD_PUBLIC_KEY, GOOD_SECRET_KEY))
        .await;
    let id = created["id"].as_str().expect("id");

    let checked = app.wait_for_status(id, "connected").await;
    assert_eq!(checked["status"], "connected", "{checked}");
    assert!(checked["status_checked_at"].is_string(), "{checked}");
    assert_eq!(
        checked["status_detail"],
        "Chatra answered HTTP 404 to the key probe: the keys work"
    );
    let requests = chatra.requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|(path, authorization)| {
        path == "/api/messages/deskieKeyCheck001"
            && authorization.as_deref()
                == Some(format!("Chatra.Simple {GOOD_PUBLIC_KEY}:{GOOD_SECRET_KEY}").as_str())
    }));
    let stream = app
        .store
        .load_stream(id.parse().expect("uuid"))
        .await
        .expect("stream");
    let check = stream
        .iter()
        .find_map(|stored| match &stored.envelope.event {
            Some(Event::IntegrationKeysChecked(check)) => Some((&stored.envelope, check)),
            _ => None,
        })
        .expect("a key check event");
    assert_eq!(check.0.emitted_by, "api");
    assert_eq!(check.0.stream_type, "integration");
    assert_eq!(check.1.status, "connected");
    assert_eq!(
        check.1.settings_version, 1,
        "the version IntegrationConnected set"
    );
}

#[tokio::test]
async fn refused_keys_become_invalid_keys() {
    let chatra = ChatraStandIn::start();
    let app = spawn_app_with_chatra(&chatra.url).await;
    let group = app.create_group("Support").await;
    let created = app
        .connect_chatra(&chatra_body(group, GOOD_PUBLIC_KEY, "wrong-secret"))
        .await;
    let checked = app
        .wait_for_status(created["id"].as_str().expect("id"), "invalid_keys")
        .await;
    assert_eq!(checked["status"], "invalid_keys", "{checked}");
    assert!(checked["status_checked_at"].is_string());
    let detail = checked["status_detail"].as_str().unwrap_or_default();
    assert!(detail.contains("401"), "{detail}");
    assert!(!detail.contains("wrong-secret"), "{detail}");
}

#[tokio::test]
async fn a_chatra_that_does_not_answer_makes_the_integration_unreachable() {
    let app = spawn_app_with_chatra(&closed_port_url()).await;
    let group = app.create_group("Support").await;
    let created = app
        .connect_chatra(&chatra_body(group, GOOD_PUBLIC_KEY, GOOD_SECRET_KEY))
        .await;
    let checked = app
        .wait_for_status(created["id"].as_str().expect("id"), "unreachable")
        .await;
    assert_eq!(checked["status"], "unreachable", "{checked}");
    assert!(checked["status_detail"].is_string());
    assert!(
        !checked["status_detail"]
            .as_str()
            .unwrap_or_default()
            .contains(GOOD_SECRET_KEY)
    );
}

#[tokio::test]
async fn connecting_does_not_wait_for_the_check() {
    let chatra = ChatraStandIn::start_with_delay(Duration::from_secs(3));
    let app = spawn_app_with_chatra(&chatra.url).await;
    let group = app.create_group("Support").await;
    let created = app
        .connect_chatra(&chatra_body(group, GOOD_PUBLIC_KEY, GOOD_SECRET_KEY))
        .await;
    assert_eq!(created["status"], "pending");
    assert_eq!(created["status_checked_at"], Value::Null);
    let checked = app
        .wait_for_status(created["id"].as_str().expect("id"), "connected")
        .await;
    assert_eq!(checked["status"], "connected", "{checked}");
}

#[tokio::test]
async fn new_keys_are_checked_again() {
    let chatra = ChatraStandIn::start();
    let app = spawn_app_with_chatra(&chatra.url).await;
    let group = app.create_group("Support").await;
    let created = app
        .connect_chatra(&chatra_body(group, GOOD_PUBLIC_KEY, "wrong-secret"))
        .await;
    let id = created["id"].as_str().expect("id");
    let refused = app.wait_for_status(id, "invalid_keys").await;
    assert_eq!(refused["status"], "invalid_keys");

    let patched: Value = app
        .patch(
            &format!("/api/v1/integrations/chatra/{id}"),
            &json!({"secret_key": GOOD_SECRET_KEY}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(patched["status"], "pending");
    assert_eq!(patched["status_checked_at"], Value::Null);
    let accepted = app.wait_for_status(id, "connected").await;
    assert_eq!(accepted["status"], "connected", "{accepted}");
}
