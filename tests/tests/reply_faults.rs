//! Chatra failing in ways that may or may not have delivered a reply (issue 11, points 4 and
//! 5): a 502 or 504 is `unknown` and never sent twice, its echo settles it once, an echo
//! that matches no reply is recorded but never shown, and a reply waiting for a paused
//! Chatra account gives its claim back so other accounts go on.

mod support;

use std::time::Duration;

use deskie_testkit::{Fault, eventually};
use serde_json::{Value, json};
use support::{ADMIN, CHAT, CLIENT, Options, Suite};
use uuid::Uuid;

async fn reply(suite: &Suite, token: &str, case: Uuid, text: &str) -> String {
    let (status, accepted) = suite.reply(token, case, text).await;
    assert_eq!(status, 202, "{accepted}");
    accepted["message_id"]
        .as_str()
        .expect("message_id")
        .to_owned()
}

fn count(types: &[String], wanted: &str) -> usize {
    types.iter().filter(|t| *t == wanted).count()
}

/// What Chatra posts back for a message we sent: a `chatFragment` with our `receivedFrom`;
/// `copy` makes the body differ, so ingest takes a repeat as a new webhook and routing
/// decides on it again.
fn echo(client: &str, chat: &str, chatra_id: &str, text: &str, copy: u8) -> String {
    json!({
        "eventName": "chatFragment",
        "copy": copy,
        "client": { "id": client, "chatId": chat },
        "messages": [{
            "id": chatra_id, "type": "agent", "text": text, "agentId": "Ag3ntFromChatra01",
            "agentName": "julia", "receivedFrom": "deskie"
        }]
    })
    .to_string()
}

/// The texts of the case's messages.
async fn texts(suite: &Suite, case: Uuid) -> Vec<String> {
    support::messages_of(&suite.case_when(case, |_| true).await)
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect()
}

/// The ledger row of the reply `message_id`: status, attempts, and whether it waits for a
/// later time (`not_before` in the future).
async fn ledger(suite: &Suite, message_id: &str) -> Option<(String, i32, bool)> {
    sqlx::query_as("SELECT status, attempts, not_before > now() FROM outbox WHERE intent_key = $1")
        .bind(deskie_outbound::reply_intent_key(message_id))
        .fetch_optional(suite.store.pool())
        .await
        .expect("ledger")
}

#[tokio::test]
async fn a_502_and_a_504_are_unknown_never_sent_again_and_each_echo_settles_its_reply_once() {
    // No automatic echoes: the test posts each one when it wants it.
    let (suite, chatra) = support::start_with_chatra(Options::default(), None).await;
    let (case, _, token) = suite.case_and_agent().await;

    chatra.fail_next(Fault::AcceptThenStatus(502));
    let first = reply(&suite, &token, case, "Your refund is on its way.").await;
    let unknown = suite.message_when(case, &first, "unknown").await;
    assert_eq!(unknown["delivery"], "unknown", "502: {unknown}");

    chatra.fail_next(Fault::AcceptThenStatus(504));
    let second = reply(&suite, &token, case, "It takes 3 to 5 days.").await;
    let unknown = suite.message_when(case, &second, "unknown").await;
    assert_eq!(unknown["delivery"], "unknown", "504: {unknown}");
    assert_eq!(chatra.sent_messages().len(), 2, "one POST each, no second");

    let routed = suite.routed(0).await;
    for (chatra_id, text) in [
        ("Ech0OfTheRefund01", "Your refund is on its way."),
        ("Ech0OfTheDelay001", "It takes 3 to 5 days."),
    ] {
        // Chatra may post an echo more than once: it settles its reply once.
        for copy in 0..2 {
            let body = echo(CLIENT, CHAT, chatra_id, text, copy);
            assert_eq!(suite.webhook(body).await, 200);
        }
    }
    assert!(
        suite.routed(routed + 4).await >= routed + 4,
        "echoes routed"
    );
    for id in [&first, &second] {
        let sent = suite.message_when(case, id, "sent").await;
        assert_eq!(sent["delivery"], "sent", "settled by its echo: {sent}");
    }
    for id in [&first, &second] {
        let settled = eventually("the ledger row settled by the echo", || async {
            ledger(&suite, id)
                .await
                .filter(|(status, ..)| status == "sent")
        })
        .await;
        assert_eq!(settled.1, 1, "one attempt");
    }

    let types = suite.event_types(case).await;
    assert_eq!(count(&types, "reply_outcome_unknown"), 2, "{types:?}");
    assert_eq!(count(&types, "reply_delivered"), 2, "{types:?}");
    assert_eq!(count(&types, "agent_message_mirrored"), 0, "{types:?}");
    assert_eq!(count(&types, "unmatched_echo_received"), 0, "{types:?}");
    let (_, events) = suite.get(&format!("/cases/{case}/events")).await;
    let settled_by: Vec<&Value> = events
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "reply_delivered")
        .map(|e| &e["data"]["settled_by"])
        .collect();
    assert_eq!(settled_by, [&json!("echo"), &json!("echo")]);
    let texts = texts(&suite, case).await;
    for text in ["Your refund is on its way.", "It takes 3 to 5 days."] {
        assert_eq!(
            texts.iter().filter(|t| *t == text).count(),
            1,
            "{text}: {texts:?}"
        );
    }
    assert_eq!(chatra.sent_messages().len(), 2, "never re-sent");
    suite.stop().await;
}

