//! The case read model: each case event lands in `cases` / `case_messages` as the api
//! will show it (BRIEF §3), and cases list newest first with filters and a cursor.

mod case_support;
mod common;

use case_support::*;
use chrono::DateTime;
use deskie_proto::events::{
    CaseAssigned, CaseGroupChanged, CaseResumed, CaseStatusChanged, ChatEnded, CustomerDataChanged,
    CustomerDetails, CustomerField, Event, OptionalText, ReplyDelivered, ReplyFailed,
    ReplyOutcomeUnknown, RuleFired,
};
use deskie_store::read_models::cases::{self, CaseFilter, FieldView};
use serde_json::json;
use uuid::Uuid;

fn text(value: Option<&str>) -> Option<OptionalText> {
    Some(OptionalText {
        value: value.map(str::to_owned),
    })
}

#[tokio::test]
async fn an_opened_case_is_open_with_an_empty_customer() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let stored = case.record(vec![opened()]).await;

    let view = case.view().await;
    assert_eq!(view.version, 1);
    assert_eq!(view.status, "open");
    assert_eq!(view.channel, "live_chat");
    assert_eq!(view.integration_id, INTEGRATION);
    assert_eq!(view.group_id, GROUP);
    assert_eq!(view.panel, "informational");
    assert_eq!(view.chatra_client_id, "client-1");
    assert_eq!(view.chatra_chat_id, "chat-1");
    assert_eq!(view.chatra_group_id.as_deref(), Some("chatra-sales"));
    assert_eq!(view.assignee_id, None);
    assert!(!view.chat_ended);
    let occurred = stored[0].occurred_at.as_ref().expect("occurred_at");
    let occurred = DateTime::from_timestamp(occurred.seconds, occurred.nanos as u32).expect("time");
    assert_eq!(
        view.created_at.timestamp_micros(),
        occurred.timestamp_micros()
    );
    assert_eq!(view.created_at, view.updated_at);
    assert_eq!(
        serde_json::to_value(&view.customer).expect("json"),
        json!({
            "name": null, "email": null, "phone": null, "fields": [],
            "details": {"ip": null, "browser": null, "os": null, "language": null, "location": null, "last_visit": null}
        })
    );
    assert!(case.messages().await.is_empty());
}

#[tokio::test]
async fn customer_and_mirrored_agent_messages_are_received_from_chatra() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let (customer, agent_msg, agent) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    case.record(vec![
        opened(),
        customer_says("Hello 👋")
            .id(customer)
            .at(1_700_000_000)
            .into(),
        agent_mirrored(agent_msg, Some(agent)),
    ])
    .await;

    let messages = case.messages().await;
    assert_eq!(messages.len(), 2);
    let first = &messages[0];
    assert_eq!(first.id, customer);
    assert_eq!(
        (
            first.author.as_str(),
            first.source.as_str(),
            first.delivery.as_str()
        ),
        ("customer", "chatra", "received")
    );
    assert_eq!(first.text, "Hello 👋");
    assert_eq!(first.chatra_message_id.as_deref(), Some("chatra-Hello 👋"));
    assert_eq!(first.created_at.timestamp(), 1_700_000_000);
    assert_eq!(first.attachments, json!([]));

    let second = &messages[1];
    assert_eq!(second.author, "agent");
    assert_eq!(second.agent_id, Some(agent));
    assert_eq!(second.chatra_agent_id.as_deref(), Some("chatra-agent-7"));
    assert_eq!(
        (second.source.as_str(), second.delivery.as_str()),
        ("chatra", "received")
    );
    assert_eq!(
        second.attachments,
        json!([{
            "filename": "scan.png", "size": 2048, "is_image": true,
            "url": "https://files.chatra.example/scan.png", "preview_url": null,
            "width": 640, "height": 480,
            "mime_type": null, "is_inline": false, "inline_id": null
        }])
    );
    assert_eq!(case.view().await.version, 3);
}

