//! `POST /api/v1/rules/{id}/dry-run`: which of the last cases' changes a rule would have
//! fired on, without any effect.

mod common;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use common::{TestApp, customer_says, opened, spawn_app, status};

/// A disabled rule (a dry run is how it is tried out) with a credential to decrypt.
fn refund_alert() -> Value {
    json!({
        "name": "Refund requests", "trigger": "case_created", "enabled": false,
        "conditions": {"all": [{"field": "message.text", "op": "contains", "value": "refund"}]},
        "actions": [
            {"type": "notify_slack", "webhook_url": "https://hooks.slack.com/services/T0/B0/xyz",
             "text": "Refund: {{message.text}}"},
            {"type": "play_sound", "sound": "bell"},
        ],
    })
}

impl TestApp {
    /// A new chat in `group` whose first message is `text`; its id.
    async fn chat(&self, group: Uuid, text: &str) -> Uuid {
        let id = Uuid::now_v7();
        let chat = id.to_string();
        self.record_case(
            id,
            vec![
                opened().in_group(group).chat(&chat).into(),
                customer_says(text).at(1).into(),
            ],
        )
        .await;
        id
    }

    /// Stores [`refund_alert`]; its id.
    async fn refund_alert(&self) -> String {
        let rule: Value = self
            .post("/api/v1/rules", &refund_alert())
            .await
            .json()
            .await
            .expect("json");
        rule["id"].as_str().expect("id").to_owned()
    }

    async fn dry_run(&self, rule: &str, body: Option<&Value>) -> reqwest::Response {
        let mut request = self.admin(Method::POST, &format!("/api/v1/rules/{rule}/dry-run"));
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }
}

#[tokio::test]
async fn a_dry_run_lists_exactly_the_matching_cases_and_changes_nothing() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let first = app.chat(group, "I want a REFUND for order 17").await;
    let _parcel = app.chat(group, "Where is my parcel?").await;
    let last = app.chat(group, "refund please").await;
    // An update is no case_created change, whatever it says.
    app.record_case(first, vec![status("pending").from("open").into()])
        .await;
    let rule_id = app.refund_alert().await;
    let rule_id = rule_id.as_str();
    let events_before = app.count("events").await;

    let response = app.dry_run(rule_id, Some(&json!({"cases": 3}))).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["rule_id"], rule_id);
    assert_eq!(answer["cases_checked"], 3);
    let fired = answer["fired"].as_array().expect("fired");
    let cases: Vec<&str> = fired.iter().filter_map(|f| f["case_id"].as_str()).collect();
    assert_eq!(
        cases,
        [last.to_string(), first.to_string()],
        "the matching cases, newest first"
    );
    for firing in fired {
        assert_eq!(firing["event_type"], "case_opened");
        assert!(firing["event_id"].is_string() && firing["at"].is_string());
        assert_eq!(
            firing["matched_conditions"],
            json!(["message.text contains refund"])
        );
        assert_eq!(firing["actions"], json!(["notify_slack", "play_sound"]));
    }
    assert!(!answer.to_string().contains("xyz"), "no credential shown");

    let newest_only: Value = app
        .dry_run(rule_id, Some(&json!({"cases": 1})))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(newest_only["cases_checked"], 1);
    assert_eq!(newest_only["fired"][0]["case_id"], last.to_string());
    let by_default: Value = app.dry_run(rule_id, None).await.json().await.expect("json");
    assert_eq!(by_default["cases_checked"], 3);

    assert_eq!(
        app.count("events").await,
        events_before,
        "no event appended"
    );
    for case in [first, last] {
        let history: Vec<Value> = app
            .get(&format!("/api/v1/cases/{case}/events"))
            .await
            .json()
            .await
            .expect("json");
        assert!(history.iter().all(|e| e["type"] != "rule_fired"));
    }
    assert_eq!(app.count("outbox").await, 0, "nothing queued to send");
}

#[tokio::test]
async fn a_dry_run_is_for_the_admin_on_a_known_rule_with_a_sane_number_of_cases() {
    let app = spawn_app().await;
    let rule_id = app.refund_alert().await;
    let rule_id = rule_id.as_str();

    let unknown = app.dry_run(&Uuid::now_v7().to_string(), None).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(app.dry_run("not-a-uuid", None).await.status(), 404);

    let agent = app.create_agent("ann@example.com", &["live_chat"]).await;
    let token = agent["token"].as_str().expect("token");
    let as_agent = app
        .with_token(
            token,
            Method::POST,
            &format!("/api/v1/rules/{rule_id}/dry-run"),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(as_agent.status(), 403);

    for bad in [
        json!({"cases": 0}),
        json!({"cases": 501}),
        json!({"cases": "9"}),
    ] {
        let response = app.dry_run(rule_id, Some(&bad)).await;
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["field"], "cases", "{bad}");
    }
}
