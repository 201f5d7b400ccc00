//! Why a rule was refused, and where.

/// A rule the API must refuse: `path` names the offending field as the API returns it, e.g.
/// `conditions.all[0].op` or `actions[1].text`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct RuleError {
    /// The offending field, e.g. `actions[1].webhook_url`.
    pub path: String,
    /// What is wrong with it.
    pub problem: RuleProblem,
}

impl RuleError {
    pub(crate) fn new(path: impl Into<String>, problem: RuleProblem) -> Self {
        Self {
            path: path.into(),
            problem,
        }
    }
}

/// What is wrong with a field of a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    /// A required value is missing.
    #[error("is required")]
    Missing,
    /// Empty (or only whitespace) where text is required.
    #[error("must not be empty")]
    Empty,
    /// Longer than allowed.
    #[error("must be at most {max} characters")]
    TooLong {
        /// The limit, in characters.
        max: usize,
    },
    /// More items than allowed.
    #[error("must have at most {max} items")]
    TooMany {
        /// The limit.
        max: usize,
    },
    /// A number outside its range.
    #[error("must be between {min} and {max}")]
    OutOfRange {
        /// Lowest allowed.
        min: i64,
        /// Highest allowed.
        max: i64,
    },
    /// The JSON value has the wrong type.
    #[error("must be {expected}")]
    WrongType {
        /// What was expected, e.g. "a string".
        expected: &'static str,
    },
    /// Not one of the allowed names (trigger, field, operator, action type, status, …).
    #[error("unknown {what} {name:?}")]
    Unknown {
        /// What kind of name, e.g. "operator".
        what: &'static str,
        /// The name given (cut to 64 characters).
        name: String,
    },
    /// An operator the field does not support.
    #[error("operator {op} does not apply to {field}")]
    OperatorNotForField {
        /// The operator.
        op: String,
        /// The field.
        field: String,
    },
    /// `update` in a rule for new cases, where it never holds.
    #[error("applies only to case_updated rules")]
    OnlyForUpdates,
    /// A value given to `present` or `absent`.
    #[error("takes no value")]
    UnexpectedValue,
    /// A parameter the action does not have.
    #[error("is not a parameter of {action}")]
    UnexpectedParameter {
        /// The action type.
        action: String,
    },
    /// Not a UUID.
    #[error("must be a UUID")]
    NotUuid,
    /// Not an `https://` URL (nor `http://` to a loopback host).
    #[error("must be an https URL (http only to localhost or a loopback address)")]
    NotHttps,
    /// A malformed value, e.g. a Telegram bot token or a time of day.
    #[error("is malformed: {0}")]
    Malformed(&'static str),
    /// A regular expression that does not compile.
    #[error("invalid regular expression: {0}")]
    InvalidRegex(String),
    /// A regular expression that compiles beyond the size limit.
    #[error("regular expression is too large")]
    RegexTooLarge,
    /// A `{{…}}` placeholder that is not one of the supported ones.
    #[error("unknown placeholder {{{{{0}}}}}")]
    UnknownPlaceholder(String),
    /// A `{{` without its `}}`.
    #[error("unclosed placeholder")]
    UnclosedPlaceholder,
    /// A day listed twice in business hours.
    #[error("lists a day twice")]
    DuplicateDay,
    /// Business hours whose start and end are the same time.
    #[error("must differ from `from`")]
    EmptyWindow,
}

/// `name` cut to 64 characters, for error messages that echo user input.
pub(crate) fn echo(name: &str) -> String {
    name.chars().take(64).collect()
}
