//! Actions: checked when the rule is validated, their texts rendered when it fires.

use std::fmt;

use serde_json::Value;
use uuid::Uuid;

use super::context::RuleContext;
use super::error::{RuleError, RuleProblem, echo};
use super::spec::{ActionSpec, SECRET_PARAMS};
use super::template::{Escaping, Template};
use crate::case::CaseStatus;

/// Longest text of a reply or notification (before placeholders are filled), in characters.
pub const MAX_TEXT_CHARS: usize = 4000;
/// Longest Slack webhook URL or Telegram bot token, in characters.
pub const MAX_SECRET_CHARS: usize = 2000;

/// What a rule does. `Text` is a [`Template`] in a validated rule and the rendered `String`
/// in a [`super::Firing`] (see [`RenderedAction`]).
#[derive(Clone, PartialEq)]
pub enum Action<Text = Template> {
    /// `reply`: a message to the visitor, sent as the integration.
    Reply {
        /// What to say.
        text: Text,
    },
    /// `assign`: a named agent.
    Assign {
        /// The agent.
        agent_id: Uuid,
    },
    /// `assign_round_robin`: the next online agent with Live Chat access.
    AssignRoundRobin,
    /// `set_group`.
    SetGroup {
        /// The group.
        group_id: Uuid,
    },
    /// `set_status`.
    SetStatus {
        /// The status.
        status: CaseStatus,
    },
    /// `notify_slack`: a message to a Slack incoming webhook.
    NotifySlack {
        /// The incoming-webhook URL (a credential: never logged): `https://`, or `http://`
        /// to a loopback host, where the call never leaves the machine (a local stand-in).
        webhook_url: String,
        /// The message; inserted values are escaped for Slack.
        text: Text,
    },
    /// `notify_telegram`: a message from a Telegram bot.
    NotifyTelegram {
        /// The bot token, `<bot id>:<secret>` (a credential: never logged).
        bot_token: String,
        /// A numeric chat id or an `@channel` username.
        chat_id: String,
        /// The message.
        text: Text,
    },
    /// `play_sound`: a sound for the agents who see the case.
    PlaySound {
        /// The sound's name, e.g. `bell`.
        sound: String,
    },
}

/// An action of a fired rule, its texts rendered.
pub type RenderedAction = Action<String>;

impl<Text> Action<Text> {
    /// The action's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Reply { .. } => "reply",
            Self::Assign { .. } => "assign",
            Self::AssignRoundRobin => "assign_round_robin",
            Self::SetGroup { .. } => "set_group",
            Self::SetStatus { .. } => "set_status",
            Self::NotifySlack { .. } => "notify_slack",
            Self::NotifyTelegram { .. } => "notify_telegram",
            Self::PlaySound { .. } => "play_sound",
        }
    }
}

impl Action {
    /// Checks `spec` at `path` (e.g. `actions[1]`).
    pub(crate) fn parse(spec: &ActionSpec, path: &str) -> Result<Self, RuleError> {
        let allowed: &[&str] = match spec.kind.as_str() {
            "reply" => &["text"],
            "assign" => &["agent_id"],
            "assign_round_robin" => &[],
            "set_group" => &["group_id"],
            "set_status" => &["status"],
            "notify_slack" => &["webhook_url", "text"],
            "notify_telegram" => &["bot_token", "chat_id", "text"],
            "play_sound" => &["sound"],
            "" => return Err(RuleError::new(format!("{path}.type"), RuleProblem::Missing)),
            other => {
                let problem = RuleProblem::Unknown {
                    what: "action type",
                    name: echo(other),
                };
                return Err(RuleError::new(format!("{path}.type"), problem));
            }
        };
        if let Some(extra) = spec.params.keys().find(|k| !allowed.contains(&k.as_str())) {
            let problem = RuleProblem::UnexpectedParameter {
                action: spec.kind.clone(),
            };
            return Err(RuleError::new(format!("{path}.{}", echo(extra)), problem));
        }
        let p = Params { spec, path };
        Ok(match spec.kind.as_str() {
            "reply" => Self::Reply {
                text: p.template("text")?,
            },
            "assign" => Self::Assign {
                agent_id: p.uuid("agent_id")?,
            },
            "set_group" => Self::SetGroup {
                group_id: p.uuid("group_id")?,
            },
            "set_status" => {
                let status = p.text("status", 16)?;
                let status = CaseStatus::parse(status).ok_or_else(|| {
                    let name = echo(status);
                    p.error(
                        "status",
                        RuleProblem::Unknown {
                            what: "status",
                            name,
                        },
                    )
                })?;
                Self::SetStatus { status }
            }
            "notify_slack" => Self::NotifySlack {
                webhook_url: p.webhook_url("webhook_url")?,
                text: p.template("text")?,
            },
            "notify_telegram" => Self::NotifyTelegram {
                bot_token: p.checked("bot_token", MAX_SECRET_CHARS, bot_token, BOT_TOKEN)?,
                chat_id: p.checked("chat_id", 64, chat_id, CHAT_ID)?,
                text: p.template("text")?,
            },
            "play_sound" => Self::PlaySound {
                sound: p.checked("sound", 32, sound, SOUND)?,
            },
            _ => Self::AssignRoundRobin,
        })
    }

