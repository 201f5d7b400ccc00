//! Chatra's visitor card (`GET /clients/{id}`): read into customer data with nothing
//! dropped, and the case's group moved by it only when nobody else decided the group.

use deskie_domain::case::*;
use deskie_domain::chatra::{ChatraVisitor, VisitorParseError, parse_visitor};
use deskie_proto::events::*;
use deskie_testkit::case_events;
use serde_json::{Value, json};
use uuid::Uuid;

const DEFAULT_GROUP: Uuid = Uuid::from_u128(0xD);
const SALES_GROUP: Uuid = Uuid::from_u128(0x5);
const CLIENT: &str = "k3v9q2m7x1p8r4t6w";

fn card() -> Value {
    json!({
        "id": CLIENT,
        "displayedName": "Visitor 4821",
        "basicInfo": {"name": "Maria Lopez", "email": "maria@example.com"},
        "integrationData": {"Account ID": "A-77", "vip": true},
        "info": {"name": "Maria Lopez", "phone": "+34 600 123 456", "Topic": "Billing"},
        "ip": "203.0.113.9",
        "browser": "Firefox 140",
        "os": "Linux",
        "language": "es",
        "location": {"city": "Madrid", "country": "Spain", "countryCode": "ES"},
        "lastVisit": 1_764_000_000_000_i64,
        "groupId": "chatra-sales",
        "chatLink": "https://app.chatra.io/chat/xyz",
        "pages": [{"url": "https://shop.example.com/cart", "title": "Cart"}],
        "referrer": null,
        "notes": ""
    })
}

fn visitor(card: &Value) -> ChatraVisitor {
    parse_visitor(card, CLIENT).expect("a card")
}

fn opened(chatra_group_id: Option<&str>) -> Event {
    case_events::opened()
        .integration(Uuid::from_u128(0xA))
        .client(CLIENT)
        .chatra_group(chatra_group_id)
        .in_group(DEFAULT_GROUP)
        .into()
}

/// given(events).when(card) → the decided events (the test kit's given/when, with this
/// file's group mappings).
struct Given(deskie_testkit::Given);

fn given(events: &[Event]) -> Given {
    Given(deskie_testkit::given(events.iter().cloned()))
}

impl Given {
    fn when(&self, visitor: &ChatraVisitor) -> Vec<Event> {
        let mappings = vec![("chatra-sales".to_owned(), SALES_GROUP)];
        self.0
            .when(|state| decide_visitor_details(state, visitor, &mappings, DEFAULT_GROUP))
            .events()
            .to_vec()
    }
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::type_name).collect()
}

