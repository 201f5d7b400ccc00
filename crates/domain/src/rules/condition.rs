//! Conditions: a field, an operator and a value, checked when the rule is validated and
//! precompiled (regexes, business hours, lowercased texts) for evaluation.

use regex::{Regex, RegexBuilder};
use serde_json::Value;
use uuid::Uuid;

use super::context::{RuleContext, Trigger, UpdateKind};
use super::error::{RuleError, RuleProblem, echo};
use super::field::{Field, Operator, Values};
use super::hours::BusinessHours;
use super::spec::ConditionSpec;
use crate::case::CaseStatus;

/// Longest text value, in characters.
pub const MAX_VALUE_CHARS: usize = 1000;
/// Most values in an `in` list.
pub const MAX_IN_VALUES: usize = 100;
/// Longest `matches` pattern, in characters.
pub const MAX_PATTERN_CHARS: usize = 1000;
/// Largest compiled `matches` regex, in bytes (`RegexBuilder::size_limit`).
pub const REGEX_SIZE_LIMIT: usize = 64 * 1024;

/// The compiled comparison; texts are lowercased once here.
#[derive(Debug, Clone)]
enum Test {
    Eq(String),
    Ne(String),
    Contains(String),
    NotContains(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Present,
    Absent,
    Matches(Regex),
    Within(BusinessHours),
    Outside(BusinessHours),
}

/// A validated condition, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Condition {
    field: Field,
    test: Test,
    description: String,
}

impl Condition {
    /// Checks `spec` (at `path`, e.g. `conditions.all[0]`) for a rule with `trigger`.
    pub(crate) fn parse(
        spec: &ConditionSpec,
        path: &str,
        trigger: Trigger,
    ) -> Result<Self, RuleError> {
        let at = |key: &str| format!("{path}.{key}");
        let field = Field::parse(&spec.field).ok_or_else(|| {
            let problem = RuleProblem::Unknown {
                what: "field",
                name: echo(&spec.field),
            };
            RuleError::new(at("field"), problem)
        })?;
        if field == Field::Update && trigger == Trigger::CaseCreated {
            return Err(RuleError::new(at("field"), RuleProblem::OnlyForUpdates));
        }
        let op = Operator::parse(&spec.op).ok_or_else(|| {
            let problem = RuleProblem::Unknown {
                what: "operator",
                name: echo(&spec.op),
            };
            RuleError::new(at("op"), problem)
        })?;
        if !field.operators().contains(&op) {
            let problem = RuleProblem::OperatorNotForField {
                op: op.as_str().to_owned(),
                field: field.name().into_owned(),
            };
            return Err(RuleError::new(at("op"), problem));
        }
        let value_path = at("value");
        let (test, shown) = compile(&field, op, spec.value.as_ref(), &value_path)?;
        let description = match shown {
            Some(shown) => format!("{} {} {shown}", field.name(), op.as_str()),
            None => format!("{} {}", field.name(), op.as_str()),
        };
        Ok(Self {
            field,
            test,
            description,
        })
    }

    /// The field tested.
    pub fn field(&self) -> &Field {
        &self.field
    }

    /// Human-readable, e.g. `channel eq live_chat`: what a firing records.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether the condition holds in `ctx`.
    pub fn holds(&self, ctx: &RuleContext) -> bool {
        let value = self.field.value_in(ctx);
        let known = || value.as_deref().is_some_and(|v| !v.trim().is_empty());
        let lower = || value.as_deref().map(str::to_lowercase);
        match &self.test {
            Test::Within(hours) => hours.contains(ctx.now),
            Test::Outside(hours) => !hours.contains(ctx.now),
            Test::Present => known(),
            Test::Absent => !known(),
            Test::Matches(regex) => value.as_deref().is_some_and(|v| regex.is_match(v)),
            Test::Eq(expected) => lower().is_some_and(|v| v == *expected),
            Test::Ne(expected) => lower().is_none_or(|v| v != *expected),
            Test::Contains(part) => lower().is_some_and(|v| v.contains(part.as_str())),
            Test::NotContains(part) => lower().is_none_or(|v| !v.contains(part.as_str())),
            Test::In(list) => lower().is_some_and(|v| list.contains(&v)),
            Test::NotIn(list) => lower().is_none_or(|v| !list.contains(&v)),
        }
    }
}