    /// The action with its texts rendered for `ctx`.
    pub fn render(&self, ctx: &RuleContext) -> RenderedAction {
        match self {
            Self::Reply { text } => Action::Reply {
                text: text.render(ctx, Escaping::Plain),
            },
            Self::Assign { agent_id } => Action::Assign {
                agent_id: *agent_id,
            },
            Self::AssignRoundRobin => Action::AssignRoundRobin,
            Self::SetGroup { group_id } => Action::SetGroup {
                group_id: *group_id,
            },
            Self::SetStatus { status } => Action::SetStatus { status: *status },
            Self::NotifySlack { webhook_url, text } => Action::NotifySlack {
                webhook_url: webhook_url.clone(),
                text: text.render(ctx, Escaping::Slack),
            },
            Self::NotifyTelegram {
                bot_token,
                chat_id,
                text,
            } => Action::NotifyTelegram {
                bot_token: bot_token.clone(),
                chat_id: chat_id.clone(),
                text: text.render(ctx, Escaping::Plain),
            },
            Self::PlaySound { sound } => Action::PlaySound {
                sound: sound.clone(),
            },
        }
    }
}

/// Credentials are shown as `<redacted>`, so a rule can be logged.
impl<Text: fmt::Debug> fmt::Debug for Action<Text> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct(self.kind());
        let redacted = &"<redacted>";
        match self {
            Self::Reply { text } => out.field("text", text),
            Self::Assign { agent_id } => out.field("agent_id", agent_id),
            Self::AssignRoundRobin => &mut out,
            Self::SetGroup { group_id } => out.field("group_id", group_id),
            Self::SetStatus { status } => out.field("status", status),
            Self::NotifySlack { text, .. } => {
                out.field(SECRET_PARAMS[0], redacted).field("text", text)
            }
            Self::NotifyTelegram { chat_id, text, .. } => out
                .field(SECRET_PARAMS[1], redacted)
                .field("chat_id", chat_id)
                .field("text", text),
            Self::PlaySound { sound } => out.field("sound", sound),
        };
        out.finish()
    }
}

const BOT_TOKEN: &str = "expected a Telegram bot token like 123456:ABC-def";
const CHAT_ID: &str = "expected a numeric chat id or an @username";
const SOUND: &str = "expected a sound name of a-z, 0-9, _ and -";

/// `<digits>:<letters, digits, _ and ->`.
fn bot_token(token: &str) -> bool {
    token.split_once(':').is_some_and(|(id, secret)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && !secret.is_empty()
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// `-100123…` or `@channel_name`.
fn chat_id(id: &str) -> bool {
    if let Some(username) = id.strip_prefix('@') {
        return !username.is_empty()
            && username
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    }
    let digits = id.strip_prefix('-').unwrap_or(id);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

fn sound(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// An action's parameters, read with errors at `path.<name>`.
struct Params<'a> {
    spec: &'a ActionSpec,
    path: &'a str,
}

impl<'a> Params<'a> {
    fn error(&self, name: &str, problem: RuleProblem) -> RuleError {
        RuleError::new(format!("{}.{name}", self.path), problem)
    }

    /// A non-blank string of at most `max` characters.
    fn text(&self, name: &str, max: usize) -> Result<&'a str, RuleError> {
        let text = match self.spec.params.get(name) {
            None | Some(Value::Null) => return Err(self.error(name, RuleProblem::Missing)),
            Some(Value::String(text)) => text.as_str(),
            Some(_) => {
                return Err(self.error(
                    name,
                    RuleProblem::WrongType {
                        expected: "a string",
                    },
                ));
            }
        };
        if text.trim().is_empty() {
            return Err(self.error(name, RuleProblem::Empty));
        }
        if text.chars().count() > max {
            return Err(self.error(name, RuleProblem::TooLong { max }));
        }
        Ok(text)
    }

    fn checked(
        &self,
        name: &str,
        max: usize,
        valid: fn(&str) -> bool,
        expected: &'static str,
    ) -> Result<String, RuleError> {
        let text = self.text(name, max)?;
        if !valid(text) {
            return Err(self.error(name, RuleProblem::Malformed(expected)));
        }
        Ok(text.to_owned())
    }

    fn template(&self, name: &str) -> Result<Template, RuleError> {
        Template::parse(self.text(name, MAX_TEXT_CHARS)?)
            .map_err(|problem| self.error(name, problem))
    }

    fn uuid(&self, name: &str) -> Result<Uuid, RuleError> {
        Uuid::parse_str(self.text(name, 64)?).map_err(|_| self.error(name, RuleProblem::NotUuid))
    }

    fn webhook_url(&self, name: &str) -> Result<String, RuleError> {
        let text = self.text(name, MAX_SECRET_CHARS)?;
        match url::Url::parse(text) {
            Ok(url) if is_https_or_loopback_http(&url) => Ok(text.to_owned()),
            _ => Err(self.error(name, RuleProblem::NotHttps)),
        }
    }
}

/// A webhook is called over TLS, except on a loopback host: such a call never leaves the
/// machine, which is how a local stand-in (or a sidecar proxy) receives it.
fn is_https_or_loopback_http(url: &url::Url) -> bool {
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => true,
        ("http", Some(url::Host::Domain(domain))) => domain.eq_ignore_ascii_case("localhost"),
        ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        _ => false,
    }
}
