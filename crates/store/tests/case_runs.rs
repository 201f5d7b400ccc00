//! Recorded events projected in runs (folded, one statement per kind for many cases) leave
//! the case read model exactly as applying each event in turn does.

mod case_support;
mod common;

use case_support::*;
use deskie_proto::Timestamp;
use deskie_proto::events::{
    CaseGroupChanged, CaseResumed, ChatEnded, CustomerDataChanged, CustomerDetails, CustomerField,
    Envelope, Event, OptionalText, RuleFired,
};
use deskie_store::Store;
use deskie_store::read_models::cases;
use uuid::Uuid;

/// `events` as the case's envelopes from `after + 1` on, each a second after the last.
fn envelopes(case_id: Uuid, after: u64, events: Vec<Option<Event>>) -> Vec<Envelope> {
    events
        .into_iter()
        .zip(after + 1..)
        .map(|(event, version)| Envelope {
            event_id: Uuid::now_v7().to_string(),
            stream_type: "case".into(),
            stream_id: case_id.to_string(),
            version,
            occurred_at: Some(Timestamp {
                seconds: 1_700_000_000 + i64::try_from(version).unwrap_or(0),
                nanos: 0,
            }),
            event,
            ..Default::default()
        })
        .collect()
}

fn text(value: Option<&str>) -> Option<OptionalText> {
    Some(OptionalText {
        value: value.map(str::to_owned),
    })
}

/// Three writes of one case: opening with customer data and messages; a second with nearly
/// every kind of change (and an event this build does not know); a third that clears and
/// resumes; then a delivery outcome (not folded: it changes a message row).
fn writes(case_id: Uuid) -> Vec<Vec<Envelope>> {
    let agent = Uuid::now_v7();
    let reply_id = Uuid::now_v7();
    let first = envelopes(
        case_id,
        0,
        vec![
            Some(
                deskie_testkit::case_events::opened()
                    .chatra_group(Some("cg-1"))
                    .into(),
            ),
            Some(Event::CustomerDataChanged(CustomerDataChanged {
                name: text(Some("Ann")),
                email: text(Some("ann@example.com")),
                fields: vec![CustomerField {
                    key: "order".into(),
                    value: "42".into(),
                }],
                fields_changed: true,
                ..Default::default()
            })),
            Some(customer_says("hello").at(1_700_000_100).into()),
            Some(
                agent_says("hi there")
                    .chatra_agent("ca-1")
                    .linked_to(Some(agent))
                    .at(1_700_000_101)
                    .attaching(file("a.pdf"))
                    .into(),
            ),
        ],
    );
    let second = envelopes(
        case_id,
        4,
        vec![
            Some(status("pending").into()),
            Some(assigned(agent).into()),
            Some(Event::CaseGroupChanged(CaseGroupChanged {
                group_id: Uuid::now_v7().to_string(),
                chatra_group_id: Some("cg-2".into()),
                ..Default::default()
            })),
            Some(reply("on it").id(reply_id).by_agent(Some(agent)).into()),
            None,
            Some(Event::RuleFired(RuleFired::default())),
            Some(Event::CustomerDataChanged(CustomerDataChanged {
                name: text(Some("Ann B.")),
                phone: text(Some("+100")),
                details: Some(CustomerDetails {
                    ip: Some("10.0.0.1".into()),
                    last_visit: Some(Timestamp {
                        seconds: 1_700_000_050,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            Some(Event::ChatEnded(ChatEnded {})),
        ],
    );
    let third = envelopes(
        case_id,
        12,
        vec![
            Some(Event::CaseResumed(CaseResumed::default())),
            Some(Event::CustomerDataChanged(CustomerDataChanged {
                email: text(None),
                ..Default::default()
            })),
            Some(Event::CaseAssigned(Default::default())),
            Some(customer_says("back again").at(1_700_000_200).into()),
        ],
    );
    let fourth = envelopes(
        case_id,
        16,
        vec![
            Some(delivered(reply_id).chatra_id("chatra-reply").into()),
            Some(status("closed").into()),
        ],
    );
    vec![first, second, third, fourth]
}

async fn view(store: &Store, case_id: Uuid) -> (cases::CaseView, Vec<cases::MessageView>) {
    let view = cases::get(store.pool(), case_id)
        .await
        .expect("get")
        .expect("the case");
    let messages = cases::messages(store.pool(), case_id)
        .await
        .expect("messages");
    (view, messages)
}

#[tokio::test]
async fn runs_of_many_cases_project_as_each_event_in_turn_does() {
    let (_folded_db, folded) = common::store().await;
    let (_single_db, single) = common::store().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let (writes_a, writes_b) = (writes(a), writes(b));
    for (write_a, write_b) in writes_a.iter().zip(&writes_b) {
        // Both cases' runs in one call, as a routing batch records them.
        let mut tx = folded.pool().begin().await.expect("begin");
        cases::project_recorded(&mut tx, &[(a, write_a.clone()), (b, write_b.clone())])
            .await
            .expect("project runs");
        tx.commit().await.expect("commit");

        let mut tx = single.pool().begin().await.expect("begin");
        for envelope in write_a.iter().chain(write_b) {
            let applied = cases::apply_case_event(&mut tx, envelope)
                .await
                .expect("apply");
            assert!(applied, "version {} follows", envelope.version);
        }
        tx.commit().await.expect("commit");

        for case_id in [a, b] {
            assert_eq!(view(&folded, case_id).await, view(&single, case_id).await);
        }
    }
    let (case, messages) = view(&folded, a).await;
    assert_eq!((case.version, case.status.as_str()), (18, "closed"));
    assert_eq!(messages.len(), 4, "{messages:?}");
}

#[tokio::test]
async fn a_run_whose_row_is_behind_brings_what_the_row_lacks_from_the_event_store() {
    let (_db, store) = common::store().await;
    let case = Case::new(&store);
    let first = case
        .append(vec![
            opened(),
            customer_says("one").at(1_700_000_000).into(),
        ])
        .await;
    let second = case
        .append(vec![customer_says("two").at(1_700_000_001).into()])
        .await;
    let third = case
        .append(vec![
            customer_says("three").at(1_700_000_002).into(),
            status("pending").into(),
        ])
        .await;
    let project = |recorded: Vec<Envelope>| {
        let store = store.clone();
        let case_id = case.id;
        async move {
            let mut tx = store.pool().begin().await.expect("begin");
            cases::project_recorded(&mut tx, &[(case_id, recorded)])
                .await
                .expect("project");
            tx.commit().await.expect("commit");
        }
    };
    project(first).await;
    // The second write was never projected; the third's run does not follow the row.
    drop(second);
    project(third.clone()).await;
    let (view, messages) = view(&store, case.id).await;
    assert_eq!((view.version, view.status.as_str()), (5, "pending"));
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    // Projected again (a writer retried after its commit was lost): nothing changes.
    project(third).await;
    assert_eq!(self::view(&store, case.id).await.1.len(), 3);
}
