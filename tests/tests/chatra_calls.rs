//! Issue 10 end to end: the calls we make to Chatra as working integrations show them
//! (`chatra-api.md` §8.3, §8.5), against the Chatra stand-in.

mod support;

use std::time::Duration;

use deskie_testkit::wait_until;
use serde_json::{Value, json};
use support::{ADMIN, Options, Suite, fixture, messages_of, pings};

const CLIENT: &str = "p4s8d2f6g0h3j7k1l5z9x3c7v1b5n9m2q6w0e4r";
const CHAT: &str = "Lm2Nb4Vc6Xz8As1Sd";

async fn integration(suite: &Suite) -> Value {
    suite
        .get(&format!("/integrations/chatra/{}", suite.integration_id))
        .await
        .1
}

async fn integration_when(suite: &Suite, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now = integration(suite).await;
        if ready(&now) || std::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn send(suite: &Suite, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let response = suite
        .http
        .request(method, format!("{}{path}", suite.api))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_rule_s_greeting_goes_out_under_the_sender_identity_and_its_echo_is_kept_once() {
    let (suite, chatra) =
        support::start_with_chatra(Options::default(), Some(Duration::from_millis(200))).await;
    chatra.chat_id_for(CLIENT, CHAT);
    let path = format!("/integrations/chatra/{}", suite.integration_id);
    let before = integration(&suite).await;
    assert_eq!(before["sender_name"], "Deskie", "the default: {before}");
    assert_eq!(before["sender_email"], "chatra-bot@deskie.io");
    let (status, refused) = send(
        &suite,
        reqwest::Method::PATCH,
        &path,
        json!({ "sender_email": "not an address" }),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        integration(&suite).await["sender_email"],
        "chatra-bot@deskie.io"
    );
    let (status, patched) = send(
        &suite,
        reqwest::Method::PATCH,
        &path,
        json!({ "sender_name": "Acme Support", "sender_email": "support@acme.example" }),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["sender_name"], "Acme Support");

    let (status, rule) = send(
        &suite,
        reqwest::Method::POST,
        "/rules",
        json!({
            "name": "Greet new chats", "trigger": "case_created", "position": 1,
            "conditions": { "all": [{ "field": "message.text", "op": "contains", "value": "delivery address" }] },
            "actions": [{ "type": "reply", "text": "Hi {{customer.name}}, about: {{message.text}}" }]
        }),
    )
    .await;
    assert_eq!(status, 201, "{rule}");

    assert_eq!(
        suite
            .webhook(fixture("chat-started-single-message.json"))
            .await,
        200
    );
    let case = suite.case_id(CLIENT, CHAT);
    let now = suite
        .case_when(case, |c| {
            messages_of(c)
                .iter()
                .any(|m| m["source"] == "rule" && m["delivery"] == "sent")
        })
        .await;
    let sent = chatra.sent_messages();
    assert_eq!(sent.len(), 1, "{now}");
    let body = &sent[0].body;
    assert_eq!(
        body["text"],
        "Hi Tom Baker, about: Hello, is anyone there? I need to change my delivery address.",
        "case_created saw the single first message"
    );
    assert_eq!(body["agentEmail"], "support@acme.example");
    assert_eq!(body["agentName"], "Acme Support");
    assert_eq!(body["receivedFrom"], "deskie");
    assert_eq!(body["clientId"], CLIENT);

    // The echo settled the reply; it is not stored as a second message.
    assert!(suite.routed(2).await >= 2, "chatStarted and the echo");
    let now = suite.case_when(case, |c| messages_of(c).len() == 2).await;
    let messages = messages_of(&now);
    let authors: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["author"].as_str())
        .collect();
    assert_eq!(authors, ["customer", "system"], "{now}");
    let types = suite.event_types(case).await;
    assert!(
        !types.contains(&"agent_message_mirrored".to_owned()),
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| *t == "reply_delivered").count(),
        1,
        "{types:?}"
    );
    suite.stop().await;
}

