//! `deskie run`'s suite in one process: an admin connects Chatra through the API and the
//! webhook URL it gets back works at once; configuration events reach JetStream.

use std::collections::HashMap;
use std::time::Duration;

use deskie_config::Settings;
use deskie_testkit::{TestDb, TestNats};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "admin-token-for-the-e2e-suite";
const SECRET_KEY: &str = "chatra-secret-key-e2e-0123456789";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn stream_payloads(
    bus: &deskie_bus::Bus,
    stream: String,
    at_least: usize,
) -> Vec<(String, Vec<u8>)> {
    deskie_testkit::read_stream(bus.jetstream(), &stream, at_least, Duration::from_secs(15))
        .await
        .into_iter()
        .map(|m| (m.subject.to_string(), m.payload.to_vec()))
        .collect()
}

#[tokio::test]
async fn an_integration_created_through_the_api_receives_webhooks_at_once() {
    let db = TestDb::create().await;
    let nats = TestNats::new();
    let ingest_port = free_port();
    let vars: HashMap<&str, String> = HashMap::from([
        ("DESKIE_DATABASE_URL", db.url().to_owned()),
        ("DESKIE_NATS_URL", nats.url().to_owned()),
        ("DESKIE_NATS_PREFIX", nats.prefix().to_owned()),
        ("DESKIE_INGEST_ADDR", format!("127.0.0.1:{ingest_port}")),
        ("DESKIE_API_ADDR", "127.0.0.1:0".to_owned()),
        (
            "DESKIE_PUBLIC_URL",
            format!("http://127.0.0.1:{ingest_port}"),
        ),
        ("DESKIE_ADMIN_TOKEN", ADMIN.to_owned()),
        ("DESKIE_ENCRYPTION_KEY", "ab".repeat(32)),
        ("DESKIE_CHATRA_API_URL", "http://127.0.0.1:1/api".to_owned()),
    ]);
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");
    let shutdown = CancellationToken::new();
    let suite = deskie::start_suite(&settings, shutdown.clone())
        .await
        .expect("suite");
    let api = format!("http://127.0.0.1:{}/api/v1", suite.api_port);
    let http = reqwest::Client::new();
    let admin = |rb: reqwest::RequestBuilder| rb.bearer_auth(ADMIN);

    let group: Value = admin(http.post(format!("{api}/groups")))
        .json(&json!({ "name": "Support" }))
        .send()
        .await
        .expect("group")
        .json()
        .await
        .expect("json");
    let created = admin(http.post(format!("{api}/integrations/chatra")))
        .json(&json!({
            "public_key": "pub-e2e", "secret_key": SECRET_KEY,
            "default_group_id": group["id"], "panel": "informational",
            "group_mappings": [{ "chatra_group_id": "chatra-sales", "group_id": group["id"] }]
        }))
        .send()
        .await
        .expect("integration");
    assert_eq!(created.status(), 201);
    let integration: Value = created.json().await.expect("json");
    let webhook_url = integration["webhook_url"]
        .as_str()
        .expect("webhook_url")
        .to_owned();
    assert!(webhook_url.starts_with(&format!("http://127.0.0.1:{ingest_port}/webhooks/chatra/")));

    for fixture in [
        "chat-started-prechat-form.json",
        "chat-fragment-agent-from-chatra-ui.json",
        "chat-transcript.json",
    ] {
        let body = deskie_testkit::chatra_fixture(env!("CARGO_MANIFEST_DIR"), fixture);
        let response = http
            .post(&webhook_url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("webhook");
        assert_eq!(response.status(), 200, "{fixture}");
    }
    let webhooks = stream_payloads(&suite.bus, suite.bus.topology().webhooks_stream(), 3).await;
    assert_eq!(webhooks.len(), 3);

    // The relay publishes the configuration events; secrets travel only encrypted.
    let events = stream_payloads(&suite.bus, suite.bus.topology().events_stream(), 3).await;
    let types: Vec<&str> = events
        .iter()
        .filter_map(|(s, _)| s.rsplit('.').next())
        .collect();
    assert!(types.contains(&"group_created"), "{types:?}");
    assert!(types.contains(&"integration_connected"), "{types:?}");
    for (_, payload) in &events {
        assert!(
            !payload
                .windows(SECRET_KEY.len())
                .any(|w| w == SECRET_KEY.as_bytes()),
            "secret key in clear on the bus"
        );
    }

    // Disconnecting stops the URL at once.
    let id = integration["id"].as_str().expect("id");
    let deleted = admin(http.delete(format!("{api}/integrations/chatra/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    let after = http
        .post(&webhook_url)
        .header("content-type", "application/json")
        .body(r#"{"eventName":"chatFragment","client":{"id":"c","chatId":"h"}}"#)
        .send()
        .await
        .expect("webhook");
    assert_eq!(after.status(), 404);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), suite.wait())
        .await
        .expect("suite stops");
}
