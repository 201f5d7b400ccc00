//! The ingest contract (BRIEF §3), line by line, against real PostgreSQL and NATS.

mod common;

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use deskie_proto::Message;
use deskie_proto::webhooks::ChatraWebhookReceived;
use futures::StreamExt;

#[tokio::test]
async fn a_webhook_is_acknowledged_once_it_is_stored_in_jetstream() {
    let ingest = common::spawn().await;
    let body = common::fixture("chat-started-prechat-form.json");
    let response = ingest.post(body.clone()).await;
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        json,
        serde_json::json!({ "status": "accepted", "duplicate": false })
    );
    assert_eq!(ingest.stored_webhooks().await, 1);

    let stream = ingest
        .bus
        .jetstream()
        .get_stream(ingest.bus.topology().webhooks_stream())
        .await
        .expect("stream");
    let consumer = stream
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let message = consumer
        .messages()
        .await
        .expect("messages")
        .next()
        .await
        .expect("one")
        .expect("ok");
    let received = ChatraWebhookReceived::decode(message.payload.as_ref()).expect("protobuf");
    assert_eq!(received.integration_id, ingest.integration_id.to_string());
    assert_eq!(received.event_name, "chatStarted");
    assert_eq!(
        deskie_proto::webhook_body::decode(&received).expect("body"),
        body
    );
    let msg_id = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Msg-Id"))
        .map(|v| v.as_str().to_owned());
    assert_eq!(
        msg_id.as_deref(),
        Some(deskie_ingest::dedupe_key(&ingest.integration_id, &body).as_str())
    );
    assert_eq!(received.dedupe_key, msg_id.unwrap_or_default());
    assert!(
        message
            .subject
            .ends_with(&format!("{}.chatStarted", ingest.integration_id))
    );
}

#[tokio::test]
async fn the_same_body_delivered_again_or_concurrently_is_one_event() {
    let ingest = common::spawn().await;
    let body = common::fixture("chat-fragment-agent-from-chatra-ui.json");
    assert_eq!(ingest.post(body.clone()).await.status(), 200);
    let again: serde_json::Value = ingest.post(body.clone()).await.json().await.expect("json");
    assert_eq!(again["duplicate"], true);
    let concurrent = futures::future::join_all((0..5).map(|_| ingest.post(body.clone()))).await;
    assert!(concurrent.iter().all(|r| r.status() == 200));
    assert_eq!(ingest.stored_webhooks().await, 1);
    // A different body is a different event.
    assert_eq!(
        ingest
            .post(common::fixture("chat-transcript.json"))
            .await
            .status(),
        200
    );
    assert_eq!(ingest.stored_webhooks().await, 2);
}

