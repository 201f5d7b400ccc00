//! Agents' changes to a case (decide): status, assignee, group and the customer's contact
//! data, against the case's state. The api checks what needs I/O first (that an assignee may
//! take the case, that a group exists) and asks this for the events.

use deskie_proto::events::{
    CaseAssigned, CaseGroupChanged, CaseStatusChanged, CustomerDataChanged, Event, OptionalText,
};

use super::state::{CaseState, CaseStatus};

/// An agent's change of a case; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentCaseChange {
    /// The new status.
    pub status: Option<CaseStatus>,
    /// The new assignee; `Some(None)` unassigns.
    pub assignee_id: Option<Option<String>>,
    /// The new group.
    pub group_id: Option<String>,
}

/// An agent's hand edit of the customer; `None` keeps, `Some(None)` clears.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerEdit {
    /// Name.
    pub name: Option<Option<String>>,
    /// Email.
    pub email: Option<Option<String>>,
    /// Phone.
    pub phone: Option<Option<String>>,
}

/// One event per real change, in the order status, assignee, group; none for a change that
/// changes nothing.
pub fn decide_agent_change(
    state: &CaseState,
    change: &AgentCaseChange,
    by_agent_id: Option<&str>,
) -> Vec<Event> {
    let by_agent_id = by_agent_id.map(str::to_owned);
    let mut events = Vec::new();
    if let Some(status) = change.status
        && status != state.status
    {
        events.push(Event::CaseStatusChanged(CaseStatusChanged {
            from: state.status.as_str().into(),
            to: status.as_str().into(),
            by_agent_id: by_agent_id.clone(),
            by_rule_id: None,
        }));
    }
    if let Some(assignee) = &change.assignee_id
        && *assignee != state.assignee_id
    {
        events.push(Event::CaseAssigned(CaseAssigned {
            assignee_id: assignee.clone(),
            by_agent_id: by_agent_id.clone(),
            by_rule_id: None,
        }));
    }
    if let Some(group_id) = &change.group_id
        && *group_id != state.group_id
    {
        events.push(Event::CaseGroupChanged(CaseGroupChanged {
            group_id: group_id.clone(),
            by_agent_id,
            ..Default::default()
        }));
    }
    events
}

/// `CustomerDataChanged` from the agent (`source: "agent"`) carrying only the fields that
/// really change; nothing when none does.
pub fn decide_customer_edit(
    state: &CaseState,
    edit: &CustomerEdit,
    agent_id: Option<&str>,
) -> Vec<Event> {
    let changed = |new: &Option<Option<String>>, old: &Option<String>| {
        new.as_ref()
            .filter(|new| *new != old)
            .map(|value| OptionalText {
                value: value.clone(),
            })
    };
    let customer = &state.customer;
    let event = CustomerDataChanged {
        name: changed(&edit.name, &customer.name),
        email: changed(&edit.email, &customer.email),
        phone: changed(&edit.phone, &customer.phone),
        fields: Vec::new(),
        fields_changed: false,
        details: None,
        source: "agent".into(),
        agent_id: agent_id.map(str::to_owned),
    };
    if event.name.is_some() || event.email.is_some() || event.phone.is_some() {
        vec![Event::CustomerDataChanged(event)]
    } else {
        Vec::new()
    }
}
