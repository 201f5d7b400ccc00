//! Issue 3 end to end: Chatra webhooks through ingest, routing and the read models, read
//! back through the API — every service in this process, real PostgreSQL and NATS.

mod support;

use deskie_testkit::case_events::reply;
use deskie_testkit::record_case;
use serde_json::{Value, json};
use support::{CHAT, CLIENT, fixture, messages_of};

#[tokio::test]
async fn a_chat_started_with_a_contact_form_becomes_a_live_chat_case() {
    let suite = support::start().await;
    assert_eq!(
        suite
            .webhook(fixture("chat-started-prechat-form.json"))
            .await,
        200
    );
    let id = suite.case_id(CLIENT, CHAT);
    let case = suite.case_when(id, |c| !messages_of(c).is_empty()).await;

    assert_eq!(case["id"], id.to_string());
    assert_eq!(case["channel"], "live_chat");
    assert_eq!(case["status"], "open");
    assert_eq!(case["integration_id"], suite.integration_id.to_string());
    assert_eq!(case["group_id"], suite.default_group);
    assert_eq!(case["assignee_id"], Value::Null);
    assert_eq!(case["panel"], "separate");
    assert_eq!(
        case["chatra"],
        json!({ "client_id": CLIENT, "chat_id": CHAT })
    );
    let customer = &case["customer"];
    assert_eq!(customer["name"], "Maria Lopez");
    assert_eq!(customer["email"], "maria.lopez@example.com");
    assert_eq!(customer["phone"], "+34 600 123 456");
    let keys: Vec<&str> = customer["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    assert_eq!(
        keys,
        ["Customer tier", "Account ID", "Order number", "Topic"]
    );
    assert_eq!(
        customer["details"],
        json!({ "ip": null, "browser": null, "os": null, "language": null, "location": null, "last_visit": null }),
        "unknown values are null, never invented"
    );
    let messages = messages_of(&case);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["author"], "customer");
    assert_eq!(messages[0]["source"], "chatra");
    assert_eq!(messages[0]["delivery"], "received");
    assert_eq!(
        messages[0]["text"],
        "Hi, my parcel A-10442 still hasn't arrived. Can you help?"
    );

    let (status, list) = suite.get("/cases?channel=live_chat").await;
    assert_eq!(status, 200);
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .any(|c| c["id"] == id.to_string())
    );
}

#[tokio::test]
async fn a_fragment_without_chat_started_opens_the_case_and_keeps_agent_replies_typed_in_chatra() {
    let suite = support::start().await;
    assert_eq!(
        suite
            .webhook(fixture("chat-fragment-agent-from-chatra-ui.json"))
            .await,
        200
    );
    let case = suite
        .case_when(suite.case_id(CLIENT, CHAT), |c| messages_of(c).len() == 3)
        .await;
    let messages = messages_of(&case);
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["author"], "agent");
    assert_eq!(messages[0]["chatra_agent_id"], "Zx8Cv2Bn4Mq6Lk1Jh");
    assert_eq!(
        messages[0]["agent_id"],
        Value::Null,
        "no Deskie agent is linked to Julia"
    );
    assert_eq!(messages[0]["source"], "chatra");
    assert_eq!(messages[2]["author"], "customer");
    assert_eq!(messages[2]["text"], "Great, thank you!");
}