/// The comparison for `field op value`, and how the value reads in a description.
fn compile(
    field: &Field,
    op: Operator,
    value: Option<&Value>,
    path: &str,
) -> Result<(Test, Option<String>), RuleError> {
    let value = value.filter(|v| !v.is_null());
    if matches!(op, Operator::Present | Operator::Absent) {
        if value.is_some() {
            return Err(RuleError::new(path, RuleProblem::UnexpectedValue));
        }
        let test = if op == Operator::Present {
            Test::Present
        } else {
            Test::Absent
        };
        return Ok((test, None));
    }
    let value = value.ok_or_else(|| RuleError::new(path, RuleProblem::Missing))?;
    if field.values() == Values::Hours {
        let hours = BusinessHours::parse(value, path)?;
        let shown = hours.describe();
        let test = if op == Operator::In {
            Test::Within(hours)
        } else {
            Test::Outside(hours)
        };
        return Ok((test, Some(shown)));
    }
    if matches!(op, Operator::In | Operator::NotIn) {
        let items = value.as_array().ok_or_else(|| {
            RuleError::new(
                path,
                RuleProblem::WrongType {
                    expected: "an array",
                },
            )
        })?;
        if items.is_empty() {
            return Err(RuleError::new(path, RuleProblem::Empty));
        }
        if items.len() > MAX_IN_VALUES {
            return Err(RuleError::new(
                path,
                RuleProblem::TooMany { max: MAX_IN_VALUES },
            ));
        }
        let list = items
            .iter()
            .enumerate()
            .map(|(i, item)| operand(field, item, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let shown = items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let shown = format!("[{shown}]");
        let test = if op == Operator::In {
            Test::In(list)
        } else {
            Test::NotIn(list)
        };
        return Ok((test, Some(shown)));
    }
    if op == Operator::Matches {
        let pattern = value.as_str().ok_or_else(|| {
            RuleError::new(
                path,
                RuleProblem::WrongType {
                    expected: "a string",
                },
            )
        })?;
        return Ok((
            Test::Matches(regex(pattern, path)?),
            Some(pattern.to_owned()),
        ));
    }
    let operand = operand(field, value, path)?;
    let shown = value.as_str().map(str::to_owned);
    let test = match op {
        Operator::Eq => Test::Eq(operand),
        Operator::Ne => Test::Ne(operand),
        Operator::Contains => Test::Contains(operand),
        _ => Test::NotContains(operand),
    };
    Ok((test, shown))
}

/// One value to compare with, lowercased (ids in their canonical form).
fn operand(field: &Field, value: &Value, path: &str) -> Result<String, RuleError> {
    let fail = |problem| Err(RuleError::new(path, problem));
    let Some(text) = value.as_str() else {
        return fail(RuleProblem::WrongType {
            expected: "a string",
        });
    };
    if text.trim().is_empty() {
        return fail(RuleProblem::Empty);
    }
    if text.chars().count() > MAX_VALUE_CHARS {
        return fail(RuleProblem::TooLong {
            max: MAX_VALUE_CHARS,
        });
    }
    let unknown = |what| {
        let name = echo(text);
        Err(RuleError::new(path, RuleProblem::Unknown { what, name }))
    };
    match field.values() {
        Values::Id => match Uuid::parse_str(text) {
            Ok(id) => Ok(id.to_string()),
            Err(_) => fail(RuleProblem::NotUuid),
        },
        Values::Status if CaseStatus::parse(text).is_none() => unknown("status"),
        Values::Update if UpdateKind::parse(text).is_none() => unknown("update"),
        _ => Ok(text.to_lowercase()),
    }
}

/// `pattern` compiled within the size limits.
fn regex(pattern: &str, path: &str) -> Result<Regex, RuleError> {
    if pattern.is_empty() {
        return Err(RuleError::new(path, RuleProblem::Empty));
    }
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(RuleError::new(
            path,
            RuleProblem::TooLong {
                max: MAX_PATTERN_CHARS,
            },
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(4 * REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let problem = match e {
                regex::Error::CompiledTooBig(_) => RuleProblem::RegexTooLarge,
                other => RuleProblem::InvalidRegex(other.to_string().chars().take(500).collect()),
            };
            RuleError::new(path, problem)
        })
}
