//! The case aggregate in given/when/then form, plus the duplicate-delivery property.

use deskie_domain::case::*;
use deskie_domain::chatra::{ParsedWebhook, parse_webhook};
use deskie_proto::events::*;
use proptest::prelude::*;
use uuid::Uuid;

const INTEGRATION: Uuid = Uuid::from_u128(0xA);
const DEFAULT_GROUP: Uuid = Uuid::from_u128(0xD);
const SALES_GROUP: Uuid = Uuid::from_u128(0x5);

fn mappings() -> Vec<(String, Uuid)> {
    vec![("chatra-sales".to_owned(), SALES_GROUP)]
}

fn webhook(json: &str) -> deskie_domain::chatra::ChatraWebhook {
    match parse_webhook(json.as_bytes()) {
        Ok(ParsedWebhook::Known(w)) => *w,
        other => panic!("not a known webhook: {other:?}"),
    }
}

fn fixture(name: &str) -> deskie_domain::chatra::ChatraWebhook {
    let body = deskie_testkit::chatra_fixture(name);
    webhook(std::str::from_utf8(&body).expect("utf-8"))
}

/// given(events).when(webhook) → the decided events (the test kit's given/when, with this
/// file's routing context).
struct Given {
    case: deskie_testkit::Given,
    links: Vec<(String, Uuid)>,
}

fn given(events: &[Event]) -> Given {
    Given {
        case: deskie_testkit::given(events.iter().cloned()),
        links: Vec::new(),
    }
}

impl Given {
    /// The Chatra agent `chatra_agent_id` is linked to the Deskie agent `agent_id`.
    fn linked(mut self, chatra_agent_id: &str, agent_id: Uuid) -> Self {
        self.links.push((chatra_agent_id.to_owned(), agent_id));
        self
    }

    fn when(&self, webhook: &deskie_domain::chatra::ChatraWebhook) -> Vec<Event> {
        let mappings = mappings();
        let ctx = RoutingContext {
            case_id: case_id_for(INTEGRATION, &webhook.client.id, &webhook.client.chat_id),
            integration_id: INTEGRATION,
            default_group_id: DEFAULT_GROUP,
            group_mappings: &mappings,
            panel: "separate",
            received_from: "deskie",
            agent_links: &self.links,
        };
        self.case
            .when(|state| decide_webhook(state, webhook, &ctx))
            .events()
            .to_vec()
    }
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::type_name).collect()
}

/// Everything a sequence of webhooks produces, delivered in order.
fn deliver(webhooks: &[deskie_domain::chatra::ChatraWebhook]) -> (Vec<Event>, CaseState) {
    let mut history = Vec::new();
    for w in webhooks {
        let decided = given(&history).when(w);
        history.extend(decided);
    }
    let state = CaseState::from_events(&history);
    (history, state)
}

#[test]
fn a_first_chat_started_opens_the_case_with_customer_data_and_the_message() {
    let events = given(&[]).when(&fixture("chat-started-prechat-form.json"));
    assert_eq!(
        names(&events),
        [
            "case_opened",
            "customer_data_changed",
            "customer_message_received"
        ]
    );
    let Event::CaseOpened(opened) = &events[0] else {
        unreachable!()
    };
    assert_eq!(opened.group_id, DEFAULT_GROUP.to_string());
    assert_eq!(opened.channel, "live_chat");
    let Event::CustomerDataChanged(customer) = &events[1] else {
        unreachable!()
    };
    assert_eq!(
        customer.name.as_ref().and_then(|n| n.value.as_deref()),
        Some("Maria Lopez")
    );
    assert_eq!(
        customer.phone.as_ref().and_then(|n| n.value.as_deref()),
        Some("+34 600 123 456")
    );
    let keys: Vec<&str> = customer.fields.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(
        keys,
        ["Customer tier", "Account ID", "Order number", "Topic"]
    );
    assert_eq!(customer.source, "chatra");
}