#[tokio::test]
async fn the_same_webhook_twice_and_five_times_at_once_keeps_each_message_once() {
    let suite = support::start().await;
    let body = fixture("chat-fragment-agent-from-chatra-ui.json");
    assert_eq!(suite.webhook(body.clone()).await, 200);
    assert_eq!(suite.webhook(body.clone()).await, 200);
    let statuses = futures::future::join_all((0..5).map(|_| suite.webhook(body.clone()))).await;
    assert!(statuses.iter().all(|s| *s == 200));
    let id = suite.case_id(CLIENT, CHAT);
    let case = suite.case_when(id, |c| messages_of(c).len() >= 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let case_after = suite.case_when(id, |_| true).await;
    assert_eq!(messages_of(&case).len(), 3);
    assert_eq!(messages_of(&case_after).len(), 3);
    let types = suite.event_types(id).await;
    assert_eq!(types.iter().filter(|t| *t == "case_opened").count(), 1);
}

#[tokio::test]
async fn a_burst_of_different_first_messages_for_a_new_chat_opens_one_case() {
    let suite = support::start().await;
    let bodies: Vec<String> = (0..5)
        .map(|n| {
            format!(
                r#"{{"eventName":"chatFragment","client":{{"id":"burst-client","chatId":"burst-chat"}},
                "messages":[{{"id":"b{n}","type":"client","text":"part {n}","createdAt":{}}}]}}"#,
                1_732_608_000_000u64 + n
            )
        })
        .collect();
    let statuses = futures::future::join_all(bodies.into_iter().map(|b| suite.webhook(b))).await;
    assert!(statuses.iter().all(|s| *s == 200));
    let id = suite.case_id("burst-client", "burst-chat");
    let case = suite.case_when(id, |c| messages_of(c).len() == 5).await;
    let texts: Vec<String> = messages_of(&case)
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        texts,
        ["part 0", "part 1", "part 2", "part 3", "part 4"],
        "kept in Chatra's order"
    );
    let (_, list) = suite.get("/cases").await;
    let same_chat = list
        .as_array()
        .expect("array")
        .iter()
        .filter(|c| c["chatra"]["chat_id"] == "burst-chat")
        .count();
    assert_eq!(same_chat, 1, "exactly one case for the chat");
}

#[tokio::test]
async fn the_mapped_group_applies_from_either_place_and_the_message_key_is_read() {
    let suite = support::start().await;
    let top = r#"{"eventName":"chatStarted","groupId":"chatra-sales","client":{"id":"c-top","chatId":"h-top"},
        "messages":[{"id":"t1","type":"client","message":"text under the message key"}]}"#;
    let inner = r#"{"eventName":"chatStarted","client":{"id":"c-in","chatId":"h-in","groupId":"chatra-sales"},
        "messages":[{"id":"i1","type":"client","text":"hello"}]}"#;
    let unmapped = r#"{"eventName":"chatStarted","groupId":"unknown-group","client":{"id":"c-un","chatId":"h-un"}}"#;
    for body in [top, inner, unmapped] {
        assert_eq!(suite.webhook(body).await, 200);
    }
    let case = suite
        .case_when(suite.case_id("c-top", "h-top"), |c| {
            !messages_of(c).is_empty()
        })
        .await;
    assert_eq!(case["group_id"], suite.sales_group);
    assert_eq!(messages_of(&case)[0]["text"], "text under the message key");
    let case = suite
        .case_when(suite.case_id("c-in", "h-in"), |c| {
            !messages_of(c).is_empty()
        })
        .await;
    assert_eq!(case["group_id"], suite.sales_group);
    let case = suite
        .case_when(suite.case_id("c-un", "h-un"), |c| c["id"].is_string())
        .await;
    assert_eq!(case["group_id"], suite.default_group);
}

