//! Agents answer from Deskie: a reply reaches the Chatra stand-in once, as that agent, and
//! every way a call can fail ends where the outbound policy says (docs/services/outbound.md).

mod support;

use std::time::Duration;

use deskie_testkit::Fault;
use serde_json::Value;
use support::{CHAT, CLIENT, Options, PUBLIC_KEY, SECRET_KEY, Suite};
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

#[tokio::test]
async fn a_reply_reaches_chatra_once_as_the_agent_and_its_echo_adds_nothing() {
    let (suite, chatra) = support::start_with_chatra(Options::default(), None).await;
    chatra.chat_id_for(CLIENT, CHAT);
    let (case, agent_id, token) = suite.case_and_agent().await;
    let routed_before = suite.routed(1).await;

    let id = reply(&suite, &token, case, "Your parcel leaves today.").await;
    let message = suite.message_when(case, &id, "sent").await;
    assert_eq!(message["delivery"], "sent", "{message}");
    assert_eq!(message["agent_id"], agent_id.as_str());
    assert!(message["chatra_agent_id"].is_string(), "{message}");

    let sent = chatra.sent_messages();
    assert_eq!(sent.len(), 1, "exactly one call to POST /messages/");
    assert_eq!(
        sent[0].authorization.as_deref(),
        Some(format!("Chatra.Simple {PUBLIC_KEY}:{SECRET_KEY}").as_str())
    );
    let body = &sent[0].body;
    assert_eq!(body["clientId"], CLIENT);
    assert_eq!(body["text"], "Your parcel leaves today.");
    assert_eq!(body["agentEmail"], "julia@example.com");
    assert_eq!(body["agentName"], "julia");
    assert_eq!(body["receivedFrom"], "deskie");

    // Chatra's echo of our own message, twice over: the case keeps one message.
    let (_, events) = suite.get(&format!("/cases/{case}/events")).await;
    let delivered = events
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["type"] == "reply_delivered")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        delivered["data"]["settled_by"], "chatra_response",
        "{delivered}"
    );
    let chatra_id = delivered["data"]["chatra_message_id"]
        .as_str()
        .expect("chatra id");
    let echo = chatra.echo_webhook_for(chatra_id).expect("echo");
    chatra.send_webhooks_to(&suite.webhook_url, Duration::ZERO);
    for _ in 0..2 {
        assert_eq!(chatra.post_webhook(&echo).await, Some(200));
    }
    assert!(
        suite.routed(routed_before + 1).await > routed_before,
        "the echo was routed"
    );
    let case_now = suite.case_when(case, |_| true).await;
    let copies = support::messages_of(&case_now)
        .into_iter()
        .filter(|m| m["text"] == "Your parcel leaves today.")
        .count();
    assert_eq!(copies, 1, "{case_now}");
    let types = suite.event_types(case).await;
    assert_eq!(count(&types, "reply_delivered"), 1, "{types:?}");
    assert_eq!(count(&types, "agent_message_mirrored"), 0, "{types:?}");
    assert_eq!(chatra.sent_messages().len(), 1);
    suite.stop().await;
}

#[tokio::test]
async fn an_agent_without_live_chat_access_gets_403_and_nothing_is_sent() {
    let (suite, chatra) = support::start_with_chatra(Options::default(), None).await;
    let (case, _, _) = suite.case_and_agent().await;
    let (_, outsider) = suite.agent("eve@example.com", &[]).await;
    let (status, _) = suite.reply(&outsider, case, "hello").await;
    assert_eq!(status, 403);
    // Nothing reached the ledger, so nothing can be sent later either.
    assert_eq!(suite.open_outbox_rows().await, 0);
    assert!(chatra.sent_messages().is_empty());
    assert_eq!(count(&suite.event_types(case).await, "reply_requested"), 0);
    suite.stop().await;
}

#[tokio::test]
async fn a_429_is_waited_out_exactly_then_sent_once() {
    let (suite, chatra) = support::start_with_chatra(Options::default(), None).await;
    let (case, _, token) = suite.case_and_agent().await;
    chatra.fail_next(Fault::Status(429, Some(2)));
    let id = reply(&suite, &token, case, "one moment").await;
    assert_eq!(
        suite.message_when(case, &id, "sent").await["delivery"],
        "sent"
    );
    let sent = chatra.sent_messages();
    assert_eq!(sent.len(), 2, "the 429 and the retry");
    let waited = sent[1].at - sent[0].at;
    assert!(
        waited >= Duration::from_secs(2),
        "waited {waited:?} of Retry-After: 2"
    );
    suite.stop().await;
}

#[tokio::test]
async fn a_503_is_retried_and_a_400_fails_at_once() {
    let (suite, chatra) = support::start_with_chatra(Options::default(), None).await;
    let (case, _, token) = suite.case_and_agent().await;
    chatra.fail_next(Fault::Status(503, None));
    let first = reply(&suite, &token, case, "first").await;
    assert_eq!(
        suite.message_when(case, &first, "sent").await["delivery"],
        "sent"
    );
    assert_eq!(chatra.sent_messages().len(), 2);

    chatra.fail_next(Fault::Status(400, None));
    let second = reply(&suite, &token, case, "second").await;
    let failed = suite.message_when(case, &second, "failed").await;
    assert_eq!(failed["delivery"], "failed", "{failed}");
    // Settled `failed` with no row left open: no retry can come.
    assert_eq!(suite.open_outbox_rows().await, 0);
    assert_eq!(chatra.sent_messages().len(), 3, "a 400 is not retried");
    let (_, events) = suite.get(&format!("/cases/{case}/events")).await;
    let reason = events
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["type"] == "reply_failed")
        .map(|e| e["data"]["reason"].clone())
        .unwrap_or(Value::Null);
    assert!(
        reason.as_str().is_some_and(|r| r.contains("400")),
        "{reason}"
    );
    suite.stop().await;
}