#[test]
fn the_mapped_group_wins_over_the_default_wherever_the_group_id_sits() {
    for json in [
        r#"{"eventName":"chatFragment","groupId":"chatra-sales","client":{"id":"c","chatId":"h"}}"#,
        r#"{"eventName":"chatFragment","client":{"id":"c","chatId":"h","groupId":"chatra-sales"}}"#,
    ] {
        let events = given(&[]).when(&webhook(json));
        let Event::CaseOpened(opened) = &events[0] else {
            panic!("not opened: {events:?}")
        };
        assert_eq!(opened.group_id, SALES_GROUP.to_string());
        assert_eq!(opened.chatra_group_id.as_deref(), Some("chatra-sales"));
    }
    let unmapped = given(&[]).when(&webhook(
        r#"{"eventName":"chatFragment","groupId":"other","client":{"id":"c","chatId":"h"}}"#,
    ));
    let Event::CaseOpened(opened) = &unmapped[0] else {
        unreachable!()
    };
    assert_eq!(opened.group_id, DEFAULT_GROUP.to_string());
}

#[test]
fn a_fragment_without_chat_started_opens_the_case_and_mirrors_chatra_agents() {
    let events = given(&[]).when(&fixture("chat-fragment-agent-from-chatra-ui.json"));
    assert_eq!(
        names(&events),
        [
            "case_opened",
            "customer_data_changed",
            "agent_message_mirrored",
            "agent_message_mirrored",
            "customer_message_received"
        ]
    );
    let Event::AgentMessageMirrored(julia) = &events[2] else {
        unreachable!()
    };
    assert_eq!(julia.chatra_agent_id, "Zx8Cv2Bn4Mq6Lk1Jh");
    assert_eq!(julia.agent_name.as_deref(), Some("Julia"));
    assert_eq!(julia.agent_id, None, "no link, no Deskie agent");
}

#[test]
fn a_mirrored_message_names_the_linked_deskie_agent_and_carries_the_email() {
    let ann = Uuid::from_u128(0xA11);
    let fragment = webhook(
        r#"{"eventName":"chatFragment","client":{"id":"c","chatId":"h"},
        "agents":[{"id":"A1","email":"ann@example.com"},{"id":"B2"}],
        "messages":[{"id":"m1","type":"agent","text":"hi","agentId":"A1"},
                    {"id":"m2","type":"agent","text":"yo","agentId":"B2","agentEmail":"bob@example.com"},
                    {"id":"m3","type":"agent","text":"?","agentId":"C3"}]}"#,
    );
    let events = given(&[]).linked("A1", ann).when(&fragment);
    let mirrored: Vec<&AgentMessageMirrored> = events
        .iter()
        .filter_map(|e| match e {
            Event::AgentMessageMirrored(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(mirrored.len(), 3);
    assert_eq!(mirrored[0].agent_id, Some(ann.to_string()));
    assert_eq!(mirrored[0].agent_email.as_deref(), Some("ann@example.com"));
    assert_eq!(mirrored[1].agent_id, None);
    assert_eq!(mirrored[1].agent_email.as_deref(), Some("bob@example.com"));
    assert_eq!(mirrored[2].agent_email, None);
}

#[test]
fn the_same_webhook_again_decides_nothing() {
    let fragment = fixture("chat-fragment-agent-from-chatra-ui.json");
    let (history, _) = deliver(std::slice::from_ref(&fragment));
    assert!(given(&history).when(&fragment).is_empty());
}

#[test]
fn an_echo_of_our_reply_settles_it_instead_of_being_stored_again() {
    let started = fixture("chat-started-prechat-form.json");
    let (mut history, _) = deliver(&[started]);
    history.push(Event::ReplyRequested(ReplyRequested {
        message_id: "reply-1".into(),
        agent_id: Some("agent-1".into()),
        text: "We are on it".into(),
        source: "deskie".into(),
        rule_id: None,
    }));
    let echo = webhook(
        r#"{"eventName":"chatFragment","client":{"id":"k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s","chatId":"Q7wErT5yUi9oPa3Sd"},
        "messages":[{"id":"chatra-77","type":"agent","text":"We are on it","agentId":"A1","receivedFrom":"deskie"}]}"#,
    );
    let events = given(&history).when(&echo);
    assert_eq!(names(&events), ["reply_delivered"]);
    let Event::ReplyDelivered(delivered) = &events[0] else {
        unreachable!()
    };
    assert_eq!(
        (
            delivered.message_id.as_str(),
            delivered.chatra_message_id.as_str()
        ),
        ("reply-1", "chatra-77")
    );
    history.extend(events);
    assert!(
        given(&history).when(&echo).is_empty(),
        "a second echo is a no-op"
    );
}

#[test]
fn an_echo_matching_no_reply_is_recorded_as_unmatched_once_never_as_an_agent_message() {
    let echo = webhook(
        r#"{"eventName":"chatFragment","client":{"id":"c","chatId":"h"},
        "messages":[{"id":"x","type":"agent","text":"sent elsewhere","agentId":"A1","receivedFrom":"deskie","createdAt":1732608000123}]}"#,
    );
    let events = given(&[]).when(&echo);
    assert_eq!(names(&events), ["case_opened", "unmatched_echo_received"]);
    let Event::UnmatchedEchoReceived(unmatched) = &events[1] else {
        unreachable!()
    };
    assert_eq!(
        unmatched,
        &UnmatchedEchoReceived {
            chatra_message_id: "x".into(),
            text: "sent elsewhere".into(),
            chatra_agent_id: Some("A1".into()),
            created_at: Some(deskie_proto::timestamp_from_millis(1_732_608_000_123)),
            received_from: "deskie".into(),
        }
    );
    assert!(
        given(&events).when(&echo).is_empty(),
        "the same echo again adds nothing"
    );
}

