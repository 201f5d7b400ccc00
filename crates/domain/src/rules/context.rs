//! What a rule is evaluated against: the change to the case and the case as of that change.

use chrono::{DateTime, Utc};
use deskie_proto::events::Event;
use uuid::Uuid;

use crate::case::{CaseState, CaseStatus};

/// When a rule is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// A new case was opened.
    CaseCreated,
    /// An existing case changed (see [`UpdateKind`]).
    CaseUpdated,
}

impl Trigger {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CaseCreated => "case_created",
            Self::CaseUpdated => "case_updated",
        }
    }

    /// From the wire name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::CaseCreated, Self::CaseUpdated]
            .into_iter()
            .find(|t| t.as_str() == name)
    }
}

/// What changed in an existing case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateKind {
    /// The customer wrote.
    CustomerMessage,
    /// The customer wrote after the case was closed or the chat ended.
    CustomerResumed,
    /// An agent replied (from Deskie, or in Chatra's own UI).
    AgentReply,
    /// The status changed.
    StatusChanged,
    /// The assignee changed.
    Assigned,
}

impl UpdateKind {
    /// Every kind, in documentation order.
    pub const ALL: [Self; 5] = [
        Self::CustomerMessage,
        Self::CustomerResumed,
        Self::AgentReply,
        Self::StatusChanged,
        Self::Assigned,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CustomerMessage => "customer_message",
            Self::CustomerResumed => "customer_resumed",
            Self::AgentReply => "agent_reply",
            Self::StatusChanged => "status_changed",
            Self::Assigned => "assigned",
        }
    }

    /// From the wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The change rules are evaluated for: a new case, or an update of a given kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseChange {
    /// `case_created`.
    Created,
    /// `case_updated`, with what changed.
    Updated(UpdateKind),
}

impl CaseChange {
    /// The trigger of rules this change evaluates.
    pub fn trigger(self) -> Trigger {
        match self {
            Self::Created => Trigger::CaseCreated,
            Self::Updated(_) => Trigger::CaseUpdated,
        }
    }

    /// What changed, for `case_updated`.
    pub fn update(self) -> Option<UpdateKind> {
        match self {
            Self::Created => None,
            Self::Updated(kind) => Some(kind),
        }
    }
}

/// The change a case event stands for, if rules are evaluated for it at all.
///
/// Loop prevention: an event a rule caused (`CaseAssigned` or `CaseStatusChanged` with
/// `by_rule_id`, `ReplyRequested` with source `"rule"` or a `rule_id`) yields `None`, as do
/// `RuleFired` and `NotificationRequested`, so a rule's actions never trigger rules; so do
/// the delivery outcomes outbound and routing record (`ReplyDelivered`, `ReplyFailed`,
/// `ReplyOutcomeUnknown`, `UnmatchedEchoReceived`, `NotificationDelivered`,
/// `NotificationFailed`).
///
/// The caller decides how a batch of events maps to evaluations. One webhook can produce
/// several changes: a new chat gives `CaseOpened` and then `CustomerMessageReceived` (the
/// opening message is usually part of `case_created`, not an update), and a customer writing
/// to a closed case gives `CaseStatusChanged`, `CaseResumed` and `CustomerMessageReceived`.
pub fn case_change(event: &Event) -> Option<CaseChange> {
    let update = match event {
        Event::CaseOpened(_) => return Some(CaseChange::Created),
        Event::CustomerMessageReceived(_) => UpdateKind::CustomerMessage,
        Event::CaseResumed(_) => UpdateKind::CustomerResumed,
        Event::ReplyRequested(e) if e.source != "rule" && e.rule_id.is_none() => {
            UpdateKind::AgentReply
        }
        Event::AgentMessageMirrored(_) => UpdateKind::AgentReply,
        Event::CaseStatusChanged(e) if e.by_rule_id.is_none() => UpdateKind::StatusChanged,
        Event::CaseAssigned(e) if e.by_rule_id.is_none() => UpdateKind::Assigned,
        _ => return None,
    };
    Some(CaseChange::Updated(update))
}

/// The case as rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseFacts {
    /// The case id (`{{case.id}}`).
    pub id: Uuid,
    /// The channel, e.g. `live_chat`.
    pub channel: String,
    /// The group, when known.
    pub group_id: Option<Uuid>,
    /// The status.
    pub status: CaseStatus,
    /// The assignee, if any.
    pub assignee_id: Option<Uuid>,
}

/// The customer as rules see them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CustomerFacts {
    /// Name (`{{customer.name}}`).
    pub name: Option<String>,
    /// E-mail (`{{customer.email}}`).
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Contact-form fields by property key, in order.
    pub fields: Vec<(String, String)>,
}

/// Everything a rule can test or put in a template; built by the caller from the case state
/// as of the event.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleContext {
    /// What happened.
    pub change: CaseChange,
    /// The case.
    pub case: CaseFacts,
    /// The customer.
    pub customer: CustomerFacts,
    /// The message of the event (customer message or agent reply), for `message.text`.
    pub message_text: Option<String>,
    /// The clock, for business hours.
    pub now: DateTime<Utc>,
    /// The agent the event is about (`{{agent.name}}`): the replying agent, or the assignee.
    pub agent_name: Option<String>,
}

impl RuleContext {
    /// A context for the case `case_id` on `live_chat`, open, in no known group, unassigned,
    /// with nothing known about the customer, message or agent: fill in what is known.
    pub fn new(change: CaseChange, case_id: Uuid, now: DateTime<Utc>) -> Self {
        Self {
            change,
            case: CaseFacts {
                id: case_id,
                channel: "live_chat".to_owned(),
                group_id: None,
                status: CaseStatus::Open,
                assignee_id: None,
            },
            customer: CustomerFacts::default(),
            message_text: None,
            now,
            agent_name: None,
        }
    }

    /// The context for `event`, given the case state *after* it was applied, or `None` when
    /// the event triggers no rules (see [`case_change`]).
    ///
    /// The message text comes from the event; the agent name only from a mirrored Chatra
    /// message (set [`RuleContext::agent_name`] afterwards for others). The channel is
    /// `live_chat`: every case folded into a [`CaseState`] is a Chatra chat.
    pub fn for_event(
        case_id: Uuid,
        state: &CaseState,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let change = case_change(event)?;
        let (message_text, agent_name) = match event {
            Event::CustomerMessageReceived(e) => (Some(e.text.clone()), None),
            Event::AgentMessageMirrored(e) => (Some(e.text.clone()), e.agent_name.clone()),
            Event::ReplyRequested(e) => (Some(e.text.clone()), None),
            _ => (None, None),
        };
        let mut ctx = Self::new(change, case_id, now);
        ctx.case.group_id = Uuid::parse_str(&state.group_id).ok();
        ctx.case.status = state.status;
        ctx.case.assignee_id = state
            .assignee_id
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok());
        let customer = &state.customer;
        ctx.customer = CustomerFacts {
            name: customer.name.clone(),
            email: customer.email.clone(),
            phone: customer.phone.clone(),
            fields: customer.fields.clone(),
        };
        ctx.message_text = message_text;
        ctx.agent_name = agent_name;
        Some(ctx)
    }
}