#[tokio::test]
async fn a_message_without_its_own_time_takes_the_event_time() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let id = Uuid::now_v7();
    // The builder's message has no time of its own.
    let stored = case
        .record(vec![opened(), customer_says("hi").id(id).into()])
        .await;
    let occurred = stored[1].occurred_at.as_ref().expect("occurred_at").seconds;
    assert_eq!(case.messages().await[0].created_at.timestamp(), occurred);
}

#[tokio::test]
async fn replies_are_pending_until_delivered_failed_or_unknown() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let agent = Uuid::now_v7();
    let [sent, failed, unknown, by_rule] = [(); 4].map(|()| Uuid::now_v7());
    case.record(vec![
        opened(),
        reply("reply from deskie")
            .id(sent)
            .by_agent(Some(agent))
            .into(),
        reply("reply from deskie")
            .id(failed)
            .by_agent(Some(agent))
            .into(),
        reply("reply from deskie")
            .id(unknown)
            .by_agent(Some(agent))
            .into(),
        reply("reply from rule").id(by_rule).from("rule").into(),
    ])
    .await;
    let messages = case.messages().await;
    assert!(messages.iter().all(|m| m.delivery == "pending"));
    assert!(
        messages
            .iter()
            .all(|m| m.chatra_message_id.is_none() && m.chatra_agent_id.is_none())
    );
    let reply_of = |id: Uuid| {
        messages
            .iter()
            .find(|m| m.id == id)
            .expect("message")
            .clone()
    };
    let typed = reply_of(sent);
    assert_eq!(
        (typed.author.as_str(), typed.source.as_str()),
        ("agent", "deskie")
    );
    assert_eq!(typed.agent_id, Some(agent));
    let auto = reply_of(by_rule);
    assert_eq!(
        (auto.author.as_str(), auto.source.as_str()),
        ("system", "rule")
    );
    assert_eq!(auto.agent_id, None);

    case.record(vec![
        Event::ReplyDelivered(ReplyDelivered {
            message_id: sent.to_string(),
            chatra_message_id: "chatra-echo-1".into(),
            chatra_agent_id: Some("chatra-agent-9".into()),
            ..Default::default()
        }),
        Event::ReplyFailed(ReplyFailed {
            message_id: failed.to_string(),
            reason: "401".into(),
        }),
        Event::ReplyOutcomeUnknown(ReplyOutcomeUnknown {
            message_id: unknown.to_string(),
            reason: "timeout".into(),
            ..Default::default()
        }),
    ])
    .await;
    let messages = case.messages().await;
    let reply_of = |id: Uuid| {
        messages
            .iter()
            .find(|m| m.id == id)
            .expect("message")
            .clone()
    };
    let delivered = reply_of(sent);
    assert_eq!(delivered.delivery, "sent");
    assert_eq!(
        delivered.chatra_message_id.as_deref(),
        Some("chatra-echo-1")
    );
    assert_eq!(delivered.chatra_agent_id.as_deref(), Some("chatra-agent-9"));
    assert_eq!(reply_of(failed).delivery, "failed");
    assert_eq!(reply_of(unknown).delivery, "unknown");
    assert_eq!(reply_of(by_rule).delivery, "pending");
}

