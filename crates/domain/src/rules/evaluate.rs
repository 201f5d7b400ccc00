//! Which rules fire for a change, in order.

use uuid::Uuid;

use super::action::RenderedAction;
use super::context::{RuleContext, Trigger};
use super::validate::ValidRule;

/// A rule that fired: recorded on the case (`RuleFired`), then its actions are carried out.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// The rule.
    pub rule_id: Uuid,
    /// Its name.
    pub rule_name: String,
    /// The trigger it fired on.
    pub trigger: Trigger,
    /// Why: the conditions that matched, e.g. `channel eq live_chat`.
    pub matched_conditions: Vec<String>,
    /// What to do, texts rendered, in the rule's order.
    pub actions: Vec<RenderedAction>,
}

/// The rules that fire for `ctx`: enabled rules of its trigger by `position`, ties by id,
/// stopping after a fired rule with `stop_processing`. Pure and allocation-light: regexes,
/// business hours and templates were compiled by [`super::validate`].
pub fn evaluate(rules: &[ValidRule], ctx: &RuleContext) -> Vec<Firing> {
    let trigger = ctx.change.trigger();
    let mut candidates: Vec<&ValidRule> = rules
        .iter()
        .filter(|rule| rule.enabled() && rule.trigger() == trigger)
        .collect();
    candidates.sort_by_key(|rule| (rule.position(), rule.id()));

    let mut firings = Vec::new();
    for rule in candidates {
        let Some(matched_conditions) = rule.matched_conditions(ctx) else {
            continue;
        };
        firings.push(Firing {
            rule_id: rule.id(),
            rule_name: rule.name().to_owned(),
            trigger,
            matched_conditions,
            actions: rule.actions().iter().map(|a| a.render(ctx)).collect(),
        });
        if rule.stop_processing() {
            break;
        }
    }
    firings
}
