//! A rule as the API accepts and stores it.
//!
//! Deliberately loose: names are plain strings and actions keep their parameters as a JSON
//! map, so a rule written by a newer version survives being read and written back by an older
//! one. [`super::validate`] is where unknown fields, operators, action types and placeholders
//! are refused, each with the path of the offending field.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A rule as the admin wrote it: the API's JSON body and what it stores.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RuleSpec {
    /// Shown to admins and recorded on the case when the rule fires.
    #[serde(default)]
    pub name: String,
    /// `case_created` or `case_updated`.
    #[serde(default)]
    pub trigger: String,
    /// Disabled rules are kept but never evaluated.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Evaluation order, lowest first.
    #[serde(default)]
    pub position: i64,
    /// When this rule fires, later rules are not evaluated.
    #[serde(default)]
    pub stop_processing: bool,
    /// When the rule fires.
    #[serde(default)]
    pub conditions: ConditionsSpec,
    /// What it does, in order.
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
}

fn enabled_by_default() -> bool {
    true
}

/// Every condition of `all` must hold and, when `any` is not empty, at least one of `any`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConditionsSpec {
    /// Conditions that must all hold.
    #[serde(default)]
    pub all: Vec<ConditionSpec>,
    /// Conditions of which one must hold (ignored when empty).
    #[serde(default)]
    pub any: Vec<ConditionSpec>,
}

/// One condition: `field op value`, e.g. `channel eq "live_chat"`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConditionSpec {
    /// What is tested, e.g. `message.text` or `customer.field.plan`.
    #[serde(default)]
    pub field: String,
    /// How, e.g. `contains`.
    #[serde(default)]
    pub op: String,
    /// Against what; absent for `present` and `absent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// One action: its `type` and its parameters, e.g. `{"type": "reply", "text": "Hi"}`.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ActionSpec {
    /// `reply`, `assign`, `assign_round_robin`, `set_group`, `set_status`, `notify_slack`,
    /// `notify_telegram` or `play_sound`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Everything else in the object, by name.
    #[serde(flatten)]
    pub params: Map<String, Value>,
}

/// Parameters that hold a credential: never written to logs.
pub(crate) const SECRET_PARAMS: [&str; 2] = ActionSpec::SECRET_PARAMS;

impl ActionSpec {
    /// The parameters that hold a credential (`notify_slack.webhook_url`,
    /// `notify_telegram.bot_token`): never logged, stored only encrypted, never shown in clear.
    pub const SECRET_PARAMS: [&'static str; 2] = ["webhook_url", "bot_token"];
}

impl fmt::Debug for ActionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("ActionSpec");
        out.field("kind", &self.kind);
        for (name, value) in &self.params {
            if SECRET_PARAMS.contains(&name.as_str()) {
                out.field(name, &"<redacted>");
            } else {
                out.field(name, value);
            }
        }
        out.finish()
    }
}
