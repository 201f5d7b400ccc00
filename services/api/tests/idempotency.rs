//! `Idempotency-Key` on the creating POSTs: the same key and body get the first answer byte
//! for byte (marked `Idempotent-Replayed: true`) and act once; another body gets 422, a key
//! still in flight 409; bad keys 400; keys are the caller's own; a 5xx is not kept.

mod common;

use futures::future::join_all;
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use common::{TestApp, spawn_app};

const KEY: &str = "Idempotency-Key";
const REPLAYED: &str = "Idempotent-Replayed";

/// Status, the headers a replay must repeat, and the raw body of an answer.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    replayed: bool,
    body: Vec<u8>,
}

async fn answer(response: reqwest::Response) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let status = response.status().as_u16();
    let content_type = header("content-type");
    let location = header("location");
    let replayed = match header(REPLAYED).as_deref() {
        None => false,
        Some("true") => true,
        Some(other) => panic!("{REPLAYED}: {other}"),
    };
    let body = response.bytes().await.expect("body").to_vec();
    Answer {
        status,
        content_type,
        location,
        replayed,
        body,
    }
}

/// `POST path` with `body` as the admin, with `key`.
async fn admin_post(app: &TestApp, path: &str, key: &str, body: &Value) -> Answer {
    let response = app
        .admin(Method::POST, path)
        .header(KEY, key)
        .json(body)
        .send()
        .await
        .expect("request");
    answer(response).await
}

/// `POST /api/v1/cases/{case}/replies` with `token`, `key` and `text`.
async fn reply(app: &TestApp, token: &str, case: Uuid, key: &str, text: &str) -> Answer {
    let response = app
        .with_token(
            token,
            Method::POST,
            &format!("/api/v1/cases/{case}/replies"),
        )
        .header(KEY, key)
        .json(&json!({ "text": text }))
        .send()
        .await
        .expect("request");
    answer(response).await
}

fn json_of(answer: &Answer) -> Value {
    serde_json::from_slice(&answer.body).expect("json")
}