#[tokio::test]
async fn an_echo_matching_no_reply_is_recorded_once_and_never_shown_as_an_agent_message() {
    let (suite, _chatra) = support::start_with_chatra(Options::default(), None).await;
    let (case, _, _) = suite.case_and_agent().await;
    let routed = suite.routed(0).await;
    for copy in 0..2 {
        let text = "A reply nobody here asked for";
        let stray = echo(CLIENT, CHAT, "StrayEch0Message1", text, copy);
        assert_eq!(suite.webhook(stray).await, 200);
    }
    assert!(suite.routed(routed + 2).await >= routed + 2, "both routed");

    let types = suite.event_types(case).await;
    assert_eq!(count(&types, "unmatched_echo_received"), 1, "{types:?}");
    assert_eq!(count(&types, "agent_message_mirrored"), 0, "{types:?}");
    let (_, events) = suite.get(&format!("/cases/{case}/events")).await;
    let recorded = events
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["type"] == "unmatched_echo_received")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(recorded["emitted_by"], "routing", "{recorded}");
    assert_eq!(recorded["data"]["chatra_message_id"], "StrayEch0Message1");
    assert_eq!(recorded["data"]["text"], "A reply nobody here asked for");
    assert_eq!(recorded["data"]["received_from"], "deskie");
    let texts = texts(&suite, case).await;
    assert!(
        !texts.iter().any(|t| t == "A reply nobody here asked for"),
        "not shown as a message: {texts:?}"
    );
    suite.stop().await;
}

/// A second Chatra integration (keys `pub-2`/`sec-2`, accepted by `chatra`): its id and
/// webhook URL.
async fn second_integration(
    suite: &Suite,
    chatra: &deskie_testkit::ChatraStandIn,
) -> (Uuid, String) {
    chatra.accept_keys("pub-2", "sec-2");
    let created: Value = suite
        .http
        .post(format!("{}/integrations/chatra", suite.api))
        .bearer_auth(ADMIN)
        .json(&json!({
            "public_key": "pub-2", "secret_key": "sec-2",
            "default_group_id": suite.default_group, "panel": "separate", "group_mappings": []
        }))
        .send()
        .await
        .expect("integration")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().and_then(|id| id.parse().ok());
    let url = created["webhook_url"].as_str().map(str::to_owned);
    id.zip(url)
        .unwrap_or_else(|| panic!("an integration: {created}"))
}

