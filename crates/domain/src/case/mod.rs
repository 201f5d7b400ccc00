//! The case aggregate: a Live Chat case folded from its events, and the pure decisions that
//! turn a Chatra webhook into new case events.
//!
//! `CaseState::apply` (evolve), `decide_webhook` and `decide_delivery` (decide) are plain functions: the routing
//! service loads the history under the case's lock, calls them, and appends what they return.

mod customer;
mod decide;
mod delivery;
mod ids;
mod state;

pub use decide::{RoutingContext, decide_webhook};
pub use delivery::{DeliveryOutcome, decide_delivery};
pub use ids::{case_id_for, message_id_for};
pub use state::{CaseState, CaseStatus, CustomerState, ReplyState};
