//! From a [`RuleSpec`] to a [`ValidRule`]: every name checked, regexes compiled and
//! templates parsed once, so evaluation does no parsing.

use uuid::Uuid;

use super::action::Action;
use super::condition::Condition;
use super::context::{RuleContext, Trigger};
use super::error::{RuleError, RuleProblem, echo};
use super::spec::{ConditionSpec, RuleSpec};

/// Longest rule name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Highest `position`.
pub const MAX_POSITION: i64 = 1_000_000;
/// Most conditions in `all`, and in `any`.
pub const MAX_CONDITIONS: usize = 50;
/// Most actions of a rule.
pub const MAX_ACTIONS: usize = 20;

/// A rule that passed [`validate`], ready for [`super::evaluate`].
#[derive(Debug, Clone)]
pub struct ValidRule {
    id: Uuid,
    name: String,
    trigger: Trigger,
    enabled: bool,
    position: u32,
    stop_processing: bool,
    all: Vec<Condition>,
    any: Vec<Condition>,
    actions: Vec<Action>,
}

impl ValidRule {
    /// The rule's id (assigned by the API).
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The name, trimmed.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When it is evaluated.
    pub fn trigger(&self) -> Trigger {
        self.trigger
    }

    /// Whether it is evaluated at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Its place in the evaluation order, lowest first.
    pub fn position(&self) -> u32 {
        self.position
    }

    /// Whether firing stops later rules.
    pub fn stop_processing(&self) -> bool {
        self.stop_processing
    }

    /// Its actions, in order.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// When the conditions hold in `ctx`, the descriptions of those that matched: every one
    /// of `all`, then those of `any` that held. Trigger and `enabled` are not checked here.
    pub fn matched_conditions(&self, ctx: &RuleContext) -> Option<Vec<String>> {
        if !self.all.iter().all(|c| c.holds(ctx)) {
            return None;
        }
        let mut matched: Vec<String> = self
            .all
            .iter()
            .map(|c| c.description().to_owned())
            .collect();
        let before_any = matched.len();
        matched.extend(
            self.any
                .iter()
                .filter(|c| c.holds(ctx))
                .map(|c| c.description().to_owned()),
        );
        (self.any.is_empty() || matched.len() > before_any).then_some(matched)
    }
}

/// Checks `spec` and compiles it into the rule `id`. The error names the first offending
/// field as the API returns it, e.g. `conditions.all[0].op` or `actions[1].text`.
pub fn validate(id: Uuid, spec: &RuleSpec) -> Result<ValidRule, RuleError> {
    let name = spec.name.trim();
    if name.is_empty() {
        return Err(RuleError::new("name", RuleProblem::Empty));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(RuleError::new(
            "name",
            RuleProblem::TooLong {
                max: MAX_NAME_CHARS,
            },
        ));
    }
    let trigger = Trigger::parse(&spec.trigger).ok_or_else(|| {
        let name = echo(&spec.trigger);
        RuleError::new(
            "trigger",
            RuleProblem::Unknown {
                what: "trigger",
                name,
            },
        )
    })?;
    let position = u32::try_from(spec.position)
        .ok()
        .filter(|p| i64::from(*p) <= MAX_POSITION)
        .ok_or_else(|| {
            let problem = RuleProblem::OutOfRange {
                min: 0,
                max: MAX_POSITION,
            };
            RuleError::new("position", problem)
        })?;
    let all = conditions(&spec.conditions.all, "conditions.all", trigger)?;
    let any = conditions(&spec.conditions.any, "conditions.any", trigger)?;
    if spec.actions.is_empty() {
        return Err(RuleError::new("actions", RuleProblem::Empty));
    }
    if spec.actions.len() > MAX_ACTIONS {
        return Err(RuleError::new(
            "actions",
            RuleProblem::TooMany { max: MAX_ACTIONS },
        ));
    }
    let actions = spec
        .actions
        .iter()
        .enumerate()
        .map(|(i, action)| Action::parse(action, &format!("actions[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(ValidRule {
        id,
        name: name.to_owned(),
        trigger,
        enabled: spec.enabled,
        position,
        stop_processing: spec.stop_processing,
        all,
        any,
        actions,
    })
}

fn conditions(
    specs: &[ConditionSpec],
    path: &str,
    trigger: Trigger,
) -> Result<Vec<Condition>, RuleError> {
    if specs.len() > MAX_CONDITIONS {
        return Err(RuleError::new(
            path,
            RuleProblem::TooMany {
                max: MAX_CONDITIONS,
            },
        ));
    }
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| Condition::parse(spec, &format!("{path}[{i}]"), trigger))
        .collect()
}
