//! Staff notifications a rule asked for reach Slack and Telegram once, wait out 429s, stop
//! at a refusal, are paced per destination, and never show the secret.

mod support;

use std::time::Duration;

use deskie_bus::Topology;
use deskie_bus::consumer::{Delivery, Handler};
use deskie_outbound::intake::{Intake, Wakes};
use deskie_proto::Message;
use deskie_proto::events::Event;
use deskie_store::case_consumer::CaseEventHandler;
use deskie_testkit::Fault;
use deskie_testkit::eventually;
use serde_json::json;
use support::{BOT_TOKEN, CHAT_ID, CapturedLogs, HOOK, harness, harness_with};

#[tokio::test]
async fn slack_is_notified_once_with_the_rule_text() {
    let h = harness().await;
    let text = "New chat from a&amp;b &lt;b&gt;: hello";
    let notification = h.slack_notification(HOOK, text);
    h.case_with(vec![notification.clone()]).await;

    let row = h.settled(&notification, "sent").await;
    assert_eq!(row.attempts, 1);
    let requests = h.slack.requests_to(HOOK);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].body, json!({ "text": text }));
}

#[tokio::test]
async fn telegram_gets_chat_id_and_text_at_the_bot_url() {
    let h = harness().await;
    let notification = h.telegram_notification(BOT_TOKEN, CHAT_ID, "Case 42 needs someone <b>");
    h.case_with(vec![notification.clone()]).await;

    h.settled(&notification, "sent").await;
    let requests = h.telegram.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path, format!("/bot{BOT_TOKEN}/sendMessage"));
    assert_eq!(
        requests[0].body,
        json!({ "chat_id": CHAT_ID, "text": "Case 42 needs someone <b>" }),
        "plain text: no parse_mode"
    );
}

#[tokio::test]
async fn a_slack_429_is_waited_out_for_exactly_retry_after() {
    let h = harness().await;
    h.slack.fail_next(Fault::Status(429, Some(2)));
    let notification = h.slack_notification(HOOK, "after the pause");
    h.case_with(vec![notification.clone()]).await;

    let row = h.settled(&notification, "sent").await;
    assert_eq!(row.attempts, 2);
    let requests = h.slack.requests_to(HOOK);
    assert_eq!(requests.len(), 2);
    let waited = requests[1].at - requests[0].at;
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}");
}

#[tokio::test]
async fn a_telegram_429_is_waited_out_for_its_retry_after() {
    let h = harness().await;
    h.telegram.fail_next(Fault::Status(429, Some(2)));
    let notification = h.telegram_notification(BOT_TOKEN, CHAT_ID, "after the pause");
    h.case_with(vec![notification.clone()]).await;

    let row = h.settled(&notification, "sent").await;
    assert_eq!(row.attempts, 2);
    let requests = h.telegram.requests();
    assert_eq!(requests.len(), 2);
    let waited = requests[1].at - requests[0].at;
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}");
}

#[tokio::test]
async fn a_refusal_fails_at_once_and_is_not_retried() {
    let h = harness().await;
    let unknown_chat = h.telegram_notification(BOT_TOKEN, "-999", "nobody reads this");
    h.slack.fail_next(Fault::Status(404, None));
    let gone_webhook = h.slack_notification(HOOK, "channel gone");
    h.case_with(vec![unknown_chat.clone(), gone_webhook.clone()])
        .await;

    let row = h.settled(&unknown_chat, "failed").await;
    let error = row.last_error.unwrap_or_default();
    assert!(
        error.contains("400") && error.contains("chat not found"),
        "{error}"
    );
    let row = h.settled(&gone_webhook, "failed").await;
    assert!(row.last_error.unwrap_or_default().contains("no_service"));
    // Both rows are settled, so nothing can come back, however long one waits.
    assert_eq!(h.open_rows().await, 0);
    assert_eq!(h.telegram.requests().len(), 1);
    assert_eq!(h.slack.requests().len(), 1);
}

