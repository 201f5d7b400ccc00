//! The Chatra webhook parser against the shared fixtures, variants, and arbitrary input.

use deskie_domain::chatra::*;
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    deskie_testkit::chatra_fixture(name)
}

fn known(body: &[u8]) -> ChatraWebhook {
    match parse_webhook(body) {
        Ok(ParsedWebhook::Known(w)) => *w,
        other => panic!("expected a known webhook, got {other:?}"),
    }
}

#[test]
fn chat_started_with_prechat_form_keeps_contact_data_and_fields_in_order() {
    let w = known(&fixture("chat-started-prechat-form.json"));
    assert_eq!(w.kind, ChatraEventKind::ChatStarted);
    assert_eq!(w.client.id, "k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s");
    assert_eq!(w.client.chat_id, "Q7wErT5yUi9oPa3Sd");
    assert_eq!(w.client.name.as_deref(), Some("Maria Lopez"));
    assert_eq!(w.client.email.as_deref(), Some("maria.lopez@example.com"));
    assert_eq!(w.client.phone.as_deref(), Some("+34 600 123 456"));
    let keys: Vec<&str> = w.client.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["Customer tier", "Account ID", "Order number", "Topic"]
    );
    assert!(w.agent_ids.is_empty());
    assert_eq!(w.messages.len(), 1);
    assert_eq!(w.messages[0].author, MessageAuthor::Client);
    assert_eq!(w.messages[0].created_at_ms, Some(1_732_608_000_123));
    assert_eq!(w.client.details, ClientDetails::default());
}

#[test]
fn fragment_keeps_agent_messages_and_the_received_from_tag() {
    let w = known(&fixture("chat-fragment-agent-from-chatra-ui.json"));
    assert_eq!(w.kind, ChatraEventKind::ChatFragment);
    assert_eq!(w.agent_ids, ["Zx8Cv2Bn4Mq6Lk1Jh", "Hd4Fg6Jk8Lm0Np2Qr"]);
    let julia = &w.messages[0];
    assert_eq!(julia.author, MessageAuthor::Agent);
    assert_eq!(julia.agent_id.as_deref(), Some("Zx8Cv2Bn4Mq6Lk1Jh"));
    assert_eq!(julia.agent_name.as_deref(), Some("Julia"));
    assert_eq!(julia.received_from, None);
    assert_eq!(
        w.messages[1].received_from.as_deref(),
        Some("acme-helpdesk")
    );
    assert_eq!(w.messages[2].text, "Great, thank you!");
}

#[test]
fn an_agent_email_is_read_from_the_message_else_from_its_agents_entry() {
    let w = known(
        br#"{"eventName":"chatFragment","client":{"id":"c","chatId":"h"},
        "agents":[{"id":"A1","email":" ann@example.com "},{"id":"B2","email":"not an address"},{"id":7,"email":"num@example.com"}],
        "messages":[{"id":"m1","type":"agent","agentId":"A1","text":"a"},
                    {"id":"m2","type":"agent","agentId":"A1","agentEmail":"own@example.com","text":"b"},
                    {"id":"m3","type":"agent","agentId":"B2","text":"c"},
                    {"id":"m4","type":"agent","agentId":7,"text":"d"},
                    {"id":"m5","type":"agent","text":"e"},
                    {"id":"m6","type":"agent","agentId":"A1","agentEmail":{"x":1},"text":"f"}]}"#,
    );
    let emails: Vec<Option<&str>> = w
        .messages
        .iter()
        .map(|m| m.agent_email.as_deref())
        .collect();
    assert_eq!(
        emails,
        [
            Some("ann@example.com"),
            Some("own@example.com"),
            None,
            Some("num@example.com"),
            None,
            Some("ann@example.com"),
        ]
    );
}

#[test]
fn transcript_maps_attachment_metadata() {
    let w = known(&fixture("chat-transcript.json"));
    assert_eq!(w.kind, ChatraEventKind::ChatTranscript);
    assert_eq!(w.messages.len(), 5);
    let file = w.messages[2].files.first().expect("attachment");
    assert_eq!(file.filename, "photo_of_label.jpg");
    assert_eq!(file.size, Some(184_233));
    assert!(file.is_image);
    assert_eq!((file.width, file.height), (Some(1280), Some(960)));
    assert!(
        file.preview_url
            .as_deref()
            .unwrap_or("")
            .ends_with("_preview.jpg")
    );
}

