//! From Chatra's visitor card (`GET /clients/{id}`, fetched by agent-sync) to case events.

use deskie_proto::events::{CaseGroupChanged, Event};
use uuid::Uuid;

use super::customer::customer_change;
use super::state::CaseState;
use crate::chatra::ChatraVisitor;

/// `CustomerDataChanged.source` of what the visitor card taught.
pub const VISITOR_SOURCE: &str = "chatra_visitor";

/// `CaseGroupChanged.reason` of a move to the group of the visitor's Chatra group.
pub const VISITOR_GROUP_REASON: &str = "chatra_visitor_group";

/// The events the visitor card adds to a case. Pure and idempotent: deciding the same card
/// again on the resulting state returns nothing.
///
/// - Customer data is merged as a webhook's is (`customer_change`, source
///   [`VISITOR_SOURCE`]): the card's name, e-mail, phone, contact fields and details, and
///   every other value of the card as an extra field (`chatra.<path>`).
/// - The group: a webhook's group always wins, and so does an agent's or a rule's choice.
///   Only when the webhook that opened the case carried no group id and nobody but this
///   decision has moved the case since, does the card's group id place the case where
///   routing would have put it: the mapped group, else `default_group_id`
///   (`CaseGroupChanged` with reason [`VISITOR_GROUP_REASON`] and the Chatra group id).
pub fn decide_visitor_details(
    state: &CaseState,
    visitor: &ChatraVisitor,
    group_mappings: &[(String, Uuid)],
    default_group_id: Uuid,
) -> Vec<Event> {
    if !state.opened {
        return Vec::new();
    }
    let mut events = Vec::new();
    let mut client = visitor.client.clone();
    client.fields.extend(visitor.extra_fields.iter().cloned());
    if let Some(change) = customer_change(&state.customer, &client, VISITOR_SOURCE) {
        events.push(Event::CustomerDataChanged(change));
    }
    if let Some(moved) = group_move(state, visitor, group_mappings, default_group_id) {
        events.push(Event::CaseGroupChanged(moved));
    }
    events
}

fn group_move(
    state: &CaseState,
    visitor: &ChatraVisitor,
    group_mappings: &[(String, Uuid)],
    default_group_id: Uuid,
) -> Option<CaseGroupChanged> {
    let chatra_group = visitor.group_id.as_ref()?;
    if state.chatra_group_id.is_some() || state.group_changed_by_staff {
        return None;
    }
    let group_id = group_mappings
        .iter()
        .find(|(g, _)| g == chatra_group)
        .map_or(default_group_id, |(_, group)| *group)
        .to_string();
    (group_id != state.group_id).then(|| CaseGroupChanged {
        group_id,
        reason: Some(VISITOR_GROUP_REASON.to_owned()),
        chatra_group_id: Some(chatra_group.clone()),
        ..Default::default()
    })
}
