//! `/api/v1/rules`: the admin's rules, validated before anything is stored, credentials
//! never shown or stored in clear.

mod common;

use deskie_config::Cipher;
use deskie_proto::Message;
use deskie_proto::events::{Envelope, Event};
use reqwest::Method;
use serde_json::{Value, json};

use common::{TestApp, spawn_app};

const SLACK_URL: &str = "https://hooks.slack.com/services/T0AAA/B0BBB/s3cr3tSlackPath";
const BOT_TOKEN: &str = "123456:AAsecretTelegramToken_x-y";

fn greeting(name: &str, trigger: &str, position: i64) -> Value {
    json!({
        "name": name, "trigger": trigger, "position": position,
        "conditions": {"all": [{"field": "channel", "op": "eq", "value": "live_chat"}], "any": []},
        "actions": [{"type": "reply", "text": "Hi {{customer.name}}, we are on it."}],
    })
}

fn notifying(name: &str) -> Value {
    json!({
        "name": name, "trigger": "case_updated",
        "conditions": {"all": [{"field": "update", "op": "eq", "value": "customer_resumed"}]},
        "actions": [
            {"type": "play_sound", "sound": "bell"},
            {"type": "notify_slack", "webhook_url": SLACK_URL, "text": "Resumed: {{case.id}}"},
            {"type": "notify_telegram", "bot_token": BOT_TOKEN, "chat_id": "-100123", "text": "Back"},
        ],
    })
}

impl TestApp {
    async fn create_rule(&self, body: &Value) -> Value {
        let response = self.post("/api/v1/rules", body).await;
        assert_eq!(response.status(), 201);
        response.json().await.expect("json")
    }

    /// The credentials stored for rule `id`, decrypted with the test apps' key.
    async fn stored_secrets(&self, id: &str) -> Vec<(String, String)> {
        let id = id.parse().expect("uuid");
        let rule = deskie_store::read_models::rules::get(self.store.pool(), id)
            .await
            .expect("get")
            .expect("rule");
        let cipher = Cipher::from_key_bytes(&[42; 32]);
        rule.secrets
            .iter()
            .map(|(path, sealed)| {
                (
                    path.clone(),
                    cipher.decrypt_string(sealed).expect("decrypts"),
                )
            })
            .collect()
    }
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_rule_is_created_listed_fetched_patched_and_deleted() {
    let app = spawn_app().await;
    let created = app
        .create_rule(&greeting("  Greet new chats ", "case_created", 5))
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["name"], "Greet new chats");
    assert_eq!(created["trigger"], "case_created");
    assert_eq!(
        (&created["enabled"], &created["position"]),
        (&json!(true), &json!(5))
    );
    assert_eq!(created["stop_processing"], false);
    assert_eq!(created["conditions"]["all"][0]["op"], "eq");
    assert_eq!(
        created["actions"][0]["text"],
        "Hi {{customer.name}}, we are on it."
    );
    assert!(created["created_at"].is_string() && created["updated_at"].is_string());

    let update_rule = app
        .create_rule(&greeting("Updates", "case_updated", 0))
        .await;
    let first = app.create_rule(&greeting("First", "case_created", 1)).await;
    let list = json_of(app.get("/api/v1/rules").await, 200).await;
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["First", "Greet new chats", "Updates"]);

    let path = format!("/api/v1/rules/{id}");
    assert_eq!(json_of(app.get(&path).await, 200).await, created);

    let patch =
        json!({"name": "Greet", "stop_processing": true, "position": null, "id": "ignored"});
    let patched = json_of(app.patch(&path, &patch).await, 200).await;
    assert_eq!(patched["id"], id.as_str());
    assert_eq!(
        (&patched["name"], &patched["stop_processing"]),
        (&json!("Greet"), &json!(true))
    );
    assert_eq!(patched["position"], 0, "null sets the default");
    assert_eq!(
        patched["actions"], created["actions"],
        "untouched keys stay"
    );
    assert_eq!(json_of(app.get(&path).await, 200).await, patched);

    let events_before = app.count("events").await;
    let same = json_of(app.patch(&path, &json!({"name": "Greet"})).await, 200).await;
    assert_eq!(same, patched);
    assert_eq!(
        app.count("events").await,
        events_before,
        "no change, no event"
    );

    assert_eq!(app.delete(&path).await.status(), 204);
    assert_eq!(app.get(&path).await.status(), 404);
    assert_eq!(app.patch(&path, &json!({"name": "x"})).await.status(), 404);
    assert_eq!(app.delete(&path).await.status(), 404);
    let list = json_of(app.get("/api/v1/rules").await, 200).await;
    let ids: Vec<&Value> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(ids, [&first["id"], &update_rule["id"]]);
    assert_eq!(app.get("/api/v1/rules/not-a-uuid").await.status(), 404);

    let types = app.event_types().await;
    assert_eq!(
        types,
        [
            "rule_created",
            "rule_created",
            "rule_created",
            "rule_updated",
            "rule_deleted"
        ]
    );
    let streams: Vec<String> = sqlx::query_scalar("SELECT DISTINCT stream_type FROM events")
        .fetch_all(app.store.pool())
        .await
        .expect("types");
    assert_eq!(streams, ["rule"]);
}