#[test]
fn chat_started_with_a_single_message_and_agent_object_keeps_that_message() {
    let w = known(&fixture("chat-started-single-message.json"));
    assert_eq!(w.kind, ChatraEventKind::ChatStarted);
    assert_eq!(w.agent_ids, ["Zx8Cv2Bn4Mq6Lk1Jh"]);
    assert_eq!(w.messages.len(), 1);
    let first = &w.messages[0];
    assert_eq!(first.id, "Fs1Dg3Hj5Kl7Zx9Cv");
    assert_eq!(first.author, MessageAuthor::Client);
    assert!(first.text.starts_with("Hello, is anyone there?"));
    assert_eq!(first.created_at_ms, Some(1_732_700_000_456));
    assert!(w.unreadable.is_empty());
}

#[test]
fn a_single_message_comes_first_and_each_id_once_when_the_arrays_repeat_it() {
    let w = known(
        br#"{"eventName":"chatStarted","client":{"id":"c","chatId":"h"},
        "agent":{"id":"A1","email":"ann@example.com"},"agents":[{"id":"A1"},{"id":"B2"}],
        "message":{"id":"m1","type":"client","text":"first"},
        "messages":[{"id":"m1","type":"client","text":"first"},{"id":"m2","type":"agent","agentId":"A1","text":"hi"}]}"#,
    );
    let ids: Vec<&str> = w.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2"]);
    assert_eq!(w.agent_ids, ["A1", "B2"]);
    assert_eq!(
        w.messages[1].agent_email.as_deref(),
        Some("ann@example.com"),
        "the single agent object is an agents entry too"
    );
}

#[test]
fn system_and_unknown_types_are_system_messages() {
    let w = known(&fixture("chat-fragment-system-messages.json"));
    assert_eq!(
        w.messages
            .iter()
            .map(|m| m.author.clone())
            .collect::<Vec<_>>(),
        [
            MessageAuthor::System("system".into()),
            MessageAuthor::System("rating".into())
        ]
    );
    assert_eq!(w.messages[0].agent_id.as_deref(), Some("Zx8Cv2Bn4Mq6Lk1Jh"));
    let untyped = known(
        br#"{"eventName":"chatFragment","client":{"id":"c","chatId":"h"},
        "messages":[{"id":"m1","text":"no type"},{"id":"m2","type":7,"text":"odd type"}]}"#,
    );
    assert_eq!(untyped.messages[0].author, MessageAuthor::Untyped);
    assert_eq!(
        untyped.messages[1].author,
        MessageAuthor::System("7".into())
    );
}

#[test]
fn every_attachment_shape_is_kept_in_order() {
    let w = known(&fixture("chat-fragment-attachments.json"));
    let files: Vec<&ChatraFile> = w.messages.iter().flat_map(|m| &m.files).collect();
    let names: Vec<&str> = files.iter().map(|f| f.filename.as_str()).collect();
    assert_eq!(
        names,
        ["receipt.png", "label.jpg", "invoice.pdf", "box.jpg"]
    );
    assert_eq!(
        files[0].preview_url.as_deref(),
        Some("https://files.chatra.example/receipt-preview.png")
    );
    assert_eq!(
        files[1].preview_url.as_deref(),
        Some("https://files.chatra.example/label-preview.jpg"),
        "previewLink is the 2026 name of previewUrl"
    );
    assert_eq!((files[1].width, files[1].height), (Some(320), Some(200)));
    let invoice = files[2];
    assert_eq!(invoice.mime_type.as_deref(), Some("application/pdf"));
    assert!(!invoice.is_image && !invoice.is_inline);
    assert_eq!(invoice.size, Some(90_210));
    let photo = files[3];
    assert!(photo.is_image, "an image/* MIME type makes an image");
    assert!(photo.is_inline);
    assert_eq!(photo.inline_id.as_deref(), Some("img-1"));
    assert_eq!(
        photo.url.as_deref(),
        Some("https://files.chatra.example/box.jpg")
    );
}

