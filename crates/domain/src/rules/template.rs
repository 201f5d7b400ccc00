//! `{{placeholder}}` texts: parsed once when a rule is validated, rendered on every firing.

use super::context::RuleContext;
use super::error::{RuleProblem, echo};

/// A value a template can insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `{{customer.name}}`.
    CustomerName,
    /// `{{customer.email}}`.
    CustomerEmail,
    /// `{{case.id}}`.
    CaseId,
    /// `{{message.text}}`.
    MessageText,
    /// `{{agent.name}}`.
    AgentName,
}

impl Placeholder {
    /// Every placeholder, in documentation order.
    pub const ALL: [Self; 5] = [
        Self::CustomerName,
        Self::CustomerEmail,
        Self::CaseId,
        Self::MessageText,
        Self::AgentName,
    ];

    /// The name between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Self::CustomerName => "customer.name",
            Self::CustomerEmail => "customer.email",
            Self::CaseId => "case.id",
            Self::MessageText => "message.text",
            Self::AgentName => "agent.name",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The value in `ctx`; empty when unknown.
    fn write(self, ctx: &RuleContext, out: &mut String, escaping: Escaping) {
        let value = match self {
            Self::CustomerName => ctx.customer.name.as_deref(),
            Self::CustomerEmail => ctx.customer.email.as_deref(),
            Self::MessageText => ctx.message_text.as_deref(),
            Self::AgentName => ctx.agent_name.as_deref(),
            Self::CaseId => {
                let mut buf = uuid::Uuid::encode_buffer();
                out.push_str(ctx.case.id.hyphenated().encode_lower(&mut buf));
                return;
            }
        };
        escaping.push(out, value.unwrap_or_default());
    }
}

/// How inserted values are escaped for where the text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escaping {
    /// Inserted as they are (chat replies, Telegram messages sent without a parse mode).
    Plain,
    /// `&`, `<` and `>` escaped, so a customer's name cannot become a Slack link or an
    /// `<!channel>` mention.
    Slack,
}

impl Escaping {
    fn push(self, out: &mut String, value: &str) {
        match self {
            Self::Plain => out.push_str(value),
            Self::Slack => {
                for c in value.chars() {
                    match c {
                        '&' => out.push_str("&amp;"),
                        '<' => out.push_str("&lt;"),
                        '>' => out.push_str("&gt;"),
                        c => out.push(c),
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Placeholder),
}

/// A text with placeholders, e.g. `Hi {{customer.name}}, we are on it.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`: every `{{…}}` must name a [`Placeholder`] (spaces inside the braces are
    /// allowed); a `}}` alone is plain text.
    pub fn parse(text: &str) -> Result<Self, RuleProblem> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or(RuleProblem::UnclosedPlaceholder)?;
            let name = after[..end].trim();
            let placeholder = Placeholder::parse(name)
                .ok_or_else(|| RuleProblem::UnknownPlaceholder(echo(name)))?;
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            parts.push(Part::Value(placeholder));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The text with each placeholder replaced by its value in `ctx` (empty when unknown).
    /// Values are inserted once: a value that itself contains `{{…}}` stays as it is.
    pub fn render(&self, ctx: &RuleContext, escaping: Escaping) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Value(placeholder) => placeholder.write(ctx, &mut out, escaping),
            }
        }
        out
    }
}
