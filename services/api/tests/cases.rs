//! Cases through the api: the contract's shape, lists, access by channel, history, and
//! agents' changes (status, assignee, group, customer data).

mod common;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use common::{
    TestApp, agent_says, assigned, chatra_customer_data, customer_says, file, opened, spawn_app,
    status,
};

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("json")
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect()
}

/// An agent's token and id.
async fn agent(app: &TestApp, email: &str, channels: &[&str]) -> (String, String) {
    let agent = app.create_agent(email, channels).await;
    (
        agent["token"].as_str().expect("token").to_owned(),
        agent["id"].as_str().expect("id").to_owned(),
    )
}

async fn as_agent(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let request = app.with_token(token, method, path);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.expect("request")
}

async fn assert_refused(response: reqwest::Response, field: &str) {
    assert_eq!(response.status(), 400, "{field}");
    let refusal = json_of(response).await;
    assert_eq!(refusal["field"], field, "{refusal}");
    let message = refusal["error"].as_str().unwrap_or_default();
    assert!(message.contains(field), "{message}");
}

#[tokio::test]
async fn a_case_has_exactly_the_contract_shape_with_unknowns_null() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let id = Uuid::now_v7();
    app.record_case(
        id,
        vec![
            opened().in_group(group).chat("chat-1").into(),
            chatra_customer_data(),
            customer_says("Hallo 👋, wo ist mein Paket?")
                .at(1_732_608_010)
                .into(),
            agent_says("Ich schaue nach.")
                .chatra_agent("Zx8Cv2Bn4Mq6Lk1Jh")
                .named("Julia")
                .at(1_732_608_020)
                .attaching(file("label.pdf"))
                .into(),
        ],
    )
    .await;
    let response = app.get(&format!("/api/v1/cases/{id}")).await;
    assert_eq!(response.status(), 200);
    let case = json_of(response).await;
    assert_eq!(
        keys(&case),
        [
            "assignee_id",
            "channel",
            "chatra",
            "created_at",
            "customer",
            "group_id",
            "id",
            "integration_id",
            "messages",
            "panel",
            "status",
            "updated_at"
        ]
    );
    assert_eq!(case["id"], id.to_string());
    assert_eq!(case["channel"], "live_chat");
    assert_eq!(case["integration_id"], common::INTEGRATION.to_string());
    assert_eq!(case["status"], "open");
    assert_eq!(case["group_id"], group.to_string());
    assert_eq!(case["assignee_id"], Value::Null);
    assert_eq!(case["panel"], "separate");
    assert_eq!(
        case["chatra"],
        json!({"client_id": "client-chat-1", "chat_id": "chat-1"})
    );
    assert_eq!(
        case["customer"],
        json!({
            "name": "Visitor Anna",
            "email": null,
            "phone": null,
            "fields": [{"key": "order", "value": "A-17"}],
            "details": {
                "ip": "203.0.113.7",
                "browser": "Firefox 133",
                "os": null,
                "language": "de",
                "location": null,
                "last_visit": "2024-11-26T08:00:00Z"
            }
        })
    );
    let messages = case["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    for message in messages {
        assert_eq!(
            keys(message),
            [
                "agent_id",
                "attachments",
                "author",
                "chatra_agent_id",
                "created_at",
                "delivery",
                "id",
                "source",
                "text"
            ]
        );
    }
    assert_eq!(messages[0]["author"], "customer");
    assert_eq!(messages[0]["text"], "Hallo 👋, wo ist mein Paket?");
    assert_eq!(messages[0]["source"], "chatra");
    assert_eq!(messages[0]["delivery"], "received");
    assert_eq!(messages[0]["agent_id"], Value::Null);
    assert_eq!(messages[0]["chatra_agent_id"], Value::Null);
    assert_eq!(messages[0]["attachments"], json!([]));
    assert_eq!(messages[1]["author"], "agent");
    assert_eq!(messages[1]["chatra_agent_id"], "Zx8Cv2Bn4Mq6Lk1Jh");
    assert_eq!(messages[1]["agent_id"], Value::Null);
    assert_eq!(messages[1]["attachments"][0]["filename"], "label.pdf");

    let list = json_of(app.get("/api/v1/cases").await).await;
    let item = &list[0];
    assert!(item.get("messages").is_none(), "lists leave messages out");
    let mut detail_without_messages = case.clone();
    detail_without_messages
        .as_object_mut()
        .map(|o| o.remove("messages"));
    assert_eq!(item, &detail_without_messages);

    for path in [
        "/api/v1/cases/not-a-uuid".to_owned(),
        format!("/api/v1/cases/{}", Uuid::now_v7()),
        format!("/api/v1/cases/{group}"),
        format!("/api/v1/cases/{}/events", Uuid::now_v7()),
    ] {
        assert_eq!(app.get(&path).await.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn lists_are_newest_first_filtered_and_paginated() {
    let app = spawn_app().await;
    let support = app.create_group("Support").await;
    let sales = app.create_group("Sales").await;
    let (_, ann) = agent(&app, "ann@example.com", &["live_chat"]).await;
    let ann: Uuid = ann.parse().expect("uuid");
    let mut opened_ids = Vec::new();
    for n in 0..5 {
        let group = if n % 2 == 0 { support } else { sales };
        opened_ids.push(app.open_case(group, &format!("chat-{n}")).await);
    }
    app.record_case(opened_ids[1], vec![status("pending").from("open").into()])
        .await;
    app.record_case(opened_ids[3], vec![assigned(ann).into()])
        .await;
    let newest_first: Vec<String> = opened_ids.iter().rev().map(Uuid::to_string).collect();

    let all = json_of(app.get("/api/v1/cases").await).await;
    assert_eq!(ids(&all), newest_first);

    // Pages of two, following the cursor through the headers.
    let mut seen = Vec::new();
    let mut path = "/api/v1/cases?limit=2&channel=live_chat".to_owned();
    let mut pages = 0;
    loop {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200);
        let cursor = response
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let link = response
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let page = json_of(response).await;
        pages += 1;
        seen.extend(ids(&page));
        let Some(cursor) = cursor else {
            assert!(link.is_none());
            break;
        };
        assert_eq!(page.as_array().map(Vec::len), Some(2));
        let link = link.expect("a Link header with the cursor");
        assert!(link.ends_with("; rel=\"next\""), "{link}");
        let url = link.trim_start_matches('<').split('>').next().expect("url");
        assert!(url.starts_with(&app.address), "{url}");
        assert!(
            url.contains("limit=2") && url.contains("channel=live_chat"),
            "{url}"
        );
        assert!(url.contains(&format!("cursor={cursor}")), "{url}");
        path = url.trim_start_matches(&app.address).to_owned();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, newest_first);

    let filtered = |query: String| {
        let app = &app;
        async move { ids(&json_of(app.get(&format!("/api/v1/cases?{query}")).await).await) }
    };
    assert_eq!(
        filtered("status=pending".into()).await,
        [opened_ids[1].to_string()]
    );
    assert_eq!(
        filtered(format!("group_id={sales}")).await,
        [opened_ids[3].to_string(), opened_ids[1].to_string()]
    );
    assert_eq!(
        filtered(format!("assignee_id={ann}&status=open")).await,
        [opened_ids[3].to_string()]
    );
    assert_eq!(filtered("status=&group_id=".into()).await, newest_first);

    for (query, field) in [
        ("status=solved", "status"),
        ("channel=email", "channel"),
        ("group_id=support", "group_id"),
        ("assignee_id=42", "assignee_id"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("cursor=bm9wZQ", "cursor"),
    ] {
        assert_refused(app.get(&format!("/api/v1/cases?{query}")).await, field).await;
    }
}

#[tokio::test]
async fn agents_without_live_chat_access_neither_see_nor_touch_live_chat_cases() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let case = app.open_case(group, "chat-1").await;
    let (outsider, _) = agent(&app, "out@example.com", &[]).await;
    let (insider, _) = agent(&app, "in@example.com", &["live_chat"]).await;

    for (method, path, body) in [
        (Method::GET, format!("/api/v1/cases/{case}"), None),
        (Method::GET, format!("/api/v1/cases/{case}/events"), None),
        (
            Method::PATCH,
            format!("/api/v1/cases/{case}"),
            Some(json!({"status": "closed"})),
        ),
        (
            Method::PUT,
            format!("/api/v1/cases/{case}/customer"),
            Some(json!({"name": "Mallory"})),
        ),
        // Refused for access before the body is looked at.
        (
            Method::PATCH,
            format!("/api/v1/cases/{case}"),
            Some(json!({"status": "nonsense"})),
        ),
    ] {
        let response = as_agent(&app, &outsider, method.clone(), &path, body).await;
        assert_eq!(response.status(), 403, "{method} {path}");
        assert!(json_of(response).await["error"].is_string());
    }
    for query in ["", "?channel=live_chat", "?status=open"] {
        let path = format!("/api/v1/cases{query}");
        let response = as_agent(&app, &outsider, Method::GET, &path, None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(json_of(response).await, json!([]), "{path}");
    }
    assert_eq!(app.case_event_count(case).await, 1);

    let list = as_agent(&app, &insider, Method::GET, "/api/v1/cases", None).await;
    assert_eq!(ids(&json_of(list).await), [case.to_string()]);
    let detail = as_agent(
        &app,
        &insider,
        Method::GET,
        &format!("/api/v1/cases/{case}"),
        None,
    )
    .await;
    assert_eq!(detail.status(), 200);
    let none = as_agent(&app, "not-a-token", Method::GET, "/api/v1/cases", None).await;
    assert_eq!(none.status(), 401);
}

#[tokio::test]
async fn the_event_history_is_oldest_first_with_each_events_fields() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let id = Uuid::now_v7();
    app.record_case(
        id,
        vec![
            opened().in_group(group).chat("chat-1").into(),
            customer_says("Hi").at(1_732_608_010).into(),
            chatra_customer_data(),
        ],
    )
    .await;
    let (token, agent_id) = agent(&app, "ann@example.com", &["live_chat"]).await;
    let patched = as_agent(
        &app,
        &token,
        Method::PATCH,
        &format!("/api/v1/cases/{id}"),
        Some(json!({"status": "pending"})),
    )
    .await;
    assert_eq!(patched.status(), 200);

    let response = as_agent(
        &app,
        &token,
        Method::GET,
        &format!("/api/v1/cases/{id}/events"),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let history = json_of(response).await;
    let history = history.as_array().expect("array");
    let types: Vec<&str> = history.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        [
            "case_opened",
            "customer_message_received",
            "customer_data_changed",
            "case_status_changed"
        ]
    );
    for (n, event) in history.iter().enumerate() {
        assert_eq!(
            keys(event),
            [
                "causation_id",
                "correlation_id",
                "data",
                "emitted_by",
                "id",
                "occurred_at",
                "type",
                "version"
            ]
        );
        assert_eq!(event["version"], n + 1);
        assert!(
            event["occurred_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
    }
    assert_eq!(history[0]["emitted_by"], "routing");
    assert_eq!(history[0]["causation_id"], "webhook-1");
    assert_eq!(
        history[0]["data"],
        json!({
            "integration_id": common::INTEGRATION.to_string(),
            "channel": "live_chat",
            "chatra_client_id": "client-chat-1",
            "chatra_chat_id": "chat-1",
            "chatra_group_id": null,
            "group_id": group.to_string(),
            "panel": "separate"
        })
    );
    assert_eq!(history[1]["data"]["text"], "Hi");
    assert_eq!(history[1]["data"]["created_at"], "2024-11-26T08:00:10Z");
    assert_eq!(
        history[2]["data"]["fields"],
        json!([{"key": "order", "value": "A-17"}])
    );
    assert!(history[2]["data"].get("email").is_none());
    let change = &history[3];
    assert_eq!(change["emitted_by"], "api");
    assert_eq!(
        change["data"],
        json!({"from": "open", "to": "pending", "by_agent_id": agent_id, "by_rule_id": null})
    );
    assert_eq!(change["causation_id"], change["correlation_id"]);
}

#[tokio::test]
async fn patch_records_one_event_per_real_change_and_answers_the_new_case() {
    let app = spawn_app().await;
    let support = app.create_group("Support").await;
    let sales = app.create_group("Sales").await;
    let case = app.open_case(support, "chat-1").await;
    let (token, me) = agent(&app, "ann@example.com", &["live_chat"]).await;
    let (_, bob) = agent(&app, "bob@example.com", &["live_chat"]).await;
    let path = format!("/api/v1/cases/{case}");

    let body = json!({"status": "pending", "assignee_id": bob, "group_id": sales});
    let response = as_agent(&app, &token, Method::PATCH, &path, Some(body.clone())).await;
    assert_eq!(response.status(), 200);
    let changed = json_of(response).await;
    assert_eq!(changed["status"], "pending");
    assert_eq!(changed["assignee_id"], bob);
    assert_eq!(changed["group_id"], sales.to_string());
    assert!(changed["messages"].is_array());
    assert_eq!(json_of(app.get(&path).await).await, changed);
    assert_eq!(app.case_event_count(case).await, 4);

    // The same again changes nothing and records nothing.
    let again = as_agent(&app, &token, Method::PATCH, &path, Some(body)).await;
    assert_eq!(again.status(), 200);
    assert_eq!(app.case_event_count(case).await, 4);

    let unassigned = app.patch(&path, &json!({"assignee_id": null})).await;
    assert_eq!(unassigned.status(), 200);
    assert_eq!(json_of(unassigned).await["assignee_id"], Value::Null);

    let history = json_of(app.get(&format!("{path}/events")).await).await;
    let data: Vec<(&str, &Value)> = history
        .as_array()
        .expect("array")
        .iter()
        .skip(1)
        .filter_map(|e| Some((e["type"].as_str()?, &e["data"])))
        .collect();
    assert_eq!(
        data,
        [
            (
                "case_status_changed",
                &json!({"from": "open", "to": "pending", "by_agent_id": me, "by_rule_id": null})
            ),
            (
                "case_assigned",
                &json!({"assignee_id": bob, "by_agent_id": me, "by_rule_id": null})
            ),
            (
                "case_group_changed",
                &json!({"group_id": sales.to_string(), "by_agent_id": me, "by_rule_id": null,
                    "reason": null, "chatra_group_id": null})
            ),
            // The admin acts as no agent.
            (
                "case_assigned",
                &json!({"assignee_id": null, "by_agent_id": null, "by_rule_id": null})
            ),
        ]
    );
}

#[tokio::test]
async fn patch_refusals_name_the_field_and_write_nothing() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let case = app.open_case(group, "chat-1").await;
    let (_, no_access) = agent(&app, "out@example.com", &[]).await;
    let (_, gone) = agent(&app, "gone@example.com", &["live_chat"]).await;
    let disabled = app
        .patch(
            &format!("/api/v1/agents/{gone}"),
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    let path = format!("/api/v1/cases/{case}");
    let cases = [
        (json!([]), "body"),
        (json!({"status": "solved"}), "status"),
        (json!({"status": 3}), "status"),
        (json!({"assignee_id": "ann"}), "assignee_id"),
        (json!({"assignee_id": Uuid::now_v7()}), "assignee_id"),
        (json!({"assignee_id": no_access}), "assignee_id"),
        (json!({"assignee_id": gone}), "assignee_id"),
        (json!({"group_id": "support"}), "group_id"),
        (json!({"group_id": Uuid::now_v7()}), "group_id"),
        // A valid change next to a bad one: nothing of it is written either.
        (
            json!({"status": "closed", "group_id": Uuid::now_v7()}),
            "group_id",
        ),
    ];
    for (body, field) in cases {
        assert_refused(app.patch(&path, &body).await, field).await;
    }
    assert_eq!(app.case_event_count(case).await, 1);
    assert_eq!(json_of(app.get(&path).await).await["status"], "open");

    let unknown = app
        .patch(
            &format!("/api/v1/cases/{}", Uuid::now_v7()),
            &json!({"status": "closed"}),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    let not_uuid = app
        .patch("/api/v1/cases/abc", &json!({"status": "closed"}))
        .await;
    assert_eq!(not_uuid.status(), 404);
}

#[tokio::test]
async fn customer_edits_record_only_what_changes() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let id = Uuid::now_v7();
    app.record_case(
        id,
        vec![
            opened().in_group(group).chat("chat-1").into(),
            chatra_customer_data(),
        ],
    )
    .await;
    let (token, me) = agent(&app, "ann@example.com", &["live_chat"]).await;
    let path = format!("/api/v1/cases/{id}/customer");

    let body =
        json!({"name": "Visitor Anna", "email": " anna@example.com ", "phone": "+49 30 1234"});
    let response = as_agent(&app, &token, Method::PUT, &path, Some(body.clone())).await;
    assert_eq!(response.status(), 200);
    let case = json_of(response).await;
    assert_eq!(case["customer"]["name"], "Visitor Anna");
    assert_eq!(case["customer"]["email"], "anna@example.com");
    assert_eq!(case["customer"]["phone"], "+49 30 1234");
    assert_eq!(
        case["customer"]["fields"],
        json!([{"key": "order", "value": "A-17"}])
    );
    assert_eq!(case["customer"]["details"]["ip"], "203.0.113.7");
    assert_eq!(app.case_event_count(id).await, 3);

    let history = json_of(app.get(&format!("/api/v1/cases/{id}/events")).await).await;
    assert_eq!(history[2]["type"], "customer_data_changed");
    assert_eq!(
        history[2]["data"],
        json!({"email": "anna@example.com", "phone": "+49 30 1234", "source": "agent", "agent_id": me})
    );

    // Unchanged values record nothing; null clears.
    let same = as_agent(&app, &token, Method::PUT, &path, Some(body)).await;
    assert_eq!(same.status(), 200);
    assert_eq!(app.case_event_count(id).await, 3);
    let cleared = as_agent(
        &app,
        &token,
        Method::PUT,
        &path,
        Some(json!({"phone": null})),
    )
    .await;
    let cleared = json_of(cleared).await;
    assert_eq!(cleared["customer"]["phone"], Value::Null);
    assert_eq!(cleared["customer"]["email"], "anna@example.com");
    assert_eq!(app.case_event_count(id).await, 4);

    for (body, field) in [
        (json!("Anna"), "body"),
        (json!({"email": "anna-at-example"}), "email"),
        (json!({"name": "n".repeat(201)}), "name"),
        (json!({"phone": 491234}), "phone"),
        (json!({"name": "Ok", "email": "broken@"}), "email"),
    ] {
        let response = as_agent(&app, &token, Method::PUT, &path, Some(body)).await;
        assert_refused(response, field).await;
    }
    assert_eq!(app.case_event_count(id).await, 4);
}

#[tokio::test]
async fn the_history_shows_notification_outcomes_without_the_destination() {
    use deskie_proto::events::{
        Event, NotificationDelivered, NotificationFailed, NotificationRequested,
    };
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let id = Uuid::now_v7();
    let request = |n: &str, kind: &str| {
        Event::NotificationRequested(NotificationRequested {
            notification_id: n.into(),
            kind: kind.into(),
            text: "New chat".into(),
            destination_secret: b"ciphertext-of-the-webhook-url".to_vec(),
            telegram_chat_id: (kind == "telegram").then(|| "-100200".into()),
            sound: None,
            rule_id: Some("rule-1".into()),
        })
    };
    app.record_case(
        id,
        vec![
            opened().in_group(group).chat("chat-1").into(),
            request("n-1", "slack"),
            request("n-2", "telegram"),
            Event::NotificationDelivered(NotificationDelivered {
                notification_id: "n-1".into(),
                kind: "slack".into(),
                by_rule_id: Some("rule-1".into()),
                attempts: 2,
            }),
            Event::NotificationFailed(NotificationFailed {
                notification_id: "n-2".into(),
                kind: "telegram".into(),
                by_rule_id: Some("rule-1".into()),
                reason: "refused (HTTP 400): Bad Request: chat not found".into(),
                attempts: 1,
            }),
        ],
    )
    .await;
    let history = json_of(app.get(&format!("/api/v1/cases/{id}/events")).await).await;
    assert_eq!(history[3]["type"], "notification_delivered");
    assert_eq!(
        history[3]["data"],
        json!({"notification_id": "n-1", "kind": "slack", "by_rule_id": "rule-1", "attempts": 2})
    );
    assert_eq!(history[4]["type"], "notification_failed");
    assert_eq!(
        history[4]["data"],
        json!({
            "notification_id": "n-2",
            "kind": "telegram",
            "by_rule_id": "rule-1",
            "reason": "refused (HTTP 400): Bad Request: chat not found",
            "attempts": 1
        })
    );
    let shown = history.to_string();
    assert!(!shown.contains("destination"), "{shown}");
    // The case itself is unchanged by the outcomes: only its version moved.
    let case = json_of(app.get(&format!("/api/v1/cases/{id}")).await).await;
    assert_eq!(case["status"], "open");
    assert!(
        case["messages"].as_array().is_some_and(Vec::is_empty),
        "{case}"
    );
}