#[test]
fn the_card_fills_the_customer_and_keeps_every_other_value_as_a_labelled_field() {
    let events = given(&[opened(None)]).when(&visitor(&card()));
    assert_eq!(
        names(&events),
        ["customer_data_changed", "case_group_changed"]
    );
    let Event::CustomerDataChanged(change) = &events[0] else {
        unreachable!()
    };
    assert_eq!(change.source, VISITOR_SOURCE);
    let text = |t: &Option<OptionalText>| t.as_ref().and_then(|t| t.value.clone());
    assert_eq!(text(&change.name).as_deref(), Some("Maria Lopez"));
    assert_eq!(text(&change.email).as_deref(), Some("maria@example.com"));
    assert_eq!(text(&change.phone).as_deref(), Some("+34 600 123 456"));
    let details = change.details.clone().expect("details");
    assert_eq!(details.ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(details.browser.as_deref(), Some("Firefox 140"));
    assert_eq!(details.os.as_deref(), Some("Linux"));
    assert_eq!(details.language.as_deref(), Some("es"));
    assert_eq!(details.location.as_deref(), Some("Madrid, Spain"));
    assert_eq!(
        details.last_visit,
        Some(deskie_proto::timestamp_from_millis(1_764_000_000_000))
    );
    let fields: Vec<(&str, &str)> = change
        .fields
        .iter()
        .map(|f| (f.key.as_str(), f.value.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("Topic", "Billing"),
            ("Account ID", "A-77"),
            ("chatra.displayedName", "Visitor 4821"),
            ("chatra.integrationData.vip", "true"),
            ("chatra.location.countryCode", "ES"),
            ("chatra.chatLink", "https://app.chatra.io/chat/xyz"),
            (
                "chatra.pages",
                r#"[{"url":"https://shop.example.com/cart","title":"Cart"}]"#
            ),
        ]
    );
}

#[test]
fn the_same_card_again_decides_nothing() {
    let card = visitor(&card());
    let mut history = vec![opened(None)];
    history.extend(given(&history).when(&card));
    assert!(given(&history).when(&card).is_empty());
}

#[test]
fn a_wrapped_card_a_group_object_and_repeated_keys_with_other_values_are_read() {
    let wrapped = json!({"client": {
        "basicInfo": {"name": "Ann"},
        "info": {"name": "Ann B."},
        "group": {"id": "chatra-sales", "name": "Sales"},
        "ip": "10.0.0.1", "ipAddress": "10.0.0.2"
    }});
    let v = visitor(&wrapped);
    assert_eq!(v.client.name.as_deref(), Some("Ann B."), "info comes first");
    assert_eq!(v.group_id.as_deref(), Some("chatra-sales"));
    assert_eq!(v.client.details.ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(
        v.extra_fields,
        [
            ("chatra.basicInfo.name".to_owned(), "Ann".to_owned()),
            ("chatra.group.name".to_owned(), "Sales".to_owned()),
            ("chatra.ipAddress".to_owned(), "10.0.0.2".to_owned()),
        ]
    );
    assert_eq!(
        parse_visitor(&json!([1]), CLIENT),
        Err(VisitorParseError::NotAnObject)
    );
}

#[test]
fn a_visitor_group_moves_a_case_opened_without_one_saying_why() {
    let events = given(&[opened(None)]).when(&visitor(&card()));
    let Event::CaseGroupChanged(moved) = &events[1] else {
        panic!("not moved: {events:?}")
    };
    assert_eq!(moved.group_id, SALES_GROUP.to_string());
    assert_eq!(moved.reason.as_deref(), Some(VISITOR_GROUP_REASON));
    assert_eq!(moved.chatra_group_id.as_deref(), Some("chatra-sales"));
    assert_eq!((&moved.by_agent_id, &moved.by_rule_id), (&None, &None));
}

#[test]
fn the_webhooks_group_an_agents_or_a_rules_move_wins_over_the_visitors_group() {
    let by_agent = Event::CaseGroupChanged(CaseGroupChanged {
        group_id: Uuid::from_u128(0xE).to_string(),
        by_agent_id: Some("agent-1".into()),
        ..Default::default()
    });
    let by_rule = Event::CaseGroupChanged(CaseGroupChanged {
        group_id: DEFAULT_GROUP.to_string(),
        by_rule_id: Some("rule-1".into()),
        ..Default::default()
    });
    let card = visitor(&card());
    for history in [
        vec![opened(Some("chatra-support"))],
        vec![opened(None), by_agent],
        vec![opened(None), by_rule],
    ] {
        let events = given(&history).when(&card);
        assert_eq!(names(&events), ["customer_data_changed"], "{history:?}");
    }
}

#[test]
fn a_later_card_may_move_the_case_again_but_an_unmapped_group_means_the_default() {
    let mut history = vec![opened(None)];
    history.extend(given(&history).when(&visitor(&card())));
    let mut elsewhere = card();
    elsewhere["groupId"] = json!("chatra-unmapped");
    let events = given(&history).when(&visitor(&elsewhere));
    let moved: Vec<&CaseGroupChanged> = events
        .iter()
        .filter_map(|e| match e {
            Event::CaseGroupChanged(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(moved.len(), 1, "{events:?}");
    assert_eq!(moved[0].group_id, DEFAULT_GROUP.to_string());
    assert_eq!(moved[0].chatra_group_id.as_deref(), Some("chatra-unmapped"));
}

#[test]
fn an_agents_hand_edit_is_kept_and_a_card_without_news_changes_nothing() {
    let edit = Event::CustomerDataChanged(CustomerDataChanged {
        name: Some(OptionalText {
            value: Some("Maria L.".into()),
        }),
        source: "agent".into(),
        ..Default::default()
    });
    let events = given(&[opened(Some("chatra-sales")), edit]).when(&visitor(&card()));
    let Event::CustomerDataChanged(change) = &events[0] else {
        unreachable!()
    };
    assert_eq!(change.name, None, "the agent's name stays");
    let empty = visitor(&json!({"id": CLIENT}));
    assert!(given(&[opened(None)]).when(&empty).is_empty());
    assert!(given(&[]).when(&visitor(&card())).is_empty(), "no case yet");
}
