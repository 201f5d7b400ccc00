//! Issue 10 end to end: the payload shapes working integrations show (`chatra-api.md` §8),
//! through ingest, routing and the read models, read back through the API.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{CHAT, CLIENT, fixture, messages_of};

const SINGLE_CLIENT: &str = "p4s8d2f6g0h3j7k1l5z9x3c7v1b5n9m2q6w0e4r";
const SINGLE_CHAT: &str = "Lm2Nb4Vc6Xz8As1Sd";

#[tokio::test]
async fn a_chat_started_with_a_single_message_opens_the_case_with_it_once() {
    let suite = support::start().await;
    assert_eq!(
        suite
            .webhook(fixture("chat-started-single-message.json"))
            .await,
        200
    );
    let id = suite.case_id(SINGLE_CLIENT, SINGLE_CHAT);
    let case = suite.case_when(id, |c| !messages_of(c).is_empty()).await;
    let messages = messages_of(&case);
    assert_eq!(messages.len(), 1, "{case}");
    assert_eq!(messages[0]["author"], "customer");
    assert_eq!(
        messages[0]["text"],
        "Hello, is anyone there? I need to change my delivery address."
    );
    assert_eq!(messages[0]["created_at"], "2024-11-27T09:33:20.456Z");
    assert_eq!(case["customer"]["name"], "Tom Baker");

    let repeat = format!(
        r#"{{"eventName":"chatFragment","client":{{"id":"{SINGLE_CLIENT}","chatId":"{SINGLE_CHAT}"}},
        "messages":[{{"id":"Fs1Dg3Hj5Kl7Zx9Cv","type":"client","text":"Hello, is anyone there? I need to change my delivery address."}},
                    {{"id":"Fs2Next","type":"client","text":"Order 77"}}]}}"#
    );
    assert_eq!(suite.webhook(repeat).await, 200);
    let case = suite.case_when(id, |c| messages_of(c).len() >= 2).await;
    let messages = messages_of(&case);
    let texts: Vec<&str> = messages.iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(
        texts,
        [
            "Hello, is anyone there? I need to change my delivery address.",
            "Order 77"
        ],
        "the repeat adds nothing: {case}"
    );
    suite.stop().await;
}

#[tokio::test]
async fn system_messages_are_shown_but_never_reopen_a_closed_case() {
    let suite = support::start().await;
    let id = suite.case_id(CLIENT, CHAT);
    assert_eq!(
        suite
            .webhook(fixture("chat-started-prechat-form.json"))
            .await,
        200
    );
    suite.case_when(id, |c| messages_of(c).len() == 1).await;

    let closed = suite
        .http
        .patch(format!("{}/cases/{id}", suite.api))
        .bearer_auth(support::ADMIN)
        .json(&json!({ "status": "closed" }))
        .send()
        .await
        .expect("patch");
    assert_eq!(closed.status(), 200, "{:?}", closed.text().await);
    assert_eq!(
        suite
            .webhook(fixture("chat-fragment-system-messages.json"))
            .await,
        200
    );
    let case = suite.case_when(id, |c| messages_of(c).len() == 3).await;
    let messages = messages_of(&case);
    let system: Vec<&Value> = messages
        .iter()
        .filter(|m| m["author"] == "system")
        .collect();
    assert_eq!(system.len(), 2, "{case}");
    assert_eq!(system[0]["text"], "Julia closed the chat");
    assert_eq!(system[0]["source"], "chatra");
    assert_eq!(system[0]["agent_id"], Value::Null);
    assert_eq!(
        system[0]["chatra_agent_id"],
        Value::Null,
        "never attributed to an agent"
    );
    assert_eq!(system[1]["text"], "The visitor rated the chat: good");
    assert_eq!(case["status"], "closed", "a system message never reopens");
    let types = suite.event_types(id).await;
    assert!(!types.contains(&"case_resumed".to_owned()), "{types:?}");
    let system_events = types
        .iter()
        .filter(|t| *t == "system_message_received")
        .count();
    assert_eq!(system_events, 2, "{types:?}");

    // The same messages again in another body (ingest would drop an identical one): nothing new.
    let mut again: Value =
        serde_json::from_slice(&fixture("chat-fragment-system-messages.json")).expect("json");
    again["agents"] = json!([]);
    assert_eq!(suite.webhook(again.to_string()).await, 200);
    assert!(suite.routed(3).await >= 3);
    assert_eq!(suite.event_types(id).await, types);
    suite.stop().await;
}