#[test]
fn a_second_echo_of_a_delivered_reply_is_unmatched_and_resumes_nothing() {
    let (mut history, _) = deliver(&[fixture("chat-transcript.json")]);
    history.push(Event::CaseStatusChanged(CaseStatusChanged {
        from: "open".into(),
        to: "closed".into(),
        by_agent_id: Some("agent".into()),
        by_rule_id: None,
    }));
    history.push(Event::ReplyRequested(ReplyRequested {
        message_id: "reply-1".into(),
        agent_id: None,
        text: "Thanks!".into(),
        source: "rule".into(),
        rule_id: Some("rule-1".into()),
    }));
    history.push(Event::ReplyDelivered(ReplyDelivered {
        message_id: "reply-1".into(),
        chatra_message_id: "chatra-1".into(),
        settled_by: "chatra_response".into(),
        ..Default::default()
    }));
    // Chatra shows the same text under a second id (a duplicate we did not ask for): it
    // matches no undelivered reply, so it is recorded, not shown, and does not reopen the case.
    let duplicate = webhook(
        r#"{"eventName":"chatFragment","client":{"id":"k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s","chatId":"Q7wErT5yUi9oPa3Sd"},
        "messages":[{"id":"chatra-2","type":"agent","text":"Thanks!","agentId":"A1","receivedFrom":"deskie"}]}"#,
    );
    assert_eq!(
        names(&given(&history).when(&duplicate)),
        ["unmatched_echo_received"]
    );
    // The first id again (e.g. in the transcript) is known: nothing.
    let known = webhook(
        r#"{"eventName":"chatFragment","client":{"id":"k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s","chatId":"Q7wErT5yUi9oPa3Sd"},
        "messages":[{"id":"chatra-1","type":"agent","text":"Thanks!","agentId":"A1","receivedFrom":"deskie"}]}"#,
    );
    assert!(given(&history).when(&known).is_empty());
}

#[test]
fn an_echo_of_a_reply_failed_at_its_deadline_still_settles_it() {
    let started = fixture("chat-started-prechat-form.json");
    let (mut history, _) = deliver(&[started]);
    history.push(Event::ReplyRequested(ReplyRequested {
        message_id: "reply-1".into(),
        agent_id: Some("agent-1".into()),
        text: "Late but there".into(),
        source: "deskie".into(),
        rule_id: None,
    }));
    history.push(Event::ReplyFailed(ReplyFailed {
        message_id: "reply-1".into(),
        reason: "Chatra did not confirm this reply within 600 s".into(),
    }));
    let echo = webhook(
        r#"{"eventName":"chatFragment","client":{"id":"k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s","chatId":"Q7wErT5yUi9oPa3Sd"},
        "messages":[{"id":"chatra-9","type":"agent","text":"Late but there","agentId":"A1","receivedFrom":"deskie"}]}"#,
    );
    assert_eq!(names(&given(&history).when(&echo)), ["reply_delivered"]);
}

#[test]
fn a_transcript_fills_only_the_gap_and_ends_the_chat() {
    let (history, _) = deliver(&[fixture("chat-started-prechat-form.json")]);
    let events = given(&history).when(&fixture("chat-transcript.json"));
    // Julia's message, the image, the (unmatched) helpdesk echo and the thank-you were missing.
    assert_eq!(
        names(&events),
        [
            "agent_message_mirrored",
            "customer_message_received",
            "agent_message_mirrored",
            "customer_message_received",
            "chat_ended"
        ]
    );
    let Event::CustomerMessageReceived(image) = &events[1] else {
        unreachable!()
    };
    assert_eq!(image.attachments[0].filename, "photo_of_label.jpg");
    let mut all = history.clone();
    all.extend(events);
    assert!(
        given(&all)
            .when(&fixture("chat-transcript.json"))
            .is_empty()
    );
}