#[tokio::test]
async fn a_redelivered_event_notifies_once() {
    let h = harness().await;
    let notification = h.slack_notification(HOOK, "only once");
    let case_id = h.case_with(vec![notification.clone()]).await;
    h.settled(&notification, "sent").await;

    // JetStream delivers the same event again (a lost ack): the ledger already has its row.
    let stored = h.store.load_stream(case_id).await.expect("stream");
    let envelope = &stored
        .iter()
        .find(|e| matches!(e.envelope.event, Some(Event::NotificationRequested(_))))
        .expect("the notification request")
        .envelope;
    let intake = CaseEventHandler::new(
        h.store.clone(),
        Topology::new("redelivery"),
        Intake::new(Wakes::default()),
    );
    let delivery = Delivery {
        subject: "events.case.redelivered".into(),
        payload: envelope.encode_to_vec().into(),
        headers: None,
        stream_sequence: 2,
        delivered: 2,
    };
    for _ in 0..2 {
        intake.handle(&delivery).await.expect("handled");
    }
    // The row stays settled: nothing can send it again.
    assert_eq!(h.open_rows().await, 0);
    assert_eq!(h.slack.requests_to(HOOK).len(), 1);
    assert_eq!(
        h.row(&notification).await.map(|r| r.status),
        Some("sent".into())
    );
}

#[tokio::test]
async fn the_secrets_are_never_in_the_ledger_logs_or_errors() {
    let logs = CapturedLogs::start();
    // No retry window: the first failure that could be retried is final.
    let h = harness_with(|config| config.notification_retry.window = Duration::ZERO).await;
    // A dropped connection: reqwest's error names the URL, which holds the token.
    h.telegram.fail_next(Fault::CloseConnection);
    let cut_off = h.telegram_notification(BOT_TOKEN, CHAT_ID, "cut off");
    h.case_with(vec![cut_off.clone()]).await;
    let gave_up = h.settled(&cut_off, "failed").await;
    let refused = h.telegram_notification(BOT_TOKEN, "-404", "refused");
    let slack = h.slack_notification(HOOK, "fine");
    h.case_with(vec![refused.clone(), slack.clone()]).await;
    let refused = h.settled(&refused, "failed").await;
    let sent = h.settled(&slack, "sent").await;
    let error = gave_up.last_error.clone().unwrap_or_default();
    assert!(
        error.starts_with("gave up after 1 attempt in 0 s: no answer"),
        "{error}"
    );
    let token_secret = BOT_TOKEN.split_once(':').map_or(BOT_TOKEN, |(_, s)| s);
    for (what, text) in [
        ("cut-off row", format!("{gave_up:?}")),
        ("refused row", format!("{refused:?}")),
        ("slack row", format!("{sent:?}")),
        ("logs", logs.text()),
    ] {
        assert!(
            !text.contains(token_secret),
            "the bot token is in the {what}: {text}"
        );
        assert!(
            !text.contains(HOOK),
            "the webhook URL is in the {what}: {text}"
        );
    }
    assert!(
        logs.text().contains("notification failed"),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn notifications_to_one_slack_webhook_are_paced_a_second_apart() {
    let h = harness().await;
    let first = h.slack_notification(HOOK, "first");
    let second = h.slack_notification(HOOK, "second");
    let elsewhere = h.slack_notification("another-hook", "not held back");
    h.case_with(vec![first.clone(), second.clone(), elsewhere.clone()])
        .await;

    for notification in [&first, &second, &elsewhere] {
        h.settled(notification, "sent").await;
    }
    let requests = h.slack.requests_to(HOOK);
    assert_eq!(requests.len(), 2);
    let gap = requests[1].at - requests[0].at;
    // Measured at the stand-in: the first call also opened the connection, so allow a little.
    assert!(gap >= Duration::from_millis(900), "two posts {gap:?} apart");
    let other = eventually("the other webhook's post", || async {
        h.slack.requests_to("another-hook").pop()
    })
    .await;
    assert!(
        other.at < requests[1].at,
        "another webhook waits for nobody"
    );
}
