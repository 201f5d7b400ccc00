//! Agents as Chatra sees them: online status kept alive with pings, hand-edited customer
//! data sent to the client card, and the Deskie agent named on what they type in Chatra.

mod support;

use std::time::Duration;

use deskie_testkit::wait_until;
use serde_json::{Value, json};
use support::{CHAT, CLIENT, Options, PUBLIC_KEY, SECRET_KEY, Suite, pings};

async fn set_status(suite: &Suite, token: &str, status: &str) -> u16 {
    suite
        .http
        .put(format!("{}/agents/me/status", suite.api))
        .bearer_auth(token)
        .json(&json!({ "status": status }))
        .send()
        .await
        .expect("status")
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_online_agent_is_pinged_until_they_go_offline() {
    let (suite, chatra) = support::start_with_chatra(Options::default(), None).await;
    let (_, token) = suite.agent("julia@example.com", &["live_chat"]).await;
    let (_, _other) = suite.agent("tom@example.com", &["live_chat"]).await;
    assert!(pings(&chatra).is_empty(), "nobody is online yet");

    assert_eq!(set_status(&suite, &token, "online").await, 200);
    wait_until("three pings", || pings(&chatra).len() >= 3).await;
    let sent = pings(&chatra);
    assert!(
        sent.iter()
            .all(|p| p.body["agentEmail"] == "julia@example.com"),
        "only the online agent is reported: {:?}",
        sent.iter().map(|p| &p.body).collect::<Vec<_>>()
    );
    assert_eq!(
        sent[0].authorization.as_deref(),
        Some(format!("Chatra.Simple {PUBLIC_KEY}:{SECRET_KEY}").as_str())
    );
    assert_eq!(sent[0].body["receivedFrom"], "deskie");

    assert_eq!(set_status(&suite, &token, "offline").await, 200);
    // A ping already in flight may still land; after that, silence over many intervals.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after_offline = pings(&chatra).len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        pings(&chatra).len(),
        after_offline,
        "pings stop once offline"
    );
    suite.stop().await;
}

#[tokio::test]
async fn losing_live_chat_access_stops_the_pings() {
    let (suite, chatra) = support::start_with_chatra(Options::default(), None).await;
    let (agent_id, token) = suite.agent("julia@example.com", &["live_chat"]).await;
    assert_eq!(set_status(&suite, &token, "online").await, 200);
    wait_until("a ping", || !pings(&chatra).is_empty()).await;

    let edited = suite
        .http
        .patch(format!("{}/agents/{agent_id}", suite.api))
        .bearer_auth(support::ADMIN)
        .json(&json!({ "email": "julia@example.com", "name": "julia", "channel_access": [] }))
        .send()
        .await
        .expect("patch");
    assert_eq!(edited.status(), 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after = pings(&chatra).len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        pings(&chatra).len(),
        after,
        "no pings without live_chat access"
    );
    suite.stop().await;
}

#[tokio::test]
async fn a_hand_edit_of_the_customer_reaches_the_chatra_client_card_once() {
    let (suite, chatra) = support::start_with_chatra(Options::default(), None).await;
    let (case, _, token) = suite.case_and_agent().await;

    let response = suite
        .http
        .put(format!("{}/cases/{case}/customer", suite.api))
        .bearer_auth(&token)
        .json(&json!({ "name": "Maria López-García", "phone": null }))
        .send()
        .await
        .expect("edit");
    assert_eq!(response.status(), 200);

    let updates = || {
        chatra
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT")
            .collect::<Vec<_>>()
    };
    wait_until("PUT /clients", || !updates().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = updates();
    assert_eq!(sent.len(), 1, "exactly one update");
    assert_eq!(sent[0].path, format!("/api/clients/{CLIENT}"));
    assert_eq!(
        sent[0].authorization.as_deref(),
        Some(format!("Chatra.Simple {PUBLIC_KEY}:{SECRET_KEY}").as_str())
    );
    assert_eq!(
        sent[0].body["name"], "Maria López-García",
        "{}",
        sent[0].body
    );
    assert_eq!(
        sent[0].body["phone"],
        Value::Null,
        "a cleared field is sent as null"
    );
    assert!(
        sent[0].body.get("email").is_none(),
        "an unchanged field is left out: {}",
        sent[0].body
    );
    suite.stop().await;
}

#[tokio::test]
async fn once_a_reply_links_the_agent_their_chatra_messages_name_them() {
    let (suite, chatra) = support::start_with_chatra(Options::default(), None).await;
    let (case, agent_id, token) = suite.case_and_agent().await;
    let (status, accepted) = suite.reply(&token, case, "Checking now.").await;
    assert_eq!(status, 202);
    let message_id = accepted["message_id"].as_str().expect("id");
    let sent = suite.message_when(case, message_id, "sent").await;
    let chatra_agent = sent["chatra_agent_id"]
        .as_str()
        .expect("chatra agent")
        .to_owned();

    // The link is an event on the agent's stream.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let linked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM agent_chatra_links WHERE chatra_agent_id = $1",
        )
        .bind(&chatra_agent)
        .fetch_one(suite.store.pool())
        .await
        .expect("links");
        if linked == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no link recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Julia now types in Chatra's own UI.
    let typed = json!({
        "eventName": "chatFragment",
        "client": { "id": CLIENT, "chatId": CHAT },
        "messages": [{ "id": "typed-in-chatra-1", "type": "agent", "text": "Anything else?",
                       "agentId": chatra_agent, "agentName": "Julia" }],
    });
    assert_eq!(suite.webhook(typed.to_string()).await, 200);
    let case_now = suite
        .case_when(case, |c| {
            support::messages_of(c)
                .iter()
                .any(|m| m["text"] == "Anything else?")
        })
        .await;
    let mirrored = support::messages_of(&case_now)
        .into_iter()
        .find(|m| m["text"] == "Anything else?")
        .expect("mirrored");
    assert_eq!(mirrored["agent_id"], agent_id.as_str(), "{mirrored}");
    assert_eq!(mirrored["source"], "chatra");
    assert!(
        chatra.sent_messages().len() == 1,
        "nothing was sent for a mirrored message"
    );
    suite.stop().await;
}