#[test]
fn created_at_is_read_in_every_known_form_and_an_unreadable_one_is_reported() {
    let w = known(&fixture("chat-fragment-created-at-forms.json"));
    let times: Vec<Option<i64>> = w.messages.iter().map(|m| m.created_at_ms).collect();
    assert_eq!(
        times,
        [
            Some(1_732_608_500_000),
            Some(1_732_608_501_000),
            Some(1_732_608_502_000),
            Some(1_732_608_503_000),
            None
        ]
    );
    assert_eq!(
        w.unreadable,
        [UnreadableValue {
            message_id: "Ts5Bad0000000000e".into(),
            key: "createdAt".into(),
            found: "\"last tuesday\"".into(),
        }]
    );
}

#[test]
fn a_message_without_an_id_is_kept_under_an_id_derived_from_it() {
    let body = br#"{"eventName":"chatFragment","client":{"id":"c","chatId":"h"},
        "messages":[{"type":"client","text":"no id"},{"type":"client","text":"no id either"}]}"#;
    let w = known(body);
    assert_eq!(w.messages.len(), 2);
    assert!(
        w.messages
            .iter()
            .all(|m| m.id.starts_with(DERIVED_ID_PREFIX))
    );
    assert_ne!(w.messages[0].id, w.messages[1].id);
    assert_eq!(
        known(body).messages[0].id,
        w.messages[0].id,
        "the same message sent again gets the same id"
    );
    assert_eq!(w.unreadable.len(), 2);
    assert!(w.unreadable.iter().all(|u| u.key == "id"));
}

#[test]
fn text_may_come_under_message_and_group_id_in_either_place() {
    let body =
        br#"{"eventName":"chatFragment","client":{"id":"c1","chatId":"h1","groupId":"g-in-client"},
        "messages":[{"id":"m1","type":"client","message":"hola"}]}"#;
    let w = known(body);
    assert_eq!(w.messages[0].text, "hola");
    assert_eq!(w.group_id.as_deref(), Some("g-in-client"));

    let body = br#"{"eventName":"chatStarted","groupId":"top","client":{"id":"c1","chatId":"h1","groupId":"inner"}}"#;
    assert_eq!(known(body).group_id.as_deref(), Some("top"));
}

#[test]
fn visitor_details_are_read_when_present_and_null_otherwise() {
    let body = br#"{"eventName":"chatStarted","client":{"id":"c1","chatId":"h1","ip":"203.0.113.9",
        "browser":"Firefox 130","os":"macOS 14","language":"es","location":{"city":"Madrid","country":"Spain"},
        "lastVisit":1732608000000}}"#;
    let d = known(body).client.details;
    assert_eq!(d.ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(d.browser.as_deref(), Some("Firefox 130"));
    assert_eq!(d.os.as_deref(), Some("macOS 14"));
    assert_eq!(d.language.as_deref(), Some("es"));
    assert_eq!(d.location.as_deref(), Some("Madrid, Spain"));
    assert_eq!(d.last_visit_ms, Some(1_732_608_000_000));
}