/// The `ReplyRequested` events of `case`, as (message_id, agent_id).
async fn replies_requested(app: &TestApp, case: Uuid) -> Vec<(String, Option<String>)> {
    let history = app.store.load_stream(case).await.expect("history");
    history
        .iter()
        .filter_map(|e| match &e.envelope.event {
            Some(deskie_proto::events::Event::ReplyRequested(r)) => {
                Some((r.message_id.clone(), r.agent_id.clone()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_same_key_and_body_get_the_first_answer_and_create_one_group() {
    let app = spawn_app().await;
    let body = json!({"name": "Support"});

    let first = admin_post(&app, "/api/v1/groups", "create-support-1", &body).await;
    assert_eq!(first.status, 201);
    assert!(!first.replayed);
    let again = admin_post(&app, "/api/v1/groups", "create-support-1", &body).await;
    assert!(again.replayed);
    assert_eq!(
        Answer {
            replayed: false,
            ..again
        },
        first,
        "the stored answer, byte for byte"
    );
    assert_eq!(app.count("groups").await, 1);
    assert_eq!(app.admin_events().await, 1);

    // The same body without a key, or with another key, acts again.
    assert_eq!(app.post("/api/v1/groups", &body).await.status(), 201);
    let other = admin_post(&app, "/api/v1/groups", "create-support-2", &body).await;
    assert_eq!((other.status, other.replayed), (201, false));
    assert_eq!(app.count("groups").await, 3);
}

#[tokio::test]
async fn a_replayed_reply_is_requested_once() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let case = app.open_case(group, "chat-1").await;
    let agent = app.create_agent("tom@example.com", &["live_chat"]).await;
    let token = agent["token"].as_str().expect("token");

    let first = reply(&app, token, case, "reply-1", "On its way").await;
    assert_eq!((first.status, first.replayed), (202, false));
    let again = reply(&app, token, case, "reply-1", "On its way").await;
    assert_eq!((again.status, again.replayed), (202, true));
    assert_eq!(again.body, first.body);

    let requested = replies_requested(&app, case).await;
    // Outbound sends one reply to Chatra per ReplyRequested.
    assert_eq!(requested.len(), 1, "one ReplyRequested: {requested:?}");
    assert_eq!(json_of(&first)["message_id"], requested[0].0.as_str());
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_and_acts_no_more() {
    let app = spawn_app().await;
    let first = admin_post(&app, "/api/v1/groups", "k", &json!({"name": "Support"})).await;
    assert_eq!(first.status, 201);

    let other = admin_post(&app, "/api/v1/groups", "k", &json!({"name": "Sales"})).await;
    assert_eq!(other.status, 422);
    assert!(!other.replayed);
    let error = json_of(&other);
    assert_eq!(error["field"], KEY);
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("different request body")),
        "{error}"
    );
    assert_eq!(app.count("groups").await, 1);

    // The first body still gets its answer.
    let again = admin_post(&app, "/api/v1/groups", "k", &json!({"name": "Support"})).await;
    assert_eq!((again.status, again.replayed), (201, true));
    assert_eq!(again.body, first.body);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_act_once() {
    let app = spawn_app().await;
    let body = json!({"name": "Support"});
    let requests = (0..8).map(|_| async {
        let response = app
            .admin(Method::POST, "/api/v1/groups")
            .header(KEY, "concurrent")
            .json(&body)
            .send()
            .await
            .expect("request");
        let retry_after = response.headers().get("retry-after").cloned();
        (answer(response).await, retry_after)
    });
    let answers = join_all(requests).await;

    let acted: Vec<_> = answers
        .iter()
        .filter(|(a, _)| a.status == 201 && !a.replayed)
        .collect();
    assert_eq!(acted.len(), 1, "{answers:?}");
    for (answer, retry_after) in &answers {
        match answer.status {
            201 => assert_eq!(answer.body, acted[0].0.body),
            409 => {
                assert_eq!(json_of(answer)["field"], KEY);
                assert!(retry_after.is_some(), "a 409 says when to retry");
            }
            other => panic!("unexpected {other}: {answer:?}"),
        }
    }
    assert_eq!(app.count("groups").await, 1);
    assert_eq!(app.admin_events().await, 1);
}

#[tokio::test]
async fn bad_keys_are_refused_naming_the_header_and_change_nothing() {
    let app = spawn_app().await;
    let too_long = "k".repeat(256);
    let bad: Vec<Vec<HeaderValue>> = vec![
        vec![HeaderValue::from_static("")],
        vec![HeaderValue::from_str(&too_long).expect("ascii")],
        vec![HeaderValue::from_bytes(b"cl\xe9").expect("opaque bytes")],
        vec![HeaderValue::from_static("a\tb")],
        vec![HeaderValue::from_static("a"), HeaderValue::from_static("b")],
    ];
    for values in bad {
        let mut request = app
            .admin(Method::POST, "/api/v1/groups")
            .json(&json!({"name": "Support"}));
        for value in &values {
            request = request.header(KEY, value.clone());
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), 400, "{values:?}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["field"], KEY, "{values:?}");
        assert!(error["error"].as_str().is_some_and(|e| e.contains(KEY)));
    }
    let longest = "k".repeat(255);
    let ok = admin_post(&app, "/api/v1/groups", &longest, &json!({"name": "Sales"})).await;
    assert_eq!(ok.status, 201);
    assert_eq!(app.count("groups").await, 1);
    assert_eq!(app.count("api_idempotency_keys").await, 1);

    // An agent on an admin resource is refused as before, whatever its key.
    let agent = app.create_agent("tom@example.com", &["live_chat"]).await;
    let token = agent["token"].as_str().expect("token");
    let refused = app
        .with_token(token, Method::POST, "/api/v1/groups")
        .header(KEY, "")
        .json(&json!({"name": "Support"}))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 403);
}

#[tokio::test]
async fn callers_do_not_see_each_others_answers() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let case = app.open_case(group, "chat-1").await;
    let tom = app.create_agent("tom@example.com", &["live_chat"]).await;
    let ann = app.create_agent("ann@example.com", &["live_chat"]).await;
    let tom_token = tom["token"].as_str().expect("token");
    let ann_token = ann["token"].as_str().expect("token");

    let by_tom = reply(&app, tom_token, case, "same-key", "Hello").await;
    let by_ann = reply(&app, ann_token, case, "same-key", "Hello").await;
    let by_admin = reply(&app, common::ADMIN_TOKEN, case, "same-key", "Hello").await;
    for answer in [&by_tom, &by_ann, &by_admin] {
        assert_eq!((answer.status, answer.replayed), (202, false));
    }
    let requested = replies_requested(&app, case).await;
    assert_eq!(requested.len(), 3, "{requested:?}");
    let agents: Vec<_> = requested.iter().map(|(_, agent)| agent.clone()).collect();
    assert_eq!(
        agents,
        [
            tom["id"].as_str().map(str::to_owned),
            ann["id"].as_str().map(str::to_owned),
            None
        ]
    );

    // The same key on another path is another key too.
    let other_case = app.open_case(group, "chat-2").await;
    let elsewhere = reply(&app, tom_token, other_case, "same-key", "Hello").await;
    assert_eq!((elsewhere.status, elsewhere.replayed), (202, false));
}

#[tokio::test]
async fn client_errors_are_kept_server_errors_are_not() {
    let app = spawn_app().await;

    let refused = admin_post(&app, "/api/v1/groups", "empty", &json!({"name": " "})).await;
    assert_eq!((refused.status, refused.replayed), (400, false));
    let again = admin_post(&app, "/api/v1/groups", "empty", &json!({"name": " "})).await;
    assert_eq!((again.status, again.replayed), (400, true));
    assert_eq!(again.body, refused.body);

    // A store failure: the first answer is a 500, which is not kept.
    let pool = app.store.pool();
    sqlx::query("ALTER TABLE groups RENAME TO groups_away")
        .execute(pool)
        .await
        .expect("rename");
    let failed = admin_post(
        &app,
        "/api/v1/groups",
        "retry-me",
        &json!({"name": "Support"}),
    )
    .await;
    assert_eq!(failed.status, 500);
    sqlx::query("ALTER TABLE groups_away RENAME TO groups")
        .execute(pool)
        .await
        .expect("rename back");
    let retried = admin_post(
        &app,
        "/api/v1/groups",
        "retry-me",
        &json!({"name": "Support"}),
    )
    .await;
    assert_eq!((retried.status, retried.replayed), (201, false));
    assert_eq!(app.count("groups").await, 1);
}

#[tokio::test]
async fn a_replayed_token_rotation_shows_the_same_token_which_is_stored_only_encrypted() {
    let app = spawn_app().await;
    let agent = app.create_agent("tom@example.com", &["live_chat"]).await;
    let path = format!("/api/v1/agents/{}/token", agent["id"].as_str().expect("id"));

    let first = admin_post(&app, &path, "rotate-1", &json!({})).await;
    assert_eq!((first.status, first.replayed), (200, false));
    let again = admin_post(&app, &path, "rotate-1", &json!({})).await;
    assert_eq!((again.status, again.replayed), (200, true));
    assert_eq!(again.body, first.body);
    let token = json_of(&first)["token"].as_str().expect("token").to_owned();

    // One rotation: the token shown (twice) is the one that works.
    let rotations: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'agent_token_rotated'")
            .fetch_one(app.store.pool())
            .await
            .expect("count");
    assert_eq!(rotations, 1);
    let me = app
        .with_token(&token, Method::GET, "/api/v1/cases")
        .send()
        .await
        .expect("request");
    assert_eq!(me.status(), 200);

    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT convert_to(k::text, 'UTF8') FROM api_idempotency_keys k
         UNION ALL SELECT response_body_encrypted FROM api_idempotency_keys",
    )
    .fetch_all(app.store.pool())
    .await
    .expect("rows");
    assert!(
        !rows
            .iter()
            .any(|row| row.windows(token.len()).any(|w| w == token.as_bytes())),
        "the token is stored in clear"
    );
}

#[tokio::test]
async fn other_methods_and_requests_without_a_key_are_unchanged() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    for _ in 0..2 {
        let listed = app
            .admin(Method::GET, "/api/v1/groups")
            .header(KEY, "k")
            .send()
            .await
            .expect("request");
        assert_eq!(listed.status(), 200);
        assert!(listed.headers().get(REPLAYED).is_none());
        let renamed = app
            .admin(Method::PATCH, &format!("/api/v1/groups/{group}"))
            .header(KEY, "k")
            .json(&json!({"name": "Care"}))
            .send()
            .await
            .expect("request");
        assert_eq!(renamed.status(), 200);
        assert!(renamed.headers().get(REPLAYED).is_none());
    }
    assert_eq!(app.count("api_idempotency_keys").await, 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_as_without_a_key() {
    let app = spawn_app().await;
    let name = "x".repeat(70 * 1024);
    let with_key = admin_post(&app, "/api/v1/groups", "big", &json!({ "name": name })).await;
    let without = app.post("/api/v1/groups", &json!({ "name": name })).await;
    assert_eq!(with_key.status, 413);
    assert_eq!(without.status(), 413);
    assert_eq!(with_key.body, without.bytes().await.expect("body").to_vec());
    assert_eq!(app.count("api_idempotency_keys").await, 0);
}

/// Waits until a request of the app waits for an advisory lock (a stream's lock) in its
/// database.
async fn wait_for_a_lock_waiter(app: &TestApp) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks
              WHERE locktype = 'advisory' AND NOT granted
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(app.store.pool())
        .await
        .expect("locks");
        if waiting > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reply never waited for the case's lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_retry_while_the_first_runs_gets_409_then_the_first_answer_even_if_its_client_left() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let case = app.open_case(group, "chat-1").await;
    let agent = app.create_agent("tom@example.com", &["live_chat"]).await;
    let token = agent["token"].as_str().expect("token").to_owned();
    let path = format!("/api/v1/cases/{case}/replies");

    // Hold the case's stream lock so the first reply waits inside its handler.
    let held = app
        .store
        .begin_stream(deskie_store::StreamKey::new("case", case))
        .await
        .expect("lock");
    // The first client sends its request over a raw connection and then hangs up (as one
    // that timed out does): actix runs the handler to its end all the same, and its answer
    // must be kept for the retry.
    let body = json!({ "text": "On its way" }).to_string();
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         {KEY}: first\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut first = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    first.write_all(raw.as_bytes()).await.expect("send");
    wait_for_a_lock_waiter(&app).await;

    let meanwhile = app
        .with_token(&token, Method::POST, &path)
        .header(KEY, "first")
        .json(&json!({ "text": "On its way" }))
        .send()
        .await
        .expect("request");
    assert_eq!(meanwhile.status(), 409);
    assert_eq!(
        meanwhile
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let other_body = reply(&app, &token, case, "first", "Something else").await;
    assert_eq!(other_body.status, 422);

    drop(first);
    held.commit().await.expect("release the lock");

    // Its answer was kept all the same: the retry gets it once the first finished.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let replayed = loop {
        let retry = reply(&app, &token, case, "first", "On its way").await;
        if retry.status != 409 {
            break retry;
        }
        assert!(std::time::Instant::now() < deadline, "still in flight");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!((replayed.status, replayed.replayed), (202, true));
    let requested = replies_requested(&app, case).await;
    assert_eq!(requested.len(), 1, "{requested:?}");
    assert_eq!(json_of(&replayed)["message_id"], requested[0].0.as_str());
}

#[tokio::test]
async fn integrations_agents_and_rules_are_created_once_per_key() {
    let app = spawn_app().await;
    let group = app.create_group("Support").await;
    let creations = [
        (
            "/api/v1/integrations/chatra",
            common::chatra_body(group, "pub-key-1", "secret-key-1"),
            "integrations",
        ),
        (
            "/api/v1/agents",
            json!({"email": "tom@example.com", "name": "Tom", "channel_access": ["live_chat"]}),
            "agents",
        ),
        (
            "/api/v1/rules",
            json!({"name": "Greet", "trigger": "case_created",
                   "actions": [{"type": "reply", "text": "Hi, we are on it."}]}),
            "rules",
        ),
    ];
    for (path, body, table) in creations {
        let first = admin_post(&app, path, "create-1", &body).await;
        assert_eq!((first.status, first.replayed), (201, false), "{path}");
        let again = admin_post(&app, path, "create-1", &body).await;
        assert!(again.replayed, "{path}");
        assert_eq!(
            Answer {
                replayed: false,
                ..again
            },
            first,
            "{path}"
        );
        assert_eq!(app.count(table).await, 1, "{path}");
    }
}