#[tokio::test]
async fn customer_data_changes_only_what_the_event_carries() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    case.record(vec![
        opened(),
        Event::CustomerDataChanged(CustomerDataChanged {
            name: text(Some("Zoë")),
            email: text(Some("zoe@example.com")),
            phone: text(Some("+1 555")),
            fields: vec![
                CustomerField {
                    key: "order".into(),
                    value: "42".into(),
                },
                CustomerField {
                    key: "agree".into(),
                    value: "yes".into(),
                },
            ],
            fields_changed: true,
            details: Some(CustomerDetails {
                ip: Some("203.0.113.7".into()),
                browser: Some("Firefox 128".into()),
                os: None,
                language: Some("de".into()),
                location: Some("Berlin, Germany".into()),
                last_visit: at(1_732_608_000),
            }),
            source: "chatra".into(),
            agent_id: None,
        }),
    ])
    .await;
    let customer = case.view().await.customer;
    assert_eq!(customer.name.as_deref(), Some("Zoë"));
    assert_eq!(
        customer.fields,
        vec![
            FieldView {
                key: "order".into(),
                value: "42".into()
            },
            FieldView {
                key: "agree".into(),
                value: "yes".into()
            },
        ]
    );
    assert_eq!(
        serde_json::to_value(&customer.details).expect("json"),
        json!({
            "ip": "203.0.113.7", "browser": "Firefox 128", "os": null, "language": "de",
            "location": "Berlin, Germany", "last_visit": "2024-11-26T08:00:00Z"
        })
    );

    // Name untouched, email cleared, phone replaced; fields and details left alone.
    case.record(vec![Event::CustomerDataChanged(CustomerDataChanged {
        name: None,
        email: text(None),
        phone: text(Some("+1 777")),
        fields: Vec::new(),
        fields_changed: false,
        details: None,
        source: "agent".into(),
        agent_id: Some(Uuid::now_v7().to_string()),
    })])
    .await;
    let after = case.view().await.customer;
    assert_eq!(after.name.as_deref(), Some("Zoë"));
    assert_eq!(after.email, None);
    assert_eq!(after.phone.as_deref(), Some("+1 777"));
    assert_eq!(after.fields, customer.fields);
    assert_eq!(after.details, customer.details);

    // An empty list with `fields_changed` empties the fields.
    case.record(vec![Event::CustomerDataChanged(CustomerDataChanged {
        fields_changed: true,
        source: "chatra".into(),
        ..Default::default()
    })])
    .await;
    assert!(case.view().await.customer.fields.is_empty());
}

#[tokio::test]
async fn assignment_group_status_and_chat_end_follow_their_events() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let (agent, group) = (Uuid::now_v7(), Uuid::now_v7());
    case.record(vec![
        opened(),
        Event::CaseAssigned(CaseAssigned {
            assignee_id: Some(agent.to_string()),
            ..Default::default()
        }),
        Event::CaseGroupChanged(CaseGroupChanged {
            group_id: group.to_string(),
            ..Default::default()
        }),
        Event::CaseStatusChanged(CaseStatusChanged {
            from: "open".into(),
            to: "closed".into(),
            ..Default::default()
        }),
        Event::ChatEnded(ChatEnded {}),
    ])
    .await;
    let view = case.view().await;
    assert_eq!(view.assignee_id, Some(agent));
    assert_eq!(view.group_id, group);
    assert_eq!(
        view.chatra_group_id.as_deref(),
        Some("chatra-sales"),
        "a move naming no Chatra group keeps the one the chat came with"
    );
    assert_eq!(view.status, "closed");
    assert!(view.chat_ended);

    let sales = Uuid::now_v7();
    case.record(vec![Event::CaseGroupChanged(CaseGroupChanged {
        group_id: sales.to_string(),
        reason: Some("chatra_visitor_group".into()),
        chatra_group_id: Some("chatra-vip".into()),
        ..Default::default()
    })])
    .await;
    let view = case.view().await;
    assert_eq!(view.group_id, sales);
    assert_eq!(view.chatra_group_id.as_deref(), Some("chatra-vip"));

    let stored = case
        .record(vec![
            Event::CaseResumed(CaseResumed {
                message_id: Uuid::now_v7().to_string(),
                previous_status: "closed".into(),
            }),
            Event::CaseAssigned(CaseAssigned::default()),
            Event::RuleFired(RuleFired {
                rule_id: "r1".into(),
                rule_name: "greet".into(),
                ..Default::default()
            }),
        ])
        .await;
    let view = case.view().await;
    assert!(!view.chat_ended);
    assert_eq!(view.assignee_id, None);
    assert_eq!(
        view.status, "closed",
        "resuming is its own event; the status event follows it"
    );
    assert_eq!(view.version, 9);
    let last = stored[2].occurred_at.as_ref().expect("occurred_at");
    assert_eq!(view.updated_at.timestamp(), last.seconds);
    assert!(view.updated_at > view.created_at);
}