#[test]
fn a_customer_writing_after_the_chat_ended_or_the_case_closed_resumes_it() {
    let (mut history, _) = deliver(&[fixture("chat-transcript.json")]);
    let again = webhook(
        r#"{"eventName":"chatFragment","client":{"id":"k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s","chatId":"Q7wErT5yUi9oPa3Sd"},
        "messages":[{"id":"new-1","type":"client","text":"One more thing"}]}"#,
    );
    let events = given(&history).when(&again);
    assert_eq!(
        names(&events),
        ["case_resumed", "customer_message_received"]
    );

    history.push(Event::CaseStatusChanged(CaseStatusChanged {
        from: "open".into(),
        to: "closed".into(),
        by_agent_id: Some("agent".into()),
        by_rule_id: None,
    }));
    let events = given(&history).when(&again);
    assert_eq!(
        names(&events),
        [
            "case_status_changed",
            "case_resumed",
            "customer_message_received"
        ]
    );
    let Event::CaseResumed(resumed) = &events[1] else {
        unreachable!()
    };
    assert_eq!(resumed.previous_status, "closed");
}

#[test]
fn a_chat_started_with_a_single_message_opens_the_case_with_it_and_a_repeat_adds_nothing() {
    let started = fixture("chat-started-single-message.json");
    let events = given(&[]).when(&started);
    assert_eq!(
        names(&events),
        [
            "case_opened",
            "customer_data_changed",
            "customer_message_received"
        ]
    );
    let Event::CustomerMessageReceived(first) = &events[2] else {
        unreachable!()
    };
    assert_eq!(first.chatra_message_id, "Fs1Dg3Hj5Kl7Zx9Cv");
    assert_eq!(
        first
            .created_at
            .map(|t| deskie_proto::timestamp_to_millis(&t)),
        Some(1_732_700_000_456)
    );

    let repeat = webhook(
        r#"{"eventName":"chatFragment","client":{"id":"p4s8d2f6g0h3j7k1l5z9x3c7v1b5n9m2q6w0e4r","chatId":"Lm2Nb4Vc6Xz8As1Sd"},
        "messages":[{"id":"Fs1Dg3Hj5Kl7Zx9Cv","type":"client","text":"Hello, is anyone there? I need to change my delivery address."}]}"#,
    );
    assert!(given(&events).when(&repeat).is_empty());
}

#[test]
fn system_messages_are_kept_but_never_resume_a_case_nor_name_an_agent() {
    let (mut history, _) = deliver(&[fixture("chat-started-prechat-form.json")]);
    let system = fixture("chat-fragment-system-messages.json");
    let linked = Uuid::from_u128(0x7);
    let events = given(&history)
        .linked("Zx8Cv2Bn4Mq6Lk1Jh", linked)
        .when(&system);
    assert_eq!(
        names(&events),
        ["system_message_received", "system_message_received"],
        "on an open case"
    );
    let Event::SystemMessageReceived(closed_by) = &events[0] else {
        unreachable!()
    };
    assert_eq!(closed_by.chatra_type, "system");
    assert_eq!(closed_by.text, "Julia closed the chat");
    let Event::SystemMessageReceived(rating) = &events[1] else {
        unreachable!()
    };
    assert_eq!(rating.chatra_type, "rating");

    history.push(Event::CaseStatusChanged(CaseStatusChanged {
        from: "open".into(),
        to: "closed".into(),
        by_agent_id: Some("agent".into()),
        by_rule_id: None,
    }));
    history.push(Event::ChatEnded(ChatEnded {}));
    let events = given(&history).when(&system);
    assert_eq!(
        names(&events),
        ["system_message_received", "system_message_received"],
        "on a closed case whose chat ended: no case_status_changed, no case_resumed"
    );
    history.extend(events);
    assert!(given(&history).when(&system).is_empty(), "kept once");
    assert_eq!(CaseState::from_events(&history).status, CaseStatus::Closed);
}