#[test]
fn unknown_event_names_are_reported_not_refused() {
    let parsed = parse_webhook(br#"{"eventName":"chatRated","whatever":[1,2]}"#);
    assert_eq!(
        parsed,
        Ok(ParsedWebhook::UnknownEvent {
            event_name: "chatRated".into()
        })
    );
}

#[test]
fn bad_bodies_get_an_error_that_names_the_problem() {
    assert!(matches!(
        parse_webhook(b"{not json"),
        Err(WebhookParseError::InvalidJson(_))
    ));
    assert_eq!(parse_webhook(b"[1]"), Err(WebhookParseError::NotAnObject));
    assert_eq!(
        parse_webhook(b"{}"),
        Err(WebhookParseError::MissingEventName)
    );
    assert_eq!(
        parse_webhook(br#"{"eventName":"chatFragment","client":{"chatId":"x"}}"#),
        Err(WebhookParseError::MissingField("client.id"))
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        parse_webhook(deep.as_bytes()),
        Err(WebhookParseError::InvalidJson(_))
    ));
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            ".*",
            Just("chatStarted".to_owned()),
            Just("chatFragment".to_owned()),
            Just("chatTranscript".to_owned()),
            Just("client".to_owned()),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        let keys = prop_oneof![
            "[a-zA-Z]{1,8}",
            Just("eventName".to_owned()),
            Just("client".to_owned()),
            Just("messages".to_owned()),
            Just("id".to_owned()),
            Just("chatId".to_owned()),
            Just("info".to_owned()),
            Just("file".to_owned()),
            Just("imageInfo".to_owned()),
            Just("location".to_owned()),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec((keys, inner), 0..8)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_webhook(&bytes);
    }

    #[test]
    fn parser_never_panics_on_arbitrary_json(value in arbitrary_json()) {
        let body = serde_json::to_vec(&value).expect("serialisable");
        let result = parse_webhook(&body);
        // Only an object can ever be accepted.
        if !value.is_object() {
            prop_assert!(result.is_err());
        }
        prop_assert!(peek_agrees(&body));
    }

    #[test]
    fn a_peek_at_any_webhook_shaped_body_agrees_with_the_parser(
        event in prop::sample::select(vec!["chatStarted", "chatFragment", "chatTranscript", "other"]),
        id in prop::option::of("[ a-z0-9]{0,6}"),
        chat_id in prop::option::of("[ a-z0-9]{0,6}"),
        numeric_id in any::<bool>(),
        messages in 0usize..3,
        extra in arbitrary_json(),
    ) {
        let mut client = serde_json::Map::new();
        if let Some(id) = id {
            client.insert("id".into(), if numeric_id { serde_json::json!(42) } else { serde_json::json!(id) });
        }
        if let Some(chat_id) = chat_id {
            client.insert("chatId".into(), serde_json::json!(chat_id));
        }
        let body = serde_json::json!({
            "eventName": event,
            "client": client,
            "messages": vec![serde_json::json!({"id": "m", "type": "client", "text": "hi"}); messages],
            "extra": extra,
        });
        prop_assert!(peek_agrees(&serde_json::to_vec(&body).expect("serialisable")));
    }
}

/// A peek, when it says anything, says what the whole parse says.
fn peek_agrees(body: &[u8]) -> bool {
    match (peek_webhook(body), parse_webhook(body)) {
        (None, _) => true,
        (Some(peeked), Ok(ParsedWebhook::Known(w))) => {
            peeked.kind == w.kind
                && peeked.client_id == w.client.id
                && peeked.chat_id == w.client.chat_id
        }
        (Some(_), _) => false,
    }
}

#[test]
fn the_usual_webhooks_are_read_by_a_peek_and_the_rest_left_to_the_parser() {
    for name in [
        "chat-started-prechat-form.json",
        "chat-fragment-agent-from-chatra-ui.json",
        "chat-transcript.json",
    ] {
        let body = fixture(name);
        let peeked = peek_webhook(&body).expect(name);
        let w = known(&body);
        assert_eq!(
            (peeked.kind, &*peeked.client_id, &*peeked.chat_id),
            (w.kind, w.client.id.as_str(), w.client.chat_id.as_str()),
            "{name}"
        );
    }
    for odd in [
        r#"{"eventName":"chatFragment","client":{"id":42,"chatId":"c"}}"#,
        r#"{"eventName":"chatFragment","client":{"id":"a","chatId":"  "}}"#,
        r#"{"eventName":"chatFragment","eventName":"chatStarted","client":{"id":"a","chatId":"c"}}"#,
        r#"{"eventName":"chatTyping","client":{"id":"a","chatId":"c"}}"#,
        r#"{"eventName":"chatFragment","client":null}"#,
        r#"{"eventName":"chatFragment","client":{"id":"a","chatId":"c"}"#,
        r#"["chatFragment"]"#,
    ] {
        assert_eq!(peek_webhook(odd.as_bytes()), None, "{odd}");
    }
}