#[tokio::test]
async fn a_transcript_fills_the_gap_then_new_messages_resume_the_case_even_when_closed() {
    let suite = support::start().await;
    let id = suite.case_id(CLIENT, CHAT);
    assert_eq!(
        suite
            .webhook(fixture("chat-started-prechat-form.json"))
            .await,
        200
    );
    suite.case_when(id, |c| messages_of(c).len() == 1).await;
    assert_eq!(suite.webhook(fixture("chat-transcript.json")).await, 200);
    let case = suite.case_when(id, |c| messages_of(c).len() == 5).await;
    let messages = messages_of(&case);
    let authors: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["author"].as_str())
        .collect();
    assert_eq!(
        authors,
        ["customer", "agent", "customer", "agent", "customer"],
        "the gap is filled in Chatra's order: {case}"
    );
    assert_eq!(messages[4]["text"], "Great, thank you!", "{case}");
    assert_eq!(
        messages[2]["attachments"][0]["filename"],
        "photo_of_label.jpg"
    );
    assert_eq!(messages[2]["attachments"][0]["is_image"], true);
    let types = suite.event_types(id).await;
    assert!(types.contains(&"chat_ended".to_owned()), "{types:?}");

    let again = format!(
        r#"{{"eventName":"chatFragment","client":{{"id":"{CLIENT}","chatId":"{CHAT}"}},
        "messages":[{{"id":"after-end","type":"client","text":"One more question"}}]}}"#
    );
    assert_eq!(suite.webhook(again).await, 200);
    let case = suite.case_when(id, |c| messages_of(c).len() == 6).await;
    let types = suite.event_types(id).await;
    let resumed = types.iter().filter(|t| *t == "case_resumed").count();
    assert_eq!(resumed, 1, "{types:?} {case}");

    let closed = suite
        .http
        .patch(format!("{}/cases/{id}", suite.api))
        .bearer_auth(support::ADMIN)
        .json(&json!({ "status": "closed" }))
        .send()
        .await
        .expect("patch");
    assert_eq!(closed.status(), 200, "{:?}", closed.text().await);
    let later = format!(
        r#"{{"eventName":"chatFragment","client":{{"id":"{CLIENT}","chatId":"{CHAT}"}},
        "messages":[{{"id":"after-close","type":"client","text":"Hello again 👋"}}]}}"#
    );
    assert_eq!(suite.webhook(later).await, 200);
    let case = suite.case_when(id, |c| messages_of(c).len() == 7).await;
    let types = suite.event_types(id).await;
    assert_eq!(
        case["status"], "open",
        "a customer writing to a closed case reopens it: {types:?} {case}"
    );
    let resumed = types.iter().filter(|t| *t == "case_resumed").count();
    assert_eq!(resumed, 2, "{types:?}");
}

#[tokio::test]
async fn an_echo_of_our_reply_marks_it_sent_instead_of_adding_a_message() {
    let suite = support::start().await;
    let id = suite.case_id(CLIENT, CHAT);
    assert_eq!(
        suite
            .webhook(fixture("chat-started-prechat-form.json"))
            .await,
        200
    );
    suite.case_when(id, |c| messages_of(c).len() == 1).await;

    // The reply an agent asked for (the replies endpoint is issue 4; its event is this one).
    let reply_id = uuid::Uuid::now_v7();
    let asked = reply("Your parcel arrives tomorrow.").id(reply_id);
    record_case(&suite.store, id, vec![asked.into()]).await;
    let reply_id = reply_id.to_string();

    let echo = format!(
        r#"{{"eventName":"chatFragment","client":{{"id":"{CLIENT}","chatId":"{CHAT}"}},
        "messages":[{{"id":"chatra-echo-1","type":"agent","agentId":"A1","text":"Your parcel arrives tomorrow.","receivedFrom":"deskie"}}]}}"#
    );
    assert_eq!(suite.webhook(echo.clone()).await, 200);
    let case = suite
        .case_when(id, |c| {
            messages_of(c)
                .iter()
                .any(|m| m["id"] == reply_id.as_str() && m["delivery"] == "sent")
        })
        .await;
    assert_eq!(
        messages_of(&case).len(),
        2,
        "the echo is not stored a second time"
    );
    assert_eq!(suite.webhook(echo.replace("\"A1\"", "\"A1\" ")).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(messages_of(&suite.case_when(id, |_| true).await).len(), 2);
}

#[tokio::test]
async fn an_anonymous_visitor_writing_unicode_and_emoji_is_kept_verbatim() {
    let suite = support::start().await;
    let text = "¿Hola? 你好 👋🏽 — ça va? עברית";
    let body = json!({
        "eventName": "chatStarted",
        "client": { "id": "anon-1", "chatId": "anon-chat", "displayedName": "Visitor #4411" },
        "messages": [{ "id": "u1", "type": "client", "text": text }]
    });
    assert_eq!(suite.webhook(body.to_string()).await, 200);
    let case = suite
        .case_when(suite.case_id("anon-1", "anon-chat"), |c| {
            !messages_of(c).is_empty()
        })
        .await;
    assert_eq!(
        case["customer"]["name"],
        Value::Null,
        "the placeholder name is not taken for a real one"
    );
    assert_eq!(case["customer"]["email"], Value::Null);
    assert_eq!(case["customer"]["phone"], Value::Null);
    assert_eq!(case["customer"]["fields"], json!([]));
    assert_eq!(messages_of(&case)[0]["text"], text);
}