/// Opens a case of `integration` (webhooks at `webhook_url`) for `client`; its id.
async fn open_case(suite: &Suite, (integration, webhook_url): (Uuid, &str), client: &str) -> Uuid {
    let chat = format!("chat-{client}");
    let body = json!({
        "eventName": "chatStarted",
        "client": { "id": client, "chatId": chat },
        "messages": [{ "id": format!("first-{client}"), "type": "client", "text": "hello" }]
    });
    let status = suite
        .http
        .post(webhook_url)
        .json(&body)
        .send()
        .await
        .expect("webhook")
        .status();
    assert_eq!(status, 200);
    let case = deskie_domain::case::case_id_for(integration, client, &chat);
    suite.case_when(case, |c| c["id"].is_string()).await;
    case
}

#[tokio::test]
async fn a_reply_waiting_for_a_paused_account_gives_its_claim_back_and_other_accounts_go_on() {
    // One call at a time: a reply holding its claim through the pause would hold everyone.
    let mut options = Options::default();
    if let Some(outbound) = options.outbound.as_mut() {
        outbound.concurrency = 1;
    }
    let (suite, chatra) = support::start_with_chatra(options, None).await;
    let (case, _, token) = suite.case_and_agent().await;
    let (other_id, other_url) = second_integration(&suite, &chatra).await;
    let first_account = (suite.integration_id, suite.webhook_url.as_str());
    let same_account_case = open_case(&suite, first_account, "second-visitor").await;
    let other_account_case = open_case(&suite, (other_id, &other_url), "third-visitor").await;

    // Chatra pauses the first account for a long time (far beyond the 2 s lease).
    chatra.fail_next(Fault::Status(429, Some(3600)));
    let paused = reply(&suite, &token, case, "first, rate limited").await;
    let retried = eventually("the 429 recorded as a retry", || async {
        ledger(&suite, &paused)
            .await
            .filter(|(status, _, later)| status == "pending" && *later)
    })
    .await;
    assert_eq!(retried.1, 1, "the 429 counted as an attempt");

    // Another reply of the paused account is claimed, sees the pause and gives its claim back
    // untried instead of holding it (and the only permit) for an hour.
    let waiting = reply(&suite, &token, same_account_case, "second, same account").await;
    let given_back = eventually("the waiting reply given back", || async {
        ledger(&suite, &waiting)
            .await
            .filter(|(status, _, later)| status == "pending" && *later)
    })
    .await;
    assert_eq!(given_back.1, 0, "given back untried: no attempt counted");

    // The other account is not held back.
    let other = reply(&suite, &token, other_account_case, "third, other account").await;
    let sent = suite.message_when(other_account_case, &other, "sent").await;
    assert_eq!(sent["delivery"], "sent", "{sent}");
    let bodies: Vec<Value> = chatra
        .sent_messages()
        .into_iter()
        .map(|r| r.body["text"].clone())
        .collect();
    assert_eq!(
        bodies,
        [json!("first, rate limited"), json!("third, other account")],
        "nothing sent to the paused account"
    );
    for (case, id) in [(case, &paused), (same_account_case, &waiting)] {
        let message = suite.message_when(case, id, "pending").await;
        assert_eq!(message["delivery"], "pending", "still waiting: {message}");
    }

    // No JetStream message waits meanwhile: intake acknowledged each request at once.
    let consumer = suite
        .bus
        .jetstream()
        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            suite.bus.topology().consumer_name(deskie_outbound::SERVICE),
            suite.bus.topology().events_stream(),
        )
        .await;
    let mut consumer = consumer.expect("outbound's consumer");
    let info = consumer.info().await.expect("consumer info");
    assert_eq!(info.num_ack_pending, 0, "no message waits on the pause");
    assert_eq!(info.num_redelivered, 0, "no ack_wait ran out");
    suite.stop().await;
}

