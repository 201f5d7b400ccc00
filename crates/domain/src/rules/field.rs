//! The names of a condition: which field of the context it tests, and with which operator.

use std::borrow::Cow;

use super::context::{RuleContext, UpdateKind};

/// Longest key of a `customer.field.<key>` condition.
pub const MAX_FIELD_KEY_CHARS: usize = 100;

const CUSTOMER_FIELD: &str = "customer.field.";

/// What a condition tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `channel`, e.g. `live_chat`.
    Channel,
    /// `group_id`.
    GroupId,
    /// `status`: `open`, `pending` or `closed`.
    Status,
    /// `assignee_id`.
    AssigneeId,
    /// `update`: what changed, for `case_updated` rules.
    Update,
    /// `message.text`.
    MessageText,
    /// `customer.name`.
    CustomerName,
    /// `customer.email`.
    CustomerEmail,
    /// `customer.phone`.
    CustomerPhone,
    /// `customer.field.<key>`: a contact-form field by property key.
    CustomerField(String),
    /// `time`: whether now is within business hours.
    Time,
}

/// How a field's values are checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Values {
    /// Free text, compared without regard to case.
    Text,
    /// UUIDs.
    Id,
    /// Case statuses.
    Status,
    /// Update kinds.
    Update,
    /// Business hours.
    Hours,
}

impl Field {
    /// From its name; `None` when unknown (an empty `customer.field.` key included).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "channel" => Self::Channel,
            "group_id" => Self::GroupId,
            "status" => Self::Status,
            "assignee_id" => Self::AssigneeId,
            "update" => Self::Update,
            "message.text" => Self::MessageText,
            "customer.name" => Self::CustomerName,
            "customer.email" => Self::CustomerEmail,
            "customer.phone" => Self::CustomerPhone,
            "time" => Self::Time,
            _ => {
                let key = name.strip_prefix(CUSTOMER_FIELD)?;
                if key.is_empty() || key.chars().count() > MAX_FIELD_KEY_CHARS {
                    return None;
                }
                Self::CustomerField(key.to_owned())
            }
        })
    }

    /// Its name, as in a rule.
    pub fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::Channel => "channel",
            Self::GroupId => "group_id",
            Self::Status => "status",
            Self::AssigneeId => "assignee_id",
            Self::Update => "update",
            Self::MessageText => "message.text",
            Self::CustomerName => "customer.name",
            Self::CustomerEmail => "customer.email",
            Self::CustomerPhone => "customer.phone",
            Self::Time => "time",
            Self::CustomerField(key) => return Cow::Owned(format!("{CUSTOMER_FIELD}{key}")),
        })
    }

    /// The operators it supports.
    pub fn operators(&self) -> &'static [Operator] {
        use Operator::*;
        match self.values() {
            Values::Text if *self == Self::Channel => &[Eq, Ne, In, NotIn],
            Values::Text => &[
                Eq,
                Ne,
                Contains,
                NotContains,
                In,
                NotIn,
                Present,
                Absent,
                Matches,
            ],
            Values::Id => &[Eq, Ne, In, NotIn, Present, Absent],
            Values::Status | Values::Update => &[Eq, Ne, In, NotIn],
            Values::Hours => &[In, NotIn],
        }
    }

    pub(crate) fn values(&self) -> Values {
        match self {
            Self::GroupId | Self::AssigneeId => Values::Id,
            Self::Status => Values::Status,
            Self::Update => Values::Update,
            Self::Time => Values::Hours,
            _ => Values::Text,
        }
    }

    /// The field's value in `ctx`, `None` when unknown (`time` has none).
    pub(crate) fn value_in<'c>(&self, ctx: &'c RuleContext) -> Option<Cow<'c, str>> {
        let customer = &ctx.customer;
        let text = match self {
            Self::Channel => Some(ctx.case.channel.as_str()),
            Self::Status => Some(ctx.case.status.as_str()),
            Self::Update => ctx.change.update().map(UpdateKind::as_str),
            Self::MessageText => ctx.message_text.as_deref(),
            Self::CustomerName => customer.name.as_deref(),
            Self::CustomerEmail => customer.email.as_deref(),
            Self::CustomerPhone => customer.phone.as_deref(),
            Self::CustomerField(key) => customer
                .fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str()),
            Self::GroupId => return ctx.case.group_id.map(|id| Cow::Owned(id.to_string())),
            Self::AssigneeId => return ctx.case.assignee_id.map(|id| Cow::Owned(id.to_string())),
            Self::Time => None,
        };
        text.map(Cow::Borrowed)
    }
}

/// How a condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `eq`: equal (text: ignoring case).
    Eq,
    /// `ne`: not equal, or unknown.
    Ne,
    /// `contains`: contains the value, ignoring case.
    Contains,
    /// `not_contains`: does not contain the value, or unknown.
    NotContains,
    /// `present`: known and not blank.
    Present,
    /// `absent`: unknown or blank.
    Absent,
    /// `in`: one of a list (for `time`: within the business hours).
    In,
    /// `not_in`: none of a list, or unknown (for `time`: outside the business hours).
    NotIn,
    /// `matches`: a regular expression finds a match.
    Matches,
}

impl Operator {
    /// Every operator, in documentation order.
    pub const ALL: [Self; 9] = [
        Self::Eq,
        Self::Ne,
        Self::Contains,
        Self::NotContains,
        Self::Present,
        Self::Absent,
        Self::In,
        Self::NotIn,
        Self::Matches,
    ];

    /// Its name, as in a rule.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Contains => "contains",
            Self::NotContains => "not_contains",
            Self::Present => "present",
            Self::Absent => "absent",
            Self::In => "in",
            Self::NotIn => "not_in",
            Self::Matches => "matches",
        }
    }

    /// From its name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }
}
