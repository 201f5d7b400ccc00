//! The admin's rules for Live Chat cases: what they look like ([`RuleSpec`]), how they are
//! checked ([`validate`]) and which fire for a change to a case ([`evaluate`]).
//!
//! A rules service builds a [`RuleContext`] for each case event that triggers rules
//! ([`case_change`]; events caused by rules trigger none, so rules never loop), evaluates the
//! integration's rules and records each [`Firing`] before carrying out its actions.
//! See `docs/rules.md`.

mod action;
mod apply;
mod batch;
mod condition;
mod context;
mod error;
mod evaluate;
mod field;
mod history;
mod hours;
mod rotation;
mod spec;
mod template;
mod validate;

pub use action::{Action, MAX_SECRET_CHARS, MAX_TEXT_CHARS, RenderedAction};
pub use apply::{EffectInputs, decide_rule_effects};
pub use batch::changes_to_evaluate;
pub use condition::{
    Condition, MAX_IN_VALUES, MAX_PATTERN_CHARS, MAX_VALUE_CHARS, REGEX_SIZE_LIMIT,
};
pub use context::{
    CaseChange, CaseFacts, CustomerFacts, RuleContext, Trigger, UpdateKind, case_change,
};
pub use error::{RuleError, RuleProblem};
pub use evaluate::{Firing, evaluate};
pub use field::{Field, MAX_FIELD_KEY_CHARS, Operator};
pub use history::{HistoryEvent, cause_batch, context_at, context_in_batch, evaluates};
pub use hours::BusinessHours;
pub use rotation::{Rotation, RotationCandidate};
pub use spec::{ActionSpec, ConditionSpec, ConditionsSpec, RuleSpec};
pub use template::{Escaping, Placeholder, Template};
pub use validate::{
    MAX_ACTIONS, MAX_CONDITIONS, MAX_NAME_CHARS, MAX_POSITION, ValidRule, validate,
};
