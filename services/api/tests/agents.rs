//! Agents: the admin adds, edits and disables them; their tokens act as them.

mod common;

use reqwest::Method;
use serde_json::{Value, json};

use common::{TestApp, spawn_app};

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("json")
}

async fn status_with(app: &TestApp, token: &str, method: Method, path: &str) -> u16 {
    app.with_token(token, method, path)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_agent_is_created_listed_fetched_and_edited() {
    let app = spawn_app().await;
    let created = app
        .post(
            "/api/v1/agents",
            &json!({"email": " Ann@Example.com ", "name": " Ann ", "channel_access": ["live_chat"]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let location = created
        .headers()
        .get("Location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let agent = json_of(created).await;
    let id = agent["id"].as_str().expect("id").to_owned();
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/v1/agents/{id}").as_str())
    );
    let mut keys: Vec<&str> = agent
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "channel_access",
            "created_at",
            "disabled",
            "email",
            "group_ids",
            "id",
            "name",
            "status",
            "token",
            "updated_at"
        ]
    );
    assert_eq!(agent["email"], "Ann@Example.com");
    assert_eq!(agent["name"], "Ann");
    assert_eq!(agent["channel_access"], json!(["live_chat"]));
    assert_eq!(agent["group_ids"], json!([]), "no groups: every group");
    assert_eq!(agent["status"], "offline");
    assert_eq!(agent["disabled"], false);
    assert_eq!(agent["token"].as_str().map(str::len), Some(43));

    app.create_agent("bob@example.com", &[]).await;
    let list = json_of(app.get("/api/v1/agents").await).await;
    let emails: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["email"].as_str())
        .collect();
    assert_eq!(emails, ["Ann@Example.com", "bob@example.com"]);

    let patched = app
        .patch(
            &format!("/api/v1/agents/{id}"),
            &json!({"name": "Ann Lee", "channel_access": []}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let patched = json_of(patched).await;
    assert_eq!(patched["name"], "Ann Lee");
    assert_eq!(patched["email"], "Ann@Example.com");
    assert_eq!(patched["channel_access"], json!([]));
    let fetched = json_of(app.get(&format!("/api/v1/agents/{id}")).await).await;
    assert_eq!(fetched, patched);

    let same = app
        .patch(&format!("/api/v1/agents/{id}"), &json!({"name": "Ann Lee"}))
        .await;
    assert_eq!(same.status(), 200);
    assert_eq!(
        app.event_types().await,
        ["agent_created", "agent_created", "agent_updated"]
    );
    for path in [
        "/api/v1/agents/not-a-uuid".to_owned(),
        format!("/api/v1/agents/{}", uuid::Uuid::new_v4()),
    ] {
        assert_eq!(app.get(&path).await.status(), 404);
        let patch = app.patch(&path, &json!({"name": "X"})).await;
        assert_eq!(patch.status(), 404);
    }
}

#[tokio::test]
async fn the_token_is_shown_once_and_only_its_hash_is_stored() {
    let app = spawn_app().await;
    let agent = app.create_agent("ann@example.com", &["live_chat"]).await;
    let token = agent["token"].as_str().expect("token").to_owned();
    let id = agent["id"].as_str().expect("id");
    let fetched = json_of(app.get(&format!("/api/v1/agents/{id}")).await).await;
    assert!(fetched.get("token").is_none(), "{fetched}");
    let list = json_of(app.get("/api/v1/agents").await).await;
    assert!(!list.to_string().contains(&token));

    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_sha256 FROM agents")
        .fetch_one(app.store.pool())
        .await
        .expect("row");
    use sha2::Digest;
    assert_eq!(stored, sha2::Sha256::digest(token.as_bytes()).to_vec());
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM events")
        .fetch_all(app.store.pool())
        .await
        .expect("events");
    let needle = token.as_bytes();
    assert!(
        payloads
            .iter()
            .all(|p| !p.windows(needle.len()).any(|w| w == needle))
    );
}

#[tokio::test]
async fn a_disabled_agents_token_stops_working_at_once() {
    let app = spawn_app().await;
    let agent = app.create_agent("ann@example.com", &["live_chat"]).await;
    let token = agent["token"].as_str().expect("token");
    let id = agent["id"].as_str().expect("id");
    // Accepted as an agent (403 on an admin route, not 401).
    assert_eq!(
        status_with(&app, token, Method::GET, "/api/v1/groups").await,
        403
    );

    let disabled = app
        .patch(&format!("/api/v1/agents/{id}"), &json!({"disabled": true}))
        .await;
    assert_eq!(disabled.status(), 200);
    assert_eq!(json_of(disabled).await["disabled"], true);
    let refused = app
        .with_token(token, Method::GET, "/api/v1/groups")
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 401);
    assert!(json_of(refused).await["error"].is_string());

    // No way back, and no new token for a disabled agent.
    let enable = app
        .patch(&format!("/api/v1/agents/{id}"), &json!({"disabled": false}))
        .await;
    assert_eq!(enable.status(), 409);
    let rotate = app
        .post(&format!("/api/v1/agents/{id}/token"), &json!({}))
        .await;
    assert_eq!(rotate.status(), 409);
    // The email is free again for a new agent.
    app.create_agent("ANN@example.com", &[]).await;
}

#[tokio::test]
async fn a_rotated_token_replaces_the_old_one() {
    let app = spawn_app().await;
    let agent = app.create_agent("ann@example.com", &[]).await;
    let old = agent["token"].as_str().expect("token");
    let id = agent["id"].as_str().expect("id");
    let rotated = app
        .admin(Method::POST, &format!("/api/v1/agents/{id}/token"))
        .send()
        .await
        .expect("request");
    assert_eq!(rotated.status(), 200);
    let rotated = json_of(rotated).await;
    let new = rotated["token"].as_str().expect("token");
    assert_ne!(new, old);
    assert_eq!(rotated["id"], agent["id"]);
    assert_eq!(
        status_with(&app, old, Method::GET, "/api/v1/agents").await,
        401
    );
    assert_eq!(
        status_with(&app, new, Method::GET, "/api/v1/agents").await,
        403
    );
}

#[tokio::test]
async fn agents_tokens_get_403_on_every_admin_route() {
    let app = spawn_app().await;
    let agent = app.create_agent("ann@example.com", &["live_chat"]).await;
    let token = agent["token"].as_str().expect("token");
    let id = agent["id"].as_str().expect("id");
    let group = app.create_group("Support").await;
    let routes = [
        (Method::GET, "/api/v1/groups".to_owned()),
        (Method::POST, "/api/v1/groups".to_owned()),
        (Method::GET, format!("/api/v1/groups/{group}")),
        (Method::PATCH, format!("/api/v1/groups/{group}")),
        (Method::GET, "/api/v1/integrations/chatra".to_owned()),
        (Method::POST, "/api/v1/integrations/chatra".to_owned()),
        (Method::GET, "/api/v1/agents".to_owned()),
        (Method::POST, "/api/v1/agents".to_owned()),
        (Method::GET, format!("/api/v1/agents/{id}")),
        (Method::PATCH, format!("/api/v1/agents/{id}")),
        (Method::POST, format!("/api/v1/agents/{id}/token")),
    ];
    for (method, path) in routes {
        let response = app
            .with_token(token, method.clone(), &path)
            .json(&json!({"name": "Sneaky", "disabled": true}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 403, "{method} {path}");
        assert_eq!(json_of(response).await, json!({"error": "admin only"}));
    }
    assert_eq!(app.event_types().await, ["agent_created", "group_created"]);
    let unknown = status_with(&app, "no-such-token-at-all", Method::GET, "/api/v1/agents").await;
    assert_eq!(unknown, 401);
}

#[tokio::test]
async fn emails_are_unique_among_enabled_agents_ignoring_case() {
    let app = spawn_app().await;
    let ann = app.create_agent("ann@example.com", &[]).await;
    let bob = app.create_agent("bob@example.com", &[]).await;
    let duplicate = app
        .post(
            "/api/v1/agents",
            &json!({"email": "ANN@example.com", "name": "Other Ann"}),
        )
        .await;
    assert_eq!(duplicate.status(), 409);
    let refusal = json_of(duplicate).await;
    assert_eq!(refusal["field"], "email");
    let bob_id = bob["id"].as_str().expect("id");
    let taken = app
        .patch(
            &format!("/api/v1/agents/{bob_id}"),
            &json!({"email": "Ann@Example.com"}),
        )
        .await;
    assert_eq!(taken.status(), 409);
    // Changing the case of one's own email is no clash.
    let ann_id = ann["id"].as_str().expect("id");
    let own = app
        .patch(
            &format!("/api/v1/agents/{ann_id}"),
            &json!({"email": "Ann@example.com"}),
        )
        .await;
    assert_eq!(own.status(), 200);
    assert_eq!(app.count("agents").await, 2);
}

#[tokio::test]
async fn concurrent_creates_with_one_email_make_one_agent() {
    let app = spawn_app().await;
    let body = json!({"email": "same@example.com", "name": "Same"});
    let attempts = (0..5).map(|_| app.post("/api/v1/agents", &body));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert_eq!(app.count("agents").await, 1);
    assert_eq!(app.admin_events().await, 1);
}

#[tokio::test]
async fn invalid_agent_bodies_are_refused_naming_the_field_and_store_nothing() {
    let app = spawn_app().await;
    let valid = json!({"email": "ann@example.com", "name": "Ann", "channel_access": ["live_chat"]});
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let cases = [
        (json!([]), "body"),
        (json!({"name": "Ann"}), "email"),
        (with("email", json!("not-an-email")), "email"),
        (with("email", json!("ann@localhost")), "email"),
        (with("email", json!(42)), "email"),
        (with("name", json!("")), "name"),
        (with("name", json!("n".repeat(201))), "name"),
        (json!({"email": "ann@example.com"}), "name"),
        (
            with("channel_access", json!(["phone"])),
            "channel_access[0]",
        ),
        (with("channel_access", json!("live_chat")), "channel_access"),
    ];
    for (body, field) in cases {
        let response = app.post("/api/v1/agents", &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let refusal = json_of(response).await;
        assert_eq!(refusal["field"], field, "{body}: {refusal}");
        let message = refusal["error"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{message}");
    }
    assert_eq!(app.count("agents").await, 0);
    assert_eq!(app.count("events").await, 0);

    let agent = app.create_agent("bob@example.com", &[]).await;
    let path = format!("/api/v1/agents/{}", agent["id"].as_str().expect("id"));
    for (body, field) in [
        (json!({"email": "bob"}), "email"),
        (json!({"name": " "}), "name"),
        (
            json!({"channel_access": ["live_chat", "fax"]}),
            "channel_access[1]",
        ),
        (json!({"disabled": "yes"}), "disabled"),
    ] {
        let response = app.patch(&path, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(json_of(response).await["field"], field);
    }
    assert_eq!(app.count("events").await, 1);
}

#[tokio::test]
async fn group_ids_are_created_fetched_patched_and_left_alone_when_not_sent() {
    let app = spawn_app().await;
    let (sales, support) = (
        app.create_group("Sales").await,
        app.create_group("Support").await,
    );
    let created = app
        .post(
            "/api/v1/agents",
            &json!({"email": "ann@example.com", "name": "Ann", "channel_access": ["live_chat"],
                    "group_ids": [sales, support, sales]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let agent = json_of(created).await;
    assert_eq!(
        agent["group_ids"],
        json!([sales, support]),
        "repeats count once"
    );
    let path = format!("/api/v1/agents/{}", agent["id"].as_str().expect("id"));
    let fetched = json_of(app.get(&path).await).await;
    assert_eq!(fetched["group_ids"], json!([sales, support]));
    let listed = json_of(app.get("/api/v1/agents").await).await;
    assert_eq!(listed[0]["group_ids"], json!([sales, support]));

    let patch = |body: Value| {
        let (app, path) = (&app, &path);
        async move {
            let response = app.patch(path, &body).await;
            assert_eq!(response.status(), 200, "{body}");
            json_of(response).await
        }
    };
    let patched = patch(json!({"group_ids": [support]})).await;
    assert_eq!(patched["group_ids"], json!([support]));
    assert_eq!(json_of(app.get(&path).await).await, patched);
    // Not sent, or null: unchanged.
    let renamed = patch(json!({"name": "Ann Lee"})).await;
    assert_eq!(renamed["group_ids"], json!([support]));
    let same = patch(json!({"group_ids": null})).await;
    assert_eq!(same["group_ids"], json!([support]));
    patch(json!({"group_ids": [support]})).await;
    // Empty: every group again.
    let every = patch(json!({"group_ids": []})).await;
    assert_eq!(every["group_ids"], json!([]));
    assert_eq!(
        app.event_types().await,
        [
            "group_created",
            "group_created",
            "agent_created",
            "agent_updated",
            "agent_updated",
            "agent_updated"
        ],
        "a patch that changes nothing appends nothing"
    );
}

#[tokio::test]
async fn unknown_or_malformed_group_ids_are_refused_naming_the_element_and_store_nothing() {
    let app = spawn_app().await;
    let sales = app.create_group("Sales").await;
    let unknown = uuid::Uuid::now_v7();
    let body = |group_ids: Value| {
        json!({"email": "ann@example.com", "name": "Ann", "channel_access": ["live_chat"],
               "group_ids": group_ids})
    };
    for (group_ids, field, says) in [
        (
            json!([sales, unknown]),
            "group_ids[1]",
            "names no existing group",
        ),
        (json!([unknown]), "group_ids[0]", "names no existing group"),
        (
            json!([sales, "sales"]),
            "group_ids[1]",
            "must be a group id",
        ),
        (json!(sales), "group_ids", "must be an array"),
    ] {
        let response = app.post("/api/v1/agents", &body(group_ids.clone())).await;
        assert_eq!(response.status(), 400, "{group_ids}");
        let refusal = json_of(response).await;
        assert_eq!(refusal["field"], field, "{group_ids}: {refusal}");
        let message = refusal["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(field) && message.contains(says),
            "{message}"
        );
    }
    assert_eq!(app.count("agents").await, 0);
    assert_eq!(app.event_types().await, ["group_created"]);

    let agent = app.create_agent("bob@example.com", &["live_chat"]).await;
    let path = format!("/api/v1/agents/{}", agent["id"].as_str().expect("id"));
    let before = json_of(app.get(&path).await).await;
    let response = app
        .patch(
            &path,
            &json!({"name": "Robert", "group_ids": [sales, unknown]}),
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(json_of(response).await["field"], "group_ids[1]");
    assert_eq!(
        json_of(app.get(&path).await).await,
        before,
        "nothing changed"
    );
    assert_eq!(app.event_types().await, ["group_created", "agent_created"]);
}