#[tokio::test]
async fn the_token_may_come_in_the_x_deskie_token_header() {
    let ingest = common::spawn().await;
    let url = format!("{}/webhooks/chatra/{}", ingest.base, ingest.integration_id);
    let response = ingest
        .http
        .post(&url)
        .header("X-Deskie-Token", common::TOKEN)
        .header("content-type", "application/json")
        .body(common::fixture("chat-transcript.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn missing_or_wrong_tokens_get_401_and_publish_nothing() {
    let ingest = common::spawn().await;
    let base = format!("{}/webhooks/chatra/{}", ingest.base, ingest.integration_id);
    let mut one_off = common::TOKEN.to_owned();
    one_off.replace_range(5..6, "X");
    let longer = format!("{}x", common::TOKEN);
    let shorter = &common::TOKEN[..common::TOKEN.len() - 1];
    for url in [
        base.clone(),
        format!("{base}?token="),
        format!("{base}?token={one_off}"),
        format!("{base}?token={longer}"),
        format!("{base}?token={shorter}"),
    ] {
        let response = ingest
            .http
            .post(&url)
            .body(common::fixture("chat-transcript.json"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401, "{url}");
    }
    // A wrong header token is refused too, and a malformed body is not even looked at.
    let response = ingest
        .http
        .post(&base)
        .header("X-Deskie-Token", one_off)
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    assert_eq!(ingest.stored_webhooks().await, 0);
}

#[tokio::test]
async fn unknown_or_disconnected_integrations_get_404() {
    let ingest = common::spawn().await;
    let body = common::fixture("chat-transcript.json");
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let url = format!(
            "{}/webhooks/chatra/{id}?token={}",
            ingest.base,
            common::TOKEN
        );
        let response = ingest
            .http
            .post(&url)
            .body(body.clone())
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404, "{id}");
    }
    common::disconnect_integration(&ingest.store, ingest.integration_id).await;
    assert_eq!(ingest.post(body).await.status(), 404);
    assert_eq!(ingest.stored_webhooks().await, 0);
}

#[tokio::test]
async fn malformed_bodies_get_400_naming_the_problem_and_publish_nothing() {
    let ingest = common::spawn().await;
    for (body, expected) in [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1,2]", "JSON object"),
        ("{}", "eventName"),
        (r#"{"eventName":7}"#, "eventName"),
    ] {
        let response = ingest.post(body).await;
        assert_eq!(response.status(), 400, "{body}");
        let json: serde_json::Value = response.json().await.expect("json");
        let error = json["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{body}: {error}");
    }
    assert_eq!(ingest.stored_webhooks().await, 0);
}

#[tokio::test]
async fn a_non_json_content_type_gets_415() {
    let ingest = common::spawn().await;
    let response = ingest
        .http
        .post(ingest.url())
        .header("content-type", "text/plain")
        .body(common::fixture("chat-transcript.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 415);
    assert_eq!(ingest.stored_webhooks().await, 0);
}

#[tokio::test]
async fn unknown_event_names_and_unknown_fields_are_accepted_and_kept() {
    let ingest = common::spawn().await;
    let response = ingest.post(r#"{"eventName":"chatRated","rating":5}"#).await;
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = response.json().await.expect("json");
    assert_eq!(json["status"], "ignored");
    assert_eq!(
        ingest.stored_webhooks().await,
        1,
        "an unknown event is kept (not routed), so it can be dumped and studied"
    );

    let with_extras = r#"{"eventName":"chatFragment","newTopLevel":{"a":[1]},"client":{"id":"c1","chatId":"h1","futureField":true},
        "messages":[{"id":"m1","type":"client","text":"hi","reactions":["👍"]}]}"#;
    assert_eq!(ingest.post(with_extras).await.status(), 200);
    assert_eq!(ingest.stored_webhooks().await, 2);
}

#[tokio::test]
async fn a_known_event_without_its_case_key_is_kept_not_refused() {
    let ingest = common::spawn().await;
    for body in [
        r#"{"eventName":"chatFragment","client":{"chatId":"c"},"messages":[{"id":"m","type":"client","text":"hi"}]}"#,
        r#"{"eventName":"chatStarted","client":{"id":"c"},"message":{"id":"m","type":"client","text":"hi"}}"#,
        r#"{"eventName":"chatTranscript","messages":[]}"#,
    ] {
        let response = ingest.post(body).await;
        assert_eq!(response.status(), 200, "{body}");
    }
    assert_eq!(ingest.stored_webhooks().await, 3);
}

fn json_body_of_exact_size(size: usize) -> Vec<u8> {
    let head =
        r#"{"eventName":"chatFragment","client":{"id":"c1","chatId":"h1"},"messages":[],"pad":""#;
    let tail = r#""}"#;
    let mut body = head.as_bytes().to_vec();
    body.extend(std::iter::repeat_n(b'a', size - head.len() - tail.len()));
    body.extend_from_slice(tail.as_bytes());
    assert_eq!(body.len(), size);
    body
}

#[tokio::test]
async fn a_body_of_exactly_1_mib_is_accepted_and_one_byte_more_gets_413() {
    let ingest = common::spawn().await;
    let limit = 1024 * 1024;
    assert_eq!(
        ingest.post(json_body_of_exact_size(limit)).await.status(),
        200
    );
    assert_eq!(
        ingest
            .post(json_body_of_exact_size(limit + 1))
            .await
            .status(),
        413
    );

    // Without a Content-Length (chunked), the limit is enforced while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = json_body_of_exact_size(limit + 1)
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let streamed = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let response = ingest.post(streamed).await;
    assert_eq!(response.status(), 413);
    assert_eq!(ingest.stored_webhooks().await, 1);
}

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let ingest = common::spawn().await;
    let get = |path: &str| ingest.http.get(format!("{}{path}", ingest.base)).send();
    assert_eq!(get("/healthz").await.expect("healthz").status(), 200);
    let ready: serde_json::Value = get("/readyz")
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["checks"]["nats"], true);
    assert_eq!(ready["checks"]["database"], true);
    ingest.post(common::fixture("chat-transcript.json")).await;
    ingest.post("{bad").await;
    let metrics = get("/metrics")
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"ingest_webhooks_total{outcome="accepted"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ingest_webhooks_total{outcome="bad_request"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains(common::TOKEN));
}

#[tokio::test]
async fn nats_down_gives_503_and_ingest_recovers_by_itself_when_nats_returns() {
    let mut server = deskie_testkit::NatsServer::start_new().await;
    let ingest = common::spawn_on(deskie_testkit::TestNats::on(server.url())).await;
    assert_eq!(
        ingest
            .post(common::fixture("chat-started-prechat-form.json"))
            .await
            .status(),
        200
    );

    server.stop();
    // With NATS gone the PubAck never comes: 503 once the publish gives up, whether or not
    // the client has noticed the dead connection yet.
    let body = common::fixture("chat-transcript.json");
    let response = ingest.post(body.clone()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );

    server.start().await;
    let mut status = 0;
    for _ in 0..100 {
        status = ingest.post(body.clone()).await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200, "ingest did not recover after NATS came back");
    assert_eq!(
        ingest.stored_webhooks().await,
        2,
        "the first webhook survived the restart; the retried one is stored once"
    );
}

#[tokio::test]
async fn accepted_webhooks_carry_their_chat_lane_for_ordered_routing() {
    let ingest = common::spawn().await;
    assert_eq!(
        ingest
            .post(common::fixture("chat-transcript.json"))
            .await
            .status(),
        200
    );
    let messages = deskie_testkit::read_stream(
        ingest.bus.jetstream(),
        &ingest.bus.topology().webhooks_stream(),
        1,
        Duration::from_secs(5),
    )
    .await;
    let expected = deskie_domain::case::case_id_for(
        ingest.integration_id,
        "k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s",
        "Q7wErT5yUi9oPa3Sd",
    );
    assert_eq!(
        deskie_testkit::header(&messages[0], deskie_bus::CHAT_LANE_HEADER),
        expected.to_string()
    );
}

/// A distinct body each time (an unknown field, which ingest keeps and ignores), so the
/// duplicate window does not absorb it.
fn distinct_body(n: usize) -> Vec<u8> {
    let mut json: serde_json::Value =
        serde_json::from_slice(&common::fixture("chat-started-prechat-form.json")).expect("json");
    json["deskieTestPad"] = serde_json::json!(n);
    serde_json::to_vec(&json).expect("bytes")
}

#[tokio::test]
async fn a_full_webhook_stream_gives_503_with_a_clear_error_counted_and_nothing_stored() {
    let limits = deskie_bus::StreamLimits {
        webhooks_max_bytes: 8 * 1024,
        ..Default::default()
    };
    let ingest = common::spawn_with_limits(limits).await;
    let mut accepted = 0;
    let mut refused = None;
    for n in 0..100 {
        let body = distinct_body(n);
        let response = ingest.post(body.clone()).await;
        match response.status().as_u16() {
            200 => accepted += 1,
            503 => {
                refused = Some((body, response));
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(accepted >= 1, "the first webhooks fit");
    let (body, response) = refused.expect("the stream filled up");
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("30")
    );
    let json: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        json,
        serde_json::json!({ "error": "the webhook stream is full; retry later" })
    );
    assert_eq!(
        ingest.stored_webhooks().await,
        accepted,
        "the refused webhook was not stored"
    );
    let metrics = ingest.metrics().await;
    assert!(
        metrics.contains(r#"ingest_webhooks_total{outcome="stream_full"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("ingest_webhook_stream_full 1"),
        "{metrics}"
    );

    // An operator raises the limit (every process provisions the new one): Chatra's retry
    // of the same body is stored.
    let raised = deskie_bus::Topology::new(ingest.bus.topology().prefix());
    let bus = deskie_bus::Bus::connect(&ingest.nats_url, raised, "operator")
        .await
        .expect("connect");
    bus.provision().await.expect("raise the limit");
    let response = ingest.post(body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(ingest.stored_webhooks().await, accepted + 1);
    assert!(
        ingest
            .metrics()
            .await
            .contains("ingest_webhook_stream_full 0"),
        "the gauge falls back"
    );
}