#[test]
fn hand_edited_data_is_kept_and_chatra_only_fills_what_is_empty() {
    let started = fixture("chat-started-prechat-form.json");
    let (mut history, _) = deliver(std::slice::from_ref(&started));
    history.push(Event::CustomerDataChanged(CustomerDataChanged {
        name: Some(OptionalText {
            value: Some("María López (VIP)".into()),
        }),
        phone: Some(OptionalText { value: None }),
        source: "agent".into(),
        ..Default::default()
    }));
    let state = CaseState::from_events(&history);
    assert_eq!(state.customer.name.as_deref(), Some("María López (VIP)"));
    let events = given(&history).when(&started);
    let [Event::CustomerDataChanged(change)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(change.name, None, "the agent's name stays");
    assert_eq!(
        change.phone.as_ref().and_then(|p| p.value.as_deref()),
        Some("+34 600 123 456"),
        "an emptied phone is filled"
    );
}

#[test]
fn an_anonymous_visitor_has_no_invented_data_and_unicode_is_kept() {
    let events = given(&[]).when(&webhook(
        r#"{"eventName":"chatStarted","client":{"id":"anon","chatId":"h","displayedName":"Visitor #4411"},
        "messages":[{"id":"m","type":"client","text":"¿Hola? 你好 👋🏽 — ça va?"}]}"#,
    ));
    assert_eq!(
        names(&events),
        ["case_opened", "customer_message_received"],
        "no customer data at all"
    );
    let Event::CustomerMessageReceived(m) = &events[1] else {
        unreachable!()
    };
    assert_eq!(m.text, "¿Hola? 你好 👋🏽 — ça va?");
}