#[tokio::test]
async fn a_500_is_unknown_until_the_echo_settles_it_without_a_second_request() {
    let (suite, chatra) =
        support::start_with_chatra(Options::default(), Some(Duration::from_millis(1500))).await;
    chatra.chat_id_for(CLIENT, CHAT);
    let (case, _, token) = suite.case_and_agent().await;
    chatra.fail_next(Fault::AcceptThenStatus(500));
    let id = reply(&suite, &token, case, "Sorry for the wait!").await;
    let unknown = suite.message_when(case, &id, "unknown").await;
    assert_eq!(unknown["delivery"], "unknown", "{unknown}");
    let sent = suite.message_when(case, &id, "sent").await;
    assert_eq!(sent["delivery"], "sent", "{sent}");
    assert_eq!(chatra.sent_messages().len(), 1, "never re-sent");
    let types = suite.event_types(case).await;
    let position = |t: &str| types.iter().position(|x| x == t);
    assert!(
        position("reply_outcome_unknown") < position("reply_delivered"),
        "{types:?}"
    );
    let copies = support::messages_of(&suite.case_when(case, |_| true).await)
        .into_iter()
        .filter(|m| m["text"] == "Sorry for the wait!")
        .count();
    assert_eq!(copies, 1);
    suite.stop().await;
}

#[tokio::test]
async fn an_unknown_reply_without_echo_fails_at_the_deadline() {
    let mut options = Options::default();
    if let Some(outbound) = options.outbound.as_mut() {
        outbound.unknown_deadline = Duration::from_secs(1);
    }
    let (suite, chatra) = support::start_with_chatra(options, None).await;
    let (case, _, token) = suite.case_and_agent().await;
    chatra.fail_next(Fault::Status(500, None));
    let id = reply(&suite, &token, case, "are you there?").await;
    let failed = suite.message_when(case, &id, "failed").await;
    assert_eq!(failed["delivery"], "failed", "{failed}");
    assert_eq!(chatra.sent_messages().len(), 1);
    let types = suite.event_types(case).await;
    assert_eq!(count(&types, "reply_outcome_unknown"), 1, "{types:?}");
    assert_eq!(count(&types, "reply_failed"), 1, "{types:?}");
    suite.stop().await;
}

#[tokio::test]
async fn a_hanging_chatra_call_holds_neither_other_cases_nor_jetstream_messages() {
    let (suite, chatra) = support::start_with_chatra(Options::default(), None).await;
    let (slow_case, _, token) = suite.case_and_agent().await;
    let other = r#"{"eventName":"chatStarted","client":{"id":"other-client","chatId":"other-chat"},"messages":[{"id":"m-o1","type":"client","text":"hi"}]}"#;
    assert_eq!(suite.webhook(other).await, 200);
    let other_case = suite.case_id("other-client", "other-chat");
    suite.case_when(other_case, |c| c["id"].is_string()).await;

    chatra.fail_next(Fault::Hang);
    let slow = reply(&suite, &token, slow_case, "this one hangs").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while chatra.sent_messages().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fast = reply(&suite, &token, other_case, "this one goes through").await;
    assert_eq!(
        suite.message_when(other_case, &fast, "sent").await["delivery"],
        "sent"
    );
    let hanging = suite.message_when(slow_case, &slow, "pending").await;
    assert_eq!(
        hanging["delivery"], "pending",
        "still waiting on Chatra: {hanging}"
    );

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
    assert_eq!(
        info.num_ack_pending, 0,
        "no JetStream message waits on Chatra"
    );
    assert_eq!(info.num_redelivered, 0);
    suite.stop().await;
}

/// A `deskie-outbound` process next to the suite, with a 2 s lease.
fn outbound_process(
    suite: &Suite,
    chatra: &deskie_testkit::ChatraStandIn,
) -> deskie_testkit::ServiceProcess {
    let binary = support::binary("deskie-outbound");
    let mut envs: Vec<(&str, &str)> = suite.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    envs.push(("DESKIE_CHATRA_API_URL", chatra.base_url()));
    envs.push(("DESKIE_OUTBOUND_LEASE_SECS", "2"));
    deskie_testkit::ServiceProcess::spawn(&binary.to_string_lossy(), &envs, "DESKIE_OUTBOUND_ADDR")
}

#[tokio::test]
async fn outbound_killed_between_send_and_record_never_sends_twice() {
    let options = Options {
        outbound: None,
        ..Options::default()
    };
    let (suite, chatra) = support::start_with_chatra(options, Some(Duration::from_secs(5))).await;
    chatra.chat_id_for(CLIENT, CHAT);
    let (case, _, token) = suite.case_and_agent().await;

    // Chatra takes the message and holds its answer; the process is killed (SIGKILL) before
    // it could record anything.
    chatra.fail_next(Fault::AcceptThenHang);
    let mut first = outbound_process(&suite, &chatra);
    let id = reply(&suite, &token, case, "Delivered tomorrow.").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while chatra.sent_messages().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(chatra.sent_messages().len(), 1, "the first process sent it");
    first.kill();
    assert_eq!(
        suite.message_when(case, &id, "pending").await["delivery"],
        "pending"
    );

    let mut second = outbound_process(&suite, &chatra);
    let unknown = suite.message_when(case, &id, "unknown").await;
    let sent = suite.message_when(case, &id, "sent").await;
    second.kill();
    assert_eq!(
        unknown["delivery"], "unknown",
        "the restart does not re-send: {unknown}"
    );
    assert_eq!(sent["delivery"], "sent", "the echo settles it: {sent}");
    assert_eq!(chatra.sent_messages().len(), 1, "sent exactly once");
    suite.stop().await;
}
