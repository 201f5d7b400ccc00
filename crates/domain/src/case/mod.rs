//! The case aggregate: a Live Chat case folded from its events, and the pure decisions that
//! turn a Chatra webhook into new case events.
//!
//! `CaseState::apply` (evolve), `decide_webhook`, `decide_delivery`, `decide_notification`
//! and `decide_visitor_details` (decide) are plain functions: routing, outbound and
//! agent-sync load the history under the case's lock, call them, and append what they
//! return.

mod agent_change;
mod customer;
mod decide;
mod delivery;
mod ids;
mod notification;
mod state;
mod visitor;

pub use agent_change::{AgentCaseChange, CustomerEdit, decide_agent_change, decide_customer_edit};
pub use decide::{RoutingContext, decide_webhook};
pub use delivery::{DeliveryOutcome, decide_delivery};
pub use ids::{case_id_for, message_id_for};
pub use notification::{MAX_NOTIFICATION_REASON_CHARS, NotificationOutcome, decide_notification};
pub use state::{
    CaseState, CaseStatus, CustomerState, NotificationState, ReplyState, chatra_message_of,
};
pub use visitor::{VISITOR_GROUP_REASON, VISITOR_SOURCE, decide_visitor_details};
