//! Agents' changes to a case, decided against its state: given(history).when(change).

use deskie_domain::case::{
    AgentCaseChange, CaseStatus, CustomerEdit, decide_agent_change, decide_customer_edit,
};
use deskie_proto::events::{CustomerDataChanged, Event, OptionalText};
use deskie_testkit::case_events::{GROUP, assigned, opened};
use deskie_testkit::given;
use uuid::Uuid;

fn change(
    status: Option<CaseStatus>,
    assignee: Option<Option<Uuid>>,
    group: Option<&str>,
) -> AgentCaseChange {
    AgentCaseChange {
        status,
        assignee_id: assignee.map(|a| a.map(|a| a.to_string())),
        group_id: group.map(str::to_owned),
    }
}

#[test]
fn only_real_changes_are_decided_in_order_status_assignee_group() {
    let ann = Uuid::now_v7();
    let case = given([opened().into(), assigned(ann).into()]);
    case.when(|state| {
        let unchanged = change(
            Some(CaseStatus::Open),
            Some(Some(ann)),
            Some(&GROUP.to_string()),
        );
        decide_agent_change(state, &unchanged, Some("ann"))
    })
    .decides_nothing();

    let then = case.when(|state| {
        let everything = change(Some(CaseStatus::Closed), Some(None), Some("billing"));
        decide_agent_change(state, &everything, Some("ann"))
    });
    then.decides(&["case_status_changed", "case_assigned", "case_group_changed"]);
    let [
        Event::CaseStatusChanged(status),
        Event::CaseAssigned(unassigned),
        _,
    ] = then.events()
    else {
        panic!("{:?}", then.events())
    };
    assert_eq!(
        (status.from.as_str(), status.to.as_str()),
        ("open", "closed")
    );
    assert_eq!(status.by_agent_id.as_deref(), Some("ann"));
    assert_eq!(unassigned.assignee_id, None);
    assert_eq!(then.state().status, CaseStatus::Closed);

    // The same change again, against the case it left: nothing more.
    then.when(|state| {
        let again = change(Some(CaseStatus::Closed), Some(None), Some("billing"));
        decide_agent_change(state, &again, Some("ann"))
    })
    .decides_nothing();
}

#[test]
fn a_customer_edit_carries_only_what_changes() {
    let case = given([
        opened().into(),
        Event::CustomerDataChanged(CustomerDataChanged {
            name: Some(OptionalText {
                value: Some("Maria".into()),
            }),
            source: "chatra".into(),
            ..Default::default()
        }),
    ]);
    case.when(|state| {
        let same = CustomerEdit {
            name: Some(Some("Maria".into())),
            ..Default::default()
        };
        decide_customer_edit(state, &same, None)
    })
    .decides_nothing();

    let then = case.when(|state| {
        let edit = CustomerEdit {
            name: Some(Some("Maria".into())),
            email: Some(Some("maria@example.com".into())),
            phone: Some(None),
        };
        decide_customer_edit(state, &edit, Some("ann"))
    });
    then.decides(&["customer_data_changed"]);
    let [Event::CustomerDataChanged(changed)] = then.events() else {
        panic!("{:?}", then.events())
    };
    assert_eq!(changed.name, None, "unchanged: not sent");
    assert_eq!(
        changed.email.as_ref().and_then(|e| e.value.as_deref()),
        Some("maria@example.com")
    );
    assert_eq!(
        changed.phone, None,
        "already empty: clearing changes nothing"
    );
    assert_eq!(
        (changed.source.as_str(), changed.agent_id.as_deref()),
        ("agent", Some("ann"))
    );
    assert_eq!(
        then.state().customer.email.as_deref(),
        Some("maria@example.com")
    );
}