#[tokio::test]
async fn pings_go_to_agent_online_ping_and_a_404_there_shows_in_the_integration_status() {
    let (suite, chatra) = support::start_with_chatra(Options::default(), None).await;
    let (_, token) = suite.agent("julia@example.com", &["live_chat"]).await;
    assert_eq!(
        integration(&suite).await["agent_status_sync"]["status"],
        "unknown"
    );
    let status = |s: &'static str| json!({ "status": s });
    let online = suite
        .http
        .put(format!("{}/agents/me/status", suite.api))
        .bearer_auth(&token)
        .json(&status("online"))
        .send()
        .await
        .expect("status");
    assert_eq!(online.status(), 200);
    wait_until("a ping", || !pings(&chatra).is_empty()).await;
    let ping = &pings(&chatra)[0];
    assert_eq!(ping.path, "/api/agentOnlinePing");
    assert_eq!(ping.body["agentEmail"], "julia@example.com");
    assert_eq!(ping.body["agentName"], "julia");
    assert_eq!(ping.body["receivedFrom"], "deskie");
    let working = integration_when(&suite, |i| i["agent_status_sync"]["status"] == "working").await;
    assert_eq!(
        working["agent_status_sync"]["status"], "working",
        "{working}"
    );

    // Chatra stops knowing the path: the next pings get 404.
    chatra.set_agent_online_path("/somewhere/else");
    let failing = integration_when(&suite, |i| i["agent_status_sync"]["status"] == "failing").await;
    let sync = &failing["agent_status_sync"];
    assert_eq!(sync["status"], "failing", "{failing}");
    assert_eq!(sync["http_status"], 404);
    assert!(sync["since"].is_string(), "{sync}");
    assert!(
        sync["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not found")),
        "{sync}"
    );
    // Said once: the verdict is one event however many pings are refused.
    let refused_before = pings(&chatra).len();
    wait_until("two more refused pings", || {
        pings(&chatra).len() >= refused_before + 2
    })
    .await;
    let changes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'integration_agent_status_sync_changed'",
    )
    .fetch_one(suite.store.pool())
    .await
    .expect("count");
    assert_eq!(changes, 2, "working, then failing");
    suite.stop().await;
}

#[tokio::test]
async fn the_visitor_card_fills_the_customer_keeps_unknown_keys_and_moves_the_case_to_its_group() {
    let options = Options {
        visitors: true,
        ..Options::default()
    };
    let (suite, chatra) = support::start_with_chatra(options, None).await;
    chatra.set_visitor(
        support::CLIENT,
        json!({
            "id": support::CLIENT,
            "basicInfo": { "name": "Maria Lopez", "email": "maria.lopez@example.com" },
            "ip": "203.0.113.9",
            "browser": "Firefox 130",
            "os": "macOS 14",
            "language": "es",
            "location": { "city": "Madrid", "country": "Spain" },
            "lastVisit": 1_732_608_000_000_i64,
            "groupId": "chatra-sales",
            "chatLink": "https://app.chatra.io/chat/Q7wErT5yUi9oPa3Sd",
            "pagesViewed": [{ "url": "https://shop.example/track", "title": "Track" }]
        }),
    );
    assert_eq!(
        suite
            .webhook(fixture("chat-started-prechat-form.json"))
            .await,
        200
    );
    let case = suite.case_id(support::CLIENT, support::CHAT);
    let now = suite
        .case_when(case, |c| c["customer"]["details"]["ip"] == "203.0.113.9")
        .await;
    let customer = &now["customer"];
    assert_eq!(
        customer["details"],
        json!({
            "ip": "203.0.113.9", "browser": "Firefox 130", "os": "macOS 14", "language": "es",
            "location": "Madrid, Spain", "last_visit": "2024-11-26T08:00:00Z"
        }),
        "{now}"
    );
    let field = |key: &str| {
        customer["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["key"] == key)
            .map(|f| f["value"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        field("chatra.chatLink"),
        "https://app.chatra.io/chat/Q7wErT5yUi9oPa3Sd"
    );
    assert!(
        field("chatra.pagesViewed")
            .as_str()
            .is_some_and(|v| v.contains("shop.example/track")),
        "{customer}"
    );
    assert_eq!(field("Order number"), "A-10442", "the form's fields stay");
    let moved = suite
        .case_when(case, |c| c["group_id"] == suite.sales_group.as_str())
        .await;
    assert_eq!(moved["group_id"], suite.sales_group.as_str(), "{moved}");
    let (_, events) = suite.get(&format!("/cases/{case}/events")).await;
    let group_change = events
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["type"] == "case_group_changed")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        group_change["data"]["reason"], "chatra_visitor_group",
        "{group_change}"
    );
    assert_eq!(
        chatra.visitor_requests(support::CLIENT).len(),
        1,
        "fetched once"
    );
    suite.stop().await;
}