/// outbound's `outbound_replies_total{outcome}` as the api's `/metrics` shows it.
async fn replies_counted(suite: &Suite, outcome: &str) -> u64 {
    let root = suite.api.trim_end_matches("/api/v1");
    let page = suite
        .http
        .get(format!("{root}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let series = format!("outbound_replies_total{{outcome=\"{outcome}\"}} ");
    page.lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_claim_taken_over_while_waiting_for_its_turn_never_calls() {
    // One call a second per account, and up to half of a 10 s lease to wait for it.
    let mut options = Options::default();
    if let Some(outbound) = options.outbound.as_mut() {
        outbound.lease = Duration::from_secs(10);
        outbound.rate = deskie_outbound::RateLimit::paced(std::num::NonZeroU32::MIN);
    }
    let (suite, chatra) = support::start_with_chatra(options, None).await;
    let (case, _, token) = suite.case_and_agent().await;
    let account = (suite.integration_id, suite.webhook_url.as_str());
    let mut cases = vec![case];
    for visitor in ["visitor-2", "visitor-3", "visitor-4"] {
        cases.push(open_case(&suite, account, visitor).await);
    }

    // A 429 pauses the account for 4 s; the replies asked for meanwhile are given back until
    // then, so all four come due together and then wait about 0, 1, 2 and 3 s for their turns.
    chatra.fail_next(Fault::Status(429, Some(4)));
    let mut replies = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let text = format!("reply {n}");
        let id = reply(&suite, &token, *case, &text).await;
        eventually("the reply waiting for the pause to end", || async {
            ledger(&suite, &id)
                .await
                .filter(|(status, _, later)| status == "pending" && *later)
        })
        .await;
        replies.push((id, text));
    }

    // The first call after the pause leaves; while the others wait for their turns, another
    // worker takes each of their claims over (a newer attempt, a fresh lease), as after a
    // stall.
    let first = eventually("the first call after the pause", || async {
        chatra
            .sent_messages()
            .get(1)
            .map(|r| r.body["text"].clone())
    })
    .await;
    let first_key = replies
        .iter()
        .find(|(_, text)| first == json!(text))
        .map(|(id, _)| deskie_outbound::reply_intent_key(id))
        .expect("a reply of ours");
    let taken: Vec<String> = sqlx::query_scalar(
        "UPDATE outbox SET attempts = attempts + 1, lease_until = now() + interval '1 hour'
          WHERE kind = 'chatra_reply' AND status = 'sending' AND intent_key <> $1
      RETURNING intent_key",
    )
    .bind(&first_key)
    .fetch_all(suite.store.pool())
    .await
    .expect("take over");
    assert_eq!(taken.len(), 3, "the three waiting claims: {taken:?}");
    let claims: Vec<i32> = sqlx::query_scalar(
        "SELECT attempts FROM outbox WHERE intent_key = ANY($1) ORDER BY intent_key",
    )
    .bind(&taken)
    .fetch_all(suite.store.pool())
    .await
    .expect("attempts");

    // Each waiting worker checks its claim right before its call, finds it taken, and
    // neither calls nor writes.
    eventually("the three workers finding their claims gone", || async {
        (replies_counted(&suite, "claim_lost").await >= 3).then_some(())
    })
    .await;
    let texts: Vec<Value> = chatra
        .sent_messages()
        .into_iter()
        .map(|r| r.body["text"].clone())
        .collect();
    assert_eq!(texts.len(), 2, "the 429 and one call: {texts:?}");
    assert_eq!(texts[1], first, "no call left after its claim was lost");
    let after: Vec<(String, i32)> = sqlx::query_as(
        "SELECT status, attempts FROM outbox WHERE intent_key = ANY($1) ORDER BY intent_key",
    )
    .bind(&taken)
    .fetch_all(suite.store.pool())
    .await
    .expect("rows");
    let untouched: Vec<(String, i32)> = claims
        .into_iter()
        .map(|attempts| ("sending".to_owned(), attempts))
        .collect();
    assert_eq!(after, untouched, "left to the claims that took them over");
    suite.stop().await;
}