#[tokio::test]
async fn a_rule_that_does_not_validate_is_refused_naming_the_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    let mut placeholder = greeting("Greet", "case_created", 0);
    placeholder["actions"][0]["text"] = json!("Hi {{customer.age}}");
    let mut operator = greeting("Greet", "case_created", 0);
    operator["conditions"]["all"][0]["op"] = json!("resembles");
    let mut empty_name = greeting("Greet", "case_created", 0);
    empty_name["name"] = json!("   ");
    let mut wrong_type = greeting("Greet", "case_created", 0);
    wrong_type["position"] = json!("first");
    let cases = [
        (placeholder, "actions[0].text", "customer.age"),
        (operator, "conditions.all[0].op", "resembles"),
        (empty_name, "name", "empty"),
        (wrong_type, "position", "whole number"),
        (json!(["not", "an", "object"]), "body", "object"),
    ];
    for (body, field, says) in &cases {
        let refused = json_of(app.post("/api/v1/rules", body).await, 400).await;
        assert_eq!(refused["field"], *field, "{refused}");
        let error = refused["error"].as_str().expect("error");
        assert!(error.contains(says), "{error}");
    }
    assert_eq!(app.count("events").await, 0);
    assert_eq!(app.count("rules").await, 0);

    // An edit that breaks the rule changes nothing either.
    let rule = app.create_rule(&greeting("Greet", "case_created", 0)).await;
    let path = format!("/api/v1/rules/{}", rule["id"].as_str().expect("id"));
    let (body, field, _) = &cases[0];
    let refused = json_of(
        app.patch(&path, &json!({"actions": body["actions"]})).await,
        400,
    )
    .await;
    assert_eq!(refused["field"], *field);
    assert_eq!(app.count("events").await, 1);
    assert_eq!(json_of(app.get(&path).await, 200).await, rule);
}

#[tokio::test]
async fn only_the_admin_may_see_or_change_rules() {
    let app = spawn_app().await;
    let rule = app.create_rule(&greeting("Greet", "case_created", 0)).await;
    let agent = app.create_agent("ann@example.com", &["live_chat"]).await;
    let token = agent["token"].as_str().expect("token");
    let one = format!("/api/v1/rules/{}", rule["id"].as_str().expect("id"));
    let events = app.count("events").await;
    for (method, path) in [
        (Method::GET, "/api/v1/rules"),
        (Method::POST, "/api/v1/rules"),
        (Method::GET, one.as_str()),
        (Method::PATCH, one.as_str()),
        (Method::DELETE, one.as_str()),
    ] {
        let body = json!({"name": "Mine now"});
        let as_agent = app
            .with_token(token, method.clone(), path)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(as_agent.status(), 403, "{method} {path}");
        let anonymous = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(anonymous.status(), 401, "{method} {path}");
    }
    assert_eq!(app.count("events").await, events);
    assert_eq!(json_of(app.get(&one).await, 200).await["name"], "Greet");
}

/// Every byte the database holds about rules: event payloads and rows as PostgreSQL
/// prints them, and the ciphertexts.
async fn stored_bytes(app: &TestApp) -> Vec<Vec<u8>> {
    let mut blobs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM events")
        .fetch_all(app.store.pool())
        .await
        .expect("payloads");
    for sql in [
        "SELECT convert_to(e::text, 'UTF8') FROM events e",
        "SELECT convert_to(r::text, 'UTF8') FROM rules r",
        "SELECT unnest(secrets_encrypted) FROM rules",
    ] {
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(app.store.pool())
            .await
            .expect("rows");
        blobs.extend(rows);
    }
    blobs
}

fn leaks(haystack: &[u8]) -> Option<&'static str> {
    // The secret parts: the host of the webhook URL may be shown.
    ["s3cr3tSlackPath", "AAsecretTelegramToken", "123456:"]
        .into_iter()
        .find(|needle| {
            haystack
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        })
}