#[tokio::test]
async fn every_attachment_shape_and_created_at_form_reaches_the_case() {
    let suite = support::start().await;
    let id = suite.case_id(CLIENT, CHAT);
    assert_eq!(
        suite
            .webhook(fixture("chat-fragment-attachments.json"))
            .await,
        200
    );
    let case = suite.case_when(id, |c| messages_of(c).len() == 3).await;
    let files: Vec<Value> = messages_of(&case)
        .iter()
        .flat_map(|m| m["attachments"].as_array().cloned().unwrap_or_default())
        .collect();
    let names: Vec<&str> = files
        .iter()
        .filter_map(|f| f["filename"].as_str())
        .collect();
    assert_eq!(
        names,
        ["receipt.png", "label.jpg", "invoice.pdf", "box.jpg"],
        "{case}"
    );
    assert_eq!(
        files[0]["preview_url"],
        "https://files.chatra.example/receipt-preview.png"
    );
    assert_eq!(
        files[1]["preview_url"],
        "https://files.chatra.example/label-preview.jpg"
    );
    assert_eq!(files[2]["mime_type"], "application/pdf");
    assert_eq!(files[2]["size"], 90_210);
    assert_eq!(files[3]["is_inline"], true);
    assert_eq!(files[3]["inline_id"], "img-1");
    assert_eq!(files[3]["is_image"], true);

    assert_eq!(
        suite
            .webhook(fixture("chat-fragment-created-at-forms.json"))
            .await,
        200
    );
    let case = suite.case_when(id, |c| messages_of(c).len() == 8).await;
    let time_of = |text: &str| {
        messages_of(&case)
            .into_iter()
            .find(|m| m["text"] == text)
            .map(|m| m["created_at"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(time_of("integer milliseconds"), "2024-11-26T08:08:20Z");
    assert_eq!(time_of("float milliseconds"), "2024-11-26T08:08:21Z");
    assert_eq!(time_of("numeric string"), "2024-11-26T08:08:22Z");
    assert_eq!(time_of("ISO 8601"), "2024-11-26T08:08:23Z");
    let unreadable = time_of("unreadable time");
    assert!(
        unreadable.is_string(),
        "kept, at the time it was received: {case}"
    );
    suite.stop().await;
}

#[tokio::test]
async fn shapes_we_cannot_route_are_kept_and_set_aside_with_the_reason() {
    let suite = support::start().await;
    let jetstream = suite.bus.jetstream();
    let topology = suite.bus.topology();
    // An eventName nobody has seen, and a known event without its chat id.
    let unknown = r#"{"eventName":"chatRated","client":{"id":"c1","chatId":"h1"},"rating":5}"#;
    let unroutable = r#"{"eventName":"chatFragment","client":{"id":"c1"},"messages":[{"id":"m1","type":"client","text":"lost?"}]}"#;
    assert_eq!(suite.webhook(unknown).await, 200);
    assert_eq!(suite.webhook(unroutable).await, 200);

    let kept = deskie_testkit::read_stream(
        jetstream,
        &topology.webhooks_stream(),
        2,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(kept.len(), 2, "both bodies are in the webhook stream");
    let letters = deskie_testkit::read_stream(
        jetstream,
        &topology.dead_letter_stream(),
        1,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(letters.len(), 1, "only the unroutable one is set aside");
    let reason = deskie_testkit::header(&letters[0], deskie_bus::dead_letter::headers::REASON);
    assert!(reason.contains("client.chatId is missing"), "{reason}");
    suite.stop().await;
}