#[tokio::test]
async fn messages_are_ordered_by_time_then_by_the_event_that_added_them() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let [late, same_a, same_b, early] = [(); 4].map(|()| Uuid::now_v7());
    case.record(vec![
        opened(),
        customer_says("late").id(late).at(1_700_000_300).into(),
        customer_says("same-a").id(same_a).at(1_700_000_200).into(),
        customer_says("same-b").id(same_b).at(1_700_000_200).into(),
        // A transcript filling a gap: appended last, written first.
        customer_says("early").id(early).at(1_700_000_100).into(),
    ])
    .await;
    let order: Vec<Uuid> = case.messages().await.iter().map(|m| m.id).collect();
    assert_eq!(order, [early, same_a, same_b, late]);
}

#[tokio::test]
async fn cases_list_newest_first_with_filters_and_a_cursor() {
    let (_db, store) = common::store().await;
    let other_group = Uuid::now_v7();
    let agent = Uuid::now_v7();
    let mut ids = Vec::new();
    for n in 0..5 {
        let case = Case::new(&store);
        let group = if n % 2 == 0 { GROUP } else { other_group };
        let mut events = vec![opened_in(group)];
        if n == 3 {
            events.push(Event::CaseAssigned(CaseAssigned {
                assignee_id: Some(agent.to_string()),
                ..Default::default()
            }));
            events.push(Event::CaseStatusChanged(CaseStatusChanged {
                from: "open".into(),
                to: "pending".into(),
                ..Default::default()
            }));
        }
        case.record(events).await;
        ids.push(case.id);
    }
    let newest_first: Vec<Uuid> = ids.iter().rev().copied().collect();
    let pool = store.pool();
    let list = |filter: CaseFilter| async move {
        cases::list(pool, &filter)
            .await
            .expect("list")
            .into_iter()
            .map(|c| c.id)
            .collect::<Vec<_>>()
    };
    let all = CaseFilter {
        limit: 50,
        ..Default::default()
    };
    assert_eq!(list(all.clone()).await, newest_first);

    // Two pages of two, then the rest, each starting strictly before the last one seen.
    let first = cases::list(
        pool,
        &CaseFilter {
            limit: 2,
            ..all.clone()
        },
    )
    .await
    .expect("list");
    assert_eq!(
        first.iter().map(|c| c.id).collect::<Vec<_>>(),
        newest_first[..2]
    );
    let cursor = first.last().map(|c| (c.created_at, c.id));
    let second = list(CaseFilter {
        limit: 2,
        before: cursor,
        ..all.clone()
    })
    .await;
    assert_eq!(second, newest_first[2..4]);

    let in_other_group = list(CaseFilter {
        group_id: Some(other_group),
        ..all.clone()
    })
    .await;
    assert_eq!(in_other_group, [ids[3], ids[1]]);
    assert_eq!(
        list(CaseFilter {
            status: Some("pending".into()),
            ..all.clone()
        })
        .await,
        [ids[3]]
    );
    assert_eq!(
        list(CaseFilter {
            assignee_id: Some(agent),
            ..all.clone()
        })
        .await,
        [ids[3]]
    );
    assert_eq!(
        list(CaseFilter {
            channel: Some("live_chat".into()),
            ..all.clone()
        })
        .await
        .len(),
        5
    );
    assert!(
        list(CaseFilter {
            channel: Some("email".into()),
            ..all.clone()
        })
        .await
        .is_empty()
    );
    assert!(
        cases::get(pool, Uuid::now_v7())
            .await
            .expect("get")
            .is_none()
    );
}