#[tokio::test]
async fn credentials_are_masked_in_every_answer_and_stored_only_encrypted() {
    let app = spawn_app().await;
    let created = app.create_rule(&notifying("Resumed")).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/rules/{id}");
    assert_eq!(
        created["actions"][1]["webhook_url"],
        "https://hooks.slack.com/***"
    );
    assert_eq!(created["actions"][2]["bot_token"], "***");
    assert_eq!(created["actions"][2]["chat_id"], "-100123");

    let mut answers = vec![created.to_string()];
    for response in [app.get("/api/v1/rules").await, app.get(&path).await] {
        answers.push(response.text().await.expect("text"));
    }
    let patched = app.patch(&path, &json!({"position": 3})).await;
    answers.push(patched.text().await.expect("text"));
    for answer in &answers {
        assert_eq!(leaks(answer.as_bytes()), None, "{answer}");
        assert!(answer.contains("https://hooks.slack.com/***"), "{answer}");
    }

    let blobs = stored_bytes(&app).await;
    assert!(
        blobs.iter().any(|b| b.windows(7).any(|w| w == b"Resumed")),
        "plain text is seen"
    );
    for blob in &blobs {
        assert_eq!(leaks(blob), None);
    }

    // The event carries the spec with blanks and each credential sealed under its path.
    let payload: Vec<u8> =
        sqlx::query_scalar("SELECT payload FROM events WHERE event_type = 'rule_created'")
            .fetch_one(app.store.pool())
            .await
            .expect("payload");
    let envelope = Envelope::decode(payload.as_slice()).expect("decodes");
    assert_eq!(
        (envelope.stream_type.as_str(), envelope.stream_id.as_str()),
        ("rule", id.as_str())
    );
    let Some(Event::RuleCreated(event)) = envelope.event else {
        panic!("not rule_created");
    };
    let spec: Value = serde_json::from_str(&event.spec_json).expect("json");
    assert_eq!(spec["actions"][1]["webhook_url"], "");
    assert_eq!(spec["actions"][2]["bot_token"], "");
    let cipher = Cipher::from_key_bytes(&[42; 32]);
    let sealed: Vec<(&str, String)> = event
        .secrets
        .iter()
        .map(|s| {
            (
                s.path.as_str(),
                cipher.decrypt_string(&s.encrypted).expect("decrypts"),
            )
        })
        .collect();
    assert_eq!(
        sealed,
        [
            ("actions[1].webhook_url", SLACK_URL.to_owned()),
            ("actions[2].bot_token", BOT_TOKEN.to_owned())
        ]
    );
}

#[tokio::test]
async fn an_edit_that_sends_masked_credentials_back_keeps_the_stored_ones() {
    let app = spawn_app().await;
    let created = app.create_rule(&notifying("Resumed")).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/rules/{id}");
    let original = app.stored_secrets(&id).await;

    // The rule as fetched, sent back whole with a new name and the actions reordered.
    let mut edited = json_of(app.get(&path).await, 200).await;
    edited["name"] = json!("Resumed chats");
    let actions = edited["actions"].as_array_mut().expect("actions");
    actions.swap(0, 2);
    let patched = json_of(app.patch(&path, &edited).await, 200).await;
    assert_eq!(patched["name"], "Resumed chats");
    assert_eq!(patched["actions"][0]["bot_token"], "***");
    assert_eq!(
        app.stored_secrets(&id).await,
        [
            ("actions[0].bot_token".to_owned(), BOT_TOKEN.to_owned()),
            ("actions[1].webhook_url".to_owned(), SLACK_URL.to_owned()),
        ]
    );

    // Leaving `actions` out keeps them too.
    let events = app.count("events").await;
    json_of(app.patch(&path, &json!({"enabled": false})).await, 200).await;
    assert_eq!(app.count("events").await, events + 1);
    assert_eq!(app.stored_secrets(&id).await.len(), original.len());
    assert_eq!(app.stored_secrets(&id).await[0].1, BOT_TOKEN);

    // A new URL replaces the old one.
    let new_url = "https://hooks.slack.com/services/T1/B1/another";
    let mut actions = patched["actions"].clone();
    actions[1]["webhook_url"] = json!(new_url);
    json_of(app.patch(&path, &json!({"actions": actions})).await, 200).await;
    assert!(
        app.stored_secrets(&id)
            .await
            .contains(&("actions[1].webhook_url".to_owned(), new_url.to_owned()))
    );

    // A masked value standing for nothing stored is refused, never stored as the credential.
    let mut masked_only = notifying("Copy");
    masked_only["actions"][1]["webhook_url"] = json!("https://hooks.slack.com/***");
    let refused = json_of(app.post("/api/v1/rules", &masked_only).await, 400).await;
    assert_eq!(refused["field"], "actions[1].webhook_url");
    let mut actions = patched["actions"].clone();
    actions[1]["webhook_url"] = json!("https://other.example/***");
    let refused = json_of(app.patch(&path, &json!({"actions": actions})).await, 400).await;
    assert_eq!(refused["field"], "actions[1].webhook_url");
}