fn fragment(messages: &[(usize, bool)]) -> deskie_domain::chatra::ChatraWebhook {
    let list: Vec<String> = messages
        .iter()
        .map(|(n, agent)| {
            if *agent {
                format!(r#"{{"id":"m{n}","type":"agent","agentId":"A","text":"agent {n}","createdAt":{}}}"#, 1000 + n)
            } else {
                format!(r#"{{"id":"m{n}","type":"client","text":"customer {n}","createdAt":{}}}"#, 1000 + n)
            }
        })
        .collect();
    webhook(&format!(
        r#"{{"eventName":"chatFragment","client":{{"id":"c","chatId":"h","info":{{"name":"N","k{}":"v"}}}},"messages":[{}]}}"#,
        messages.len(),
        list.join(",")
    ))
}

/// The visible outcome of a case: its messages by Chatra id and its customer data.
fn outcome(state: &CaseState, history: &[Event]) -> (Vec<(String, String)>, CustomerState) {
    let mut messages: Vec<(String, String)> = history
        .iter()
        .filter_map(|e| match e {
            Event::CustomerMessageReceived(m) => {
                Some((m.chatra_message_id.clone(), m.text.clone()))
            }
            Event::AgentMessageMirrored(m) => Some((m.chatra_message_id.clone(), m.text.clone())),
            _ => None,
        })
        .collect();
    messages.sort();
    (messages, state.customer.clone())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any interleaving of duplicate deliveries yields the same case as delivering each
    /// fragment once, in order.
    #[test]
    fn duplicate_deliveries_in_any_order_give_the_same_case(
        authors in prop::collection::vec(any::<bool>(), 1..12),
        cuts in prop::collection::vec(0usize..12, 0..4),
        deliveries in prop::collection::vec((0usize..16, 1usize..4), 1..24),
    ) {
        let messages: Vec<(usize, bool)> = authors.iter().copied().enumerate().collect();
        let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c % messages.len()).collect();
        bounds.extend([0, messages.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let fragments: Vec<_> = bounds.windows(2).map(|w| fragment(&messages[w[0]..w[1]])).collect();

        let (once_history, once_state) = deliver(&fragments);
        // Every fragment at least once, then random repeats in random order.
        let mut order: Vec<usize> = (0..fragments.len()).collect();
        for (pick, times) in deliveries {
            for _ in 0..times { order.push(pick % fragments.len()); }
        }
        let third = order.len() / 3;
        order.rotate_left(third);
        let shuffled: Vec<_> = order.iter().map(|&i| fragments[i].clone()).collect();
        let (many_history, many_state) = deliver(&shuffled);

        prop_assert_eq!(outcome(&once_state, &once_history).0, outcome(&many_state, &many_history).0);
        prop_assert_eq!(once_state.customer.name, many_state.customer.name);
        let once_keys: std::collections::BTreeSet<_> = once_state.customer.fields.iter().map(|f| f.0.clone()).collect();
        let many_keys: std::collections::BTreeSet<_> = many_state.customer.fields.iter().map(|f| f.0.clone()).collect();
        prop_assert_eq!(once_keys, many_keys);
        prop_assert_eq!(names(&once_history).iter().filter(|n| **n == "case_opened").count(), 1);
        prop_assert_eq!(names(&many_history).iter().filter(|n| **n == "case_opened").count(), 1);
    }
}

/// The state a writer gets from a snapshot: compacted, plus the asked-about ids and the
/// replies they settled, as the store's lookup adds them back.
fn as_snapshot_gives(full: &CaseState, asked_ids: &[&str], asked_replies: &[&str]) -> CaseState {
    let mut state = full.compacted();
    let json = serde_json::to_string(&state).expect("a snapshot serialises");
    state = serde_json::from_str(&json).expect("and reads back");
    for (reply_id, reply) in &full.replies {
        if let Some(chatra_id) = &reply.chatra_message_id
            && (asked_replies.contains(&reply_id.as_str())
                || asked_ids.contains(&chatra_id.as_str()))
        {
            state.learn_chatra_message(chatra_id, Some(reply_id));
        }
    }
    for id in asked_ids {
        if full.chatra_message_ids.contains(*id) {
            state.learn_chatra_message(id, None);
        }
    }
    state
}

#[test]
fn a_compacted_state_plus_what_is_asked_decides_as_the_whole_history_does() {
    let started = fixture("chat-started-prechat-form.json");
    let (mut history, _) = deliver(std::slice::from_ref(&started));
    for (id, text) in [("reply-1", "We are on it"), ("reply-2", "Done")] {
        history.push(Event::ReplyRequested(ReplyRequested {
            message_id: id.into(),
            agent_id: Some("agent-1".into()),
            text: text.into(),
            source: "deskie".into(),
            rule_id: None,
        }));
    }
    history.push(Event::ReplyDelivered(ReplyDelivered {
        message_id: "reply-1".into(),
        chatra_message_id: "chatra-77".into(),
        settled_by: "echo".into(),
        ..Default::default()
    }));
    let full = CaseState::from_events(&history);
    let compacted = full.compacted();
    assert!(compacted.chatra_message_ids.is_empty());
    assert!(compacted.reply("reply-1").is_none(), "delivered: left out");
    assert!(
        compacted.reply("reply-2").is_some(),
        "waiting for its echo: kept"
    );

    let echoes = [
        r#"{"eventName":"chatFragment","client":{"id":"k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s","chatId":"Q7wErT5yUi9oPa3Sd"},
        "messages":[{"id":"chatra-77","type":"agent","text":"We are on it","agentId":"A1","receivedFrom":"deskie"}]}"#,
        r#"{"eventName":"chatFragment","client":{"id":"k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s","chatId":"Q7wErT5yUi9oPa3Sd"},
        "messages":[{"id":"chatra-78","type":"agent","text":"Done","agentId":"A1","receivedFrom":"deskie"}]}"#,
    ];
    let mut webhooks: Vec<_> = echoes.iter().map(|json| webhook(json)).collect();
    webhooks.push(started);
    for w in &webhooks {
        let asked: Vec<&str> = w.messages.iter().map(|m| m.id.as_str()).collect();
        let from_snapshot = Given {
            case: deskie_testkit::Given::of(as_snapshot_gives(&full, &asked, &[])),
            links: Vec::new(),
        };
        let whole = Given {
            case: deskie_testkit::Given::of(full.clone()),
            links: Vec::new(),
        };
        assert_eq!(from_snapshot.when(w), whole.when(w), "{asked:?}");
    }
    for reply_id in ["reply-1", "reply-2", "nope"] {
        for chatra_id in ["chatra-77", "chatra-99"] {
            let outcome = DeliveryOutcome::Delivered {
                chatra_message_id: chatra_id.into(),
                chatra_agent_id: None,
            };
            let state = as_snapshot_gives(&full, &[chatra_id], &[reply_id]);
            assert_eq!(
                decide_delivery(&state, reply_id, &outcome),
                decide_delivery(&full, reply_id, &outcome),
                "{reply_id} delivered as {chatra_id}"
            );
        }
    }
}
