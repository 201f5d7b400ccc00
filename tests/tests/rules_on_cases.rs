//! Rules on Live Chat cases, end to end: an admin's rules through the API, chats through
//! ingest, effects through outbound to the Chatra stand-in.

mod support;

use std::time::Duration;

use deskie_testkit::{Fault, SlackStandIn, Sse, SseReader};
use serde_json::{Value, json};
use support::{ADMIN, CHAT, CLIENT, Options, Suite, fixture};
use uuid::Uuid;

async fn create_rule(suite: &Suite, rule: Value) -> String {
    let response = suite
        .http
        .post(format!("{}/rules", suite.api))
        .bearer_auth(ADMIN)
        .json(&rule)
        .send()
        .await
        .expect("rule");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

async fn go_online(suite: &Suite, token: &str) {
    let status = suite
        .http
        .put(format!("{}/agents/me/status", suite.api))
        .bearer_auth(token)
        .json(&json!({ "status": "online" }))
        .send()
        .await
        .expect("status")
        .status();
    assert_eq!(status, 200);
}

fn count(types: &[String], wanted: &str) -> usize {
    types.iter().filter(|t| *t == wanted).count()
}

/// The case's event types once `done` holds for them (or whatever they are after 15 s).
async fn events_when(suite: &Suite, case: Uuid, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let types = suite.event_types(case).await;
        if done(&types) || std::time::Instant::now() > deadline {
            return types;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends the pre-chat-form chat's first webhook (accepted) and returns its case id.
async fn new_chat(suite: &Suite) -> Uuid {
    assert_eq!(
        suite
            .webhook(fixture("chat-started-prechat-form.json"))
            .await,
        200
    );
    suite.case_id(CLIENT, CHAT)
}

fn chat(n: usize) -> String {
    json!({
        "eventName": "chatStarted",
        "client": { "id": format!("rr-client-{n}"), "chatId": format!("rr-chat-{n}") },
        "messages": [{ "id": format!("rr-m-{n}"), "type": "client", "text": "hello" }],
    })
    .to_string()
}

#[tokio::test]
async fn a_new_chat_fires_the_greeting_once_assigns_notifies_slack_once_and_plays_a_sound() {
    let slack = SlackStandIn::start().await;
    // Slack's first answer is a 429 asking for a second's wait: it is waited out.
    slack.fail_next(Fault::Status(429, Some(1)));
    let webhook_url = slack.webhook_url("greeting-hook-secret");
    let (suite, chatra) =
        support::start_with_chatra(Options::default(), Some(Duration::from_millis(300))).await;
    chatra.chat_id_for(CLIENT, CHAT);
    let (agent, token) = suite.agent("julia@example.com", &["live_chat"]).await;
    go_online(&suite, &token).await;
    create_rule(
        &suite,
        json!({
            "name": "Greet new chats", "trigger": "case_created", "position": 1,
            "conditions": { "all": [{ "field": "channel", "op": "eq", "value": "live_chat" }] },
            "actions": [
                { "type": "reply", "text": "Hi {{customer.name}}, we are on it." },
                { "type": "assign_round_robin" },
                { "type": "notify_slack", "webhook_url": webhook_url,
                  "text": "New chat from {{customer.name}}: {{message.text}}" },
                { "type": "play_sound", "sound": "bell" }
            ]
        }),
    )
    .await;

    let case = new_chat(&suite).await;
    let case_now = suite
        .case_when(case, |c| {
            c["assignee_id"] == agent.as_str()
                && support::messages_of(c)
                    .iter()
                    .any(|m| m["source"] == "rule" && m["delivery"] == "sent")
        })
        .await;
    assert_eq!(case_now["assignee_id"], agent.as_str(), "{case_now}");
    let sent = chatra.sent_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["text"], "Hi Maria Lopez, we are on it.");
    assert_eq!(sent[0].body["receivedFrom"], "deskie");

    // The same webhook again, and the echo of the greeting: nothing fires again.
    assert_eq!(
        suite
            .webhook(fixture("chat-started-prechat-form.json"))
            .await,
        200
    );
    suite.barrier(case, "barrier-1", "Still there?").await;
    let types = suite.event_types(case).await;
    assert_eq!(count(&types, "rule_fired"), 1, "{types:?}");
    assert_eq!(count(&types, "reply_requested"), 1, "{types:?}");
    assert_eq!(
        count(&types, "notification_requested"),
        2,
        "Slack and the sound: {types:?}"
    );
    assert_eq!(count(&types, "case_assigned"), 1, "{types:?}");
    assert_eq!(count(&types, "reply_delivered"), 1, "{types:?}");
    assert_eq!(chatra.sent_messages().len(), 1);

    // Slack: the 429, then the one post that went through a second later, and nothing more
    // (the delivery is recorded and no ledger row is left open to send again).
    events_when(&suite, case, |t| count(t, "notification_delivered") >= 1).await;
    assert_eq!(suite.open_outbox_rows().await, 0);
    let posts = slack.requests_to("greeting-hook-secret");
    assert_eq!(posts.len(), 2, "a 429 and one retry: {posts:?}");
    assert!(
        posts[1].at.duration_since(posts[0].at) >= Duration::from_millis(950),
        "Retry-After was waited out: {:?}",
        posts[1].at.duration_since(posts[0].at)
    );
    assert_eq!(posts[1].method, "POST");
    assert_eq!(
        posts[1].body,
        json!({ "text": "New chat from Maria Lopez: Hi, my parcel A-10442 still hasn't arrived. Can you help?" })
    );
    // Its outcome is on the case, once, after the wait.
    let types = events_when(&suite, case, |t| count(t, "notification_delivered") >= 1).await;
    assert_eq!(count(&types, "notification_delivered"), 1, "{types:?}");
    assert_eq!(count(&types, "notification_failed"), 0, "{types:?}");

    let (_, events) = suite.get(&format!("/cases/{case}/events")).await;
    let fired = events
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["type"] == "rule_fired")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(fired["data"]["rule_name"], "Greet new chats", "{fired}");

    // Under `deskie run`, the api's /metrics also shows the services without a port.
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
    for family in [
        "api_requests_total",
        "projector_events_total",
        "rules_events_total",
        "outbound_replies_total",
        "outbound_notifications_total",
        "agent_sync_pings_total",
        "relay_unpublished_events",
        "relay_oldest_unpublished_age_seconds",
    ] {
        assert!(
            page.contains(family),
            "{family} missing from /metrics:\n{page}"
        );
    }
    suite.stop().await;
}

#[tokio::test]
async fn stop_processing_stops_later_rules() {
    let (suite, _chatra) = support::start_with_chatra(Options::default(), None).await;
    for (position, stop) in [(1, true), (2, false)] {
        create_rule(
            &suite,
            json!({
                "name": format!("rule {position}"), "trigger": "case_created",
                "position": position, "stop_processing": stop,
                "actions": [{ "type": "set_status", "status": "pending" }, { "type": "play_sound", "sound": "bell" }]
            }),
        )
        .await;
    }
    let case = new_chat(&suite).await;
    let types = events_when(&suite, case, |t| count(t, "rule_fired") >= 1).await;
    suite.barrier(case, "barrier-1", "Still there?").await;
    let types_later = suite.event_types(case).await;
    assert_eq!(count(&types, "rule_fired"), 1, "{types:?}");
    assert_eq!(count(&types_later, "rule_fired"), 1, "{types_later:?}");
    let case_now = suite.case_when(case, |c| c["status"] == "pending").await;
    assert_eq!(case_now["status"], "pending");
    suite.stop().await;
}

#[tokio::test]
async fn round_robin_spreads_30_new_cases_evenly_over_3_online_agents_and_skips_an_offline_one() {
    let (suite, _chatra) = support::start_with_chatra(Options::default(), None).await;
    let mut online = Vec::new();
    for name in ["ana", "ben", "cem"] {
        let (id, token) = suite
            .agent(&format!("{name}@example.com"), &["live_chat"])
            .await;
        go_online(&suite, &token).await;
        online.push(id);
    }
    let (offline, _) = suite.agent("dan@example.com", &["live_chat"]).await;
    create_rule(
        &suite,
        json!({ "name": "Spread", "trigger": "case_created", "actions": [{ "type": "assign_round_robin" }] }),
    )
    .await;

    for n in 0..30 {
        assert_eq!(suite.webhook(chat(n)).await, 200);
    }
    let mut assignees = Vec::new();
    for n in 0..30 {
        let case = suite.case_id(&format!("rr-client-{n}"), &format!("rr-chat-{n}"));
        let assigned = suite
            .case_when(case, |c| c["assignee_id"].is_string())
            .await;
        assignees.push(
            assigned["assignee_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    for agent in &online {
        let got = assignees.iter().filter(|a| *a == agent).count();
        assert_eq!(got, 10, "{agent} got {got} of 30: {assignees:?}");
    }
    assert!(
        !assignees.contains(&offline),
        "the offline agent got a case"
    );
    suite.stop().await;
}

/// A Live Chat agent in `groups` (an empty list: every group), online.
async fn online_agent_in(suite: &Suite, email: &str, groups: &[&str]) -> String {
    let response = suite
        .http
        .post(format!("{}/agents", suite.api))
        .bearer_auth(ADMIN)
        .json(&json!({ "email": email, "name": email, "channel_access": ["live_chat"], "group_ids": groups }))
        .send()
        .await
        .expect("agent");
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    assert_eq!(created["group_ids"], json!(groups), "{created}");
    let token = created["token"].as_str().expect("token").to_owned();
    go_online(suite, &token).await;
    created["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn round_robin_keeps_to_the_case_s_group() {
    let (suite, _chatra) = support::start_with_chatra(Options::default(), None).await;
    let sales = suite.sales_group.clone();
    let support_group = suite.default_group.clone();
    let seller = online_agent_in(&suite, "sam@example.com", &[&sales]).await;
    let anyone = online_agent_in(&suite, "any@example.com", &[]).await;
    let supporter = online_agent_in(&suite, "sue@example.com", &[&support_group]).await;
    create_rule(
        &suite,
        json!({ "name": "Spread", "trigger": "case_created", "actions": [{ "type": "assign_round_robin" }] }),
    )
    .await;

    // Six chats for Chatra's sales group (mapped to the Sales group), two for the default.
    let chat_in = |n: usize, chatra_group: Option<&str>| {
        json!({
            "eventName": "chatStarted",
            "groupId": chatra_group,
            "client": { "id": format!("g-client-{n}"), "chatId": format!("g-chat-{n}") },
            "messages": [{ "id": format!("g-m-{n}"), "type": "client", "text": "hello" }],
        })
        .to_string()
    };
    for n in 0..8 {
        let chatra_group = (n < 6).then_some("chatra-sales");
        assert_eq!(suite.webhook(chat_in(n, chatra_group)).await, 200);
    }
    let mut by_group: Vec<(String, String)> = Vec::new();
    for n in 0..8 {
        let case = suite.case_id(&format!("g-client-{n}"), &format!("g-chat-{n}"));
        let assigned = suite
            .case_when(case, |c| c["assignee_id"].is_string())
            .await;
        let field = |k: &str| assigned[k].as_str().unwrap_or_default().to_owned();
        by_group.push((field("group_id"), field("assignee_id")));
    }
    let count = |group: &str, agent: &str| {
        by_group
            .iter()
            .filter(|(g, a)| g == group && a == agent)
            .count()
    };
    assert_eq!(count(&sales, &seller), 3, "{by_group:?}");
    assert_eq!(count(&sales, &anyone), 3, "{by_group:?}");
    assert_eq!(
        count(&sales, &supporter),
        0,
        "not a Sales agent: {by_group:?}"
    );
    assert_eq!(count(&support_group, &anyone), 1, "{by_group:?}");
    assert_eq!(count(&support_group, &supporter), 1, "{by_group:?}");
    assert_eq!(
        count(&support_group, &seller),
        0,
        "not a Support agent: {by_group:?}"
    );
    suite.stop().await;
}

#[tokio::test]
async fn a_customer_resuming_a_closed_case_notifies_telegram_once() {
    let telegram = deskie_testkit::TelegramStandIn::start().await;
    telegram
        .accept_bot("123456:secret-token")
        .add_chat("-100200");
    // Telegram's first answer is a 429 with `retry_after: 1`: it is waited out.
    telegram.fail_next(Fault::Status(429, Some(1)));
    let mut options = Options::default();
    if let Some(outbound) = options.outbound.as_mut() {
        outbound.telegram_api_url = telegram.api_url().to_owned();
    }
    let (suite, _chatra) = support::start_with_chatra(options, None).await;
    create_rule(
        &suite,
        json!({
            "name": "Tell the team", "trigger": "case_updated",
            "conditions": { "all": [{ "field": "update", "op": "eq", "value": "customer_resumed" }] },
            "actions": [{ "type": "notify_telegram", "bot_token": "123456:secret-token", "chat_id": "-100200", "text": "{{customer.name}} is back" }]
        }),
    )
    .await;
    let case = new_chat(&suite).await;
    suite.case_when(case, |c| c["id"].is_string()).await;
    let closed = suite
        .http
        .patch(format!("{}/cases/{case}", suite.api))
        .bearer_auth(ADMIN)
        .json(&json!({ "status": "closed" }))
        .send()
        .await
        .expect("close");
    assert_eq!(closed.status(), 200);
    let again = json!({
        "eventName": "chatFragment",
        "client": { "id": CLIENT, "chatId": CHAT },
        "messages": [{ "id": "resume-1", "type": "client", "text": "Me again" }],
    });
    // Sent twice in different bytes, so JetStream's duplicate window does not absorb the
    // second copy before routing sees it: routing must know the message by its id.
    for body in [again.to_string(), format!("{again:#}")] {
        assert_eq!(suite.webhook(body).await, 200);
    }
    let types = events_when(&suite, case, |t| count(t, "rule_fired") >= 1).await;
    suite.barrier(case, "barrier-1", "Still there?").await;
    let types_later = suite.event_types(case).await;
    assert_eq!(count(&types, "case_resumed"), 1, "{types:?}");
    assert_eq!(count(&types_later, "rule_fired"), 1, "{types_later:?}");
    assert_eq!(
        count(&types_later, "notification_requested"),
        1,
        "{types_later:?}"
    );
    // Delivered, and no ledger row left open to send again.
    events_when(&suite, case, |t| count(t, "notification_delivered") >= 1).await;
    assert_eq!(suite.open_outbox_rows().await, 0);
    let sent = telegram.requests();
    assert_eq!(sent.len(), 2, "a 429, then Telegram is told once: {sent:?}");
    assert!(
        sent[1].at.duration_since(sent[0].at) >= Duration::from_millis(950),
        "retry_after was waited out: {:?}",
        sent[1].at.duration_since(sent[0].at)
    );
    assert_eq!(sent[1].path, "/bot123456:secret-token/sendMessage");
    assert_eq!(sent[1].body["chat_id"], "-100200");
    assert_eq!(sent[1].body["text"], "Maria Lopez is back");
    let types = events_when(&suite, case, |t| count(t, "notification_delivered") >= 1).await;
    assert_eq!(count(&types, "notification_delivered"), 1, "{types:?}");
    let history = suite.store.load_stream(case).await.expect("history");
    let secret_in_clear = history
        .iter()
        .any(|e| format!("{:?}", e.envelope).contains("secret-token"));
    assert!(!secret_in_clear, "the bot token travels encrypted");
    suite.stop().await;
}

/// Opens `GET /api/v1/stream` as `token`, resuming after `last_event_id` if given.
async fn live_stream(suite: &Suite, token: &str, last_event_id: Option<u64>) -> SseReader {
    let mut request = suite
        .http
        .get(format!("{}/stream", suite.api))
        .bearer_auth(token);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id.to_string());
    }
    let response = request.send().await.expect("stream");
    assert_eq!(response.status(), 200);
    SseReader::new(response, Duration::from_secs(15))
}

/// Events off `live` up to and including the first one `last` accepts (all of them, if
/// none does before the stream goes quiet).
async fn read_until(live: &mut SseReader, last: impl Fn(&Sse) -> bool) -> Vec<Sse> {
    let mut events = Vec::new();
    while let Some(event) = live.next_within(Duration::from_secs(15)).await {
        let done = last(&event);
        events.push(event);
        if done {
            break;
        }
    }
    events
}

fn names(events: &[Sse]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

#[tokio::test]
async fn an_agent_s_live_stream_gets_the_rule_s_sound_and_resumes_from_last_event_id_without_gaps()
{
    let (suite, _chatra) =
        support::start_with_chatra(Options::default(), Some(Duration::from_millis(200))).await;
    let (julia, julia_token) = suite.agent("julia@example.com", &["live_chat"]).await;
    let (_bob, bob_token) = suite.agent("bob@example.com", &["live_chat"]).await;
    go_online(&suite, &julia_token).await;
    create_rule(
        &suite,
        json!({
            "name": "Ring the assignee", "trigger": "case_created",
            "actions": [{ "type": "assign_round_robin" }, { "type": "play_sound", "sound": "bell" }]
        }),
    )
    .await;
    let mut julia_live = live_stream(&suite, &julia_token, None).await;
    // Bob stays connected throughout: what he sees is the reference for "no gaps".
    let mut bob_live = live_stream(&suite, &bob_token, None).await;

    let case = new_chat(&suite).await.to_string();
    let first = read_until(&mut julia_live, |e| e.event == "sound").await;
    let seen = names(&first);
    assert_eq!(seen.first(), Some(&"case_opened"), "{seen:?}");
    assert!(seen.contains(&"customer_message_received"), "{seen:?}");
    assert!(seen.contains(&"rule_fired"), "{seen:?}");
    let sound = first.last().expect("events");
    assert_eq!(
        sound.event, "sound",
        "the assignee hears the bell: {seen:?}"
    );
    assert_eq!(sound.data["case_id"], case);
    assert_eq!(sound.data["data"]["sound"], "bell");
    let assigned = first
        .iter()
        .find(|e| e.event == "case_assigned")
        .expect("case_assigned before the sound");
    assert_eq!(assigned.data["data"]["assignee_id"], julia, "{assigned:?}");
    let last_seen = sound.id;
    drop(julia_live);

    // While Julia is away: the customer writes again and she answers from another screen.
    let later = json!({
        "eventName": "chatFragment",
        "client": { "id": CLIENT, "chatId": CHAT },
        "messages": [{ "id": "while-away-1", "type": "client", "text": "Any news?" }],
    });
    assert_eq!(suite.webhook(later.to_string()).await, 200);
    let (status, body) = suite
        .reply(
            &julia_token,
            suite.case_id(CLIENT, CHAT),
            "Yes: it ships today.",
        )
        .await;
    assert_eq!(status, 202, "{body}");

    let mut resumed = live_stream(&suite, &julia_token, Some(last_seen)).await;
    let after = read_until(&mut resumed, |e| e.event == "reply_delivered").await;
    let seen_after = names(&after);
    assert!(
        after.iter().all(|e| e.id > last_seen),
        "nothing at or before {last_seen} again: {after:?}"
    );
    assert!(
        after.windows(2).all(|w| w[0].id < w[1].id),
        "in order, once: {after:?}"
    );
    assert!(
        after.iter().any(
            |e| e.event == "customer_message_received" && e.data["data"]["text"] == "Any news?"
        ),
        "{seen_after:?}"
    );
    assert!(seen_after.contains(&"reply_requested"), "{seen_after:?}");
    assert_eq!(
        seen_after.last(),
        Some(&"reply_delivered"),
        "{seen_after:?}"
    );

    // Bob, connected all along, saw the very same events after `last_seen`, and no sound
    // (the case has an assignee, and it is not him).
    let last_resumed = after.last().map(|e| e.id).unwrap_or(last_seen);
    let bob_saw = read_until(&mut bob_live, |e| e.id >= last_resumed).await;
    assert!(
        !bob_saw.iter().any(|e| e.event == "sound"),
        "the sound is the assignee's: {:?}",
        names(&bob_saw)
    );
    let bob_ids: Vec<u64> = bob_saw
        .iter()
        .filter(|e| e.id > last_seen)
        .map(|e| e.id)
        .collect();
    let julia_ids: Vec<u64> = after.iter().map(|e| e.id).collect();
    assert_eq!(julia_ids, bob_ids, "the resumed stream has no gap");
    suite.stop().await;
}
