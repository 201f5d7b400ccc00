//! A staff notification's outcome becomes a case event: `notification_delivered` or
//! `notification_failed`, once, written with the ledger row's settlement, with no secret.

mod support;

use deskie_bus::Topology;
use deskie_bus::consumer::{Delivery, Handler};
use deskie_outbound::intake::{Intake, Wakes};
use deskie_proto::Message;
use deskie_proto::events::{Envelope, Event, NotificationDelivered, NotificationFailed};
use deskie_store::case_consumer::CaseEventHandler;
use deskie_testkit::Fault;
use support::{BOT_TOKEN, CHAT_ID, HOOK, harness};

fn delivered(events: &[Envelope]) -> Vec<(&Envelope, &NotificationDelivered)> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Some(Event::NotificationDelivered(d)) => Some((e, d)),
            _ => None,
        })
        .collect()
}

fn failed(events: &[Envelope]) -> Vec<&NotificationFailed> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Some(Event::NotificationFailed(f)) => Some(f),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_delivered_slack_notification_is_recorded_once_on_the_case() {
    let h = harness().await;
    let notification = h.slack_notification(HOOK, "New chat");
    let case_id = h.case_with(vec![notification.clone()]).await;

    h.settled(&notification, "sent").await;
    // Written in the transaction that settled the row: there as soon as the row is `sent`.
    let events = h.case_events(case_id).await;
    let recorded = delivered(&events);
    let [(envelope, event)] = recorded.as_slice() else {
        panic!("one notification_delivered: {events:?}")
    };
    assert_eq!(
        *event,
        &NotificationDelivered {
            notification_id: notification.notification_id.clone(),
            kind: "slack".into(),
            by_rule_id: Some("rule-1".into()),
            attempts: 1,
        }
    );
    assert_eq!(envelope.emitted_by, "outbound");
    assert_eq!(
        envelope.causation_id,
        format!("slack_notification:{}", notification.notification_id)
    );
    assert_eq!(envelope.version, 3, "after case_opened and the request");
    assert!(failed(&events).is_empty(), "{events:?}");
    assert_eq!(
        h.projected_version(case_id).await,
        3,
        "the read model moved"
    );

    // JetStream delivers the request again (a lost ack): nothing is sent or recorded twice.
    let intake = CaseEventHandler::new(
        h.store.clone(),
        Topology::new("redelivery"),
        Intake::new(Wakes::default()),
    );
    let delivery = Delivery {
        subject: "events.case.redelivered".into(),
        payload: events[1].encode_to_vec().into(),
        headers: None,
        stream_sequence: 2,
        delivered: 2,
    };
    intake.handle(&delivery).await.expect("handled");
    // The row stays settled: nothing can send it again.
    assert_eq!(h.open_rows().await, 0);
    assert_eq!(h.slack.requests_to(HOOK).len(), 1);
    let events = h.case_events(case_id).await;
    assert_eq!(delivered(&events).len(), 1, "{events:?}");
    assert_eq!(events.len(), 3, "{events:?}");
}

#[tokio::test]
async fn refusals_record_one_failure_each_with_a_reason_and_no_secret() {
    let h = harness().await;
    h.slack.fail_next(Fault::Status(404, None));
    let gone_webhook = h.slack_notification(HOOK, "channel gone");
    let unknown_chat = h.telegram_notification(BOT_TOKEN, "-404", "nobody reads this");
    let fine = h.telegram_notification(BOT_TOKEN, CHAT_ID, "fine");
    let case_id = h
        .case_with(vec![
            gone_webhook.clone(),
            unknown_chat.clone(),
            fine.clone(),
        ])
        .await;

    h.settled(&gone_webhook, "failed").await;
    h.settled(&unknown_chat, "failed").await;
    h.settled(&fine, "sent").await;
    // Every row is settled: nothing more can come, however long one waits.
    assert_eq!(h.open_rows().await, 0);
    let events = h.case_events(case_id).await;
    let failures = failed(&events);
    assert_eq!(failures.len(), 2, "{events:?}");
    let slack = failures
        .iter()
        .find(|f| f.notification_id == gone_webhook.notification_id)
        .expect("the Slack failure");
    assert_eq!(slack.kind, "slack");
    assert_eq!(slack.by_rule_id.as_deref(), Some("rule-1"));
    assert_eq!(slack.attempts, 1, "a refusal is not retried");
    assert!(
        slack.reason.contains("404") && slack.reason.contains("no_service"),
        "{}",
        slack.reason
    );
    let telegram = failures
        .iter()
        .find(|f| f.notification_id == unknown_chat.notification_id)
        .expect("the Telegram failure");
    assert_eq!(telegram.kind, "telegram");
    assert!(
        telegram.reason.contains("chat not found"),
        "{}",
        telegram.reason
    );
    let sent = delivered(&events);
    assert_eq!(sent.len(), 1, "{events:?}");
    assert_eq!(sent[0].1.notification_id, fine.notification_id);

    let token_secret = BOT_TOKEN.split_once(':').map_or(BOT_TOKEN, |(_, s)| s);
    let webhook_url = h.slack.webhook_url(HOOK);
    for envelope in &events {
        let shown = format!("{envelope:?}");
        for secret in [HOOK, webhook_url.as_str(), token_secret] {
            assert!(!shown.contains(secret), "a secret in {shown}");
        }
    }
}
