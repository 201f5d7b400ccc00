//! The one error type of every handler, mapped to an HTTP status in one place.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use deskie_config::CipherError;
use deskie_store::StoreError;
use serde::Serialize;

use crate::commands::agents::AgentCommandError;
use crate::commands::cases::CaseCommandError;
use crate::commands::rules::RuleCommandError;

/// Why a request failed. Messages never carry a secret or a submitted value.
#[derive(thiserror::Error)]
pub enum ApiError {
    /// No bearer token, or neither the admin's nor an enabled agent's.
    #[error("missing or invalid token")]
    Unauthorized,
    /// The caller is known but may not do this (an agent on an admin route, or on a case of
    /// a channel it has no access to).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request body or one of its fields is unacceptable.
    #[error("{message}")]
    Invalid {
        /// The field at fault (`body` for the body as a whole), e.g. `group_mappings[0].group_id`.
        field: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The body is larger than the api accepts.
    #[error("the body is over {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A field's value is already taken (an enabled agent's email).
    #[error("{message}")]
    Taken {
        /// The field whose value is taken.
        field: String,
        /// What is taken, naming the field.
        message: String,
    },
    /// The resource is in a state that refuses this (a disabled agent cannot be enabled
    /// again or get a new token).
    #[error("{0}")]
    WrongState(&'static str),
    /// No such resource (including ids that are not UUIDs).
    #[error("not found")]
    NotFound,
    /// Someone else changed the same stream meanwhile.
    #[error("changed concurrently, please retry")]
    Conflict(#[source] StoreError),
    /// PostgreSQL is unreachable or saturated.
    #[error("the database is unavailable")]
    Unavailable(#[source] StoreError),
    /// NATS is unreachable, or refused to set up a live-update consumer.
    #[error("live updates are unavailable")]
    BusUnavailable(#[source] deskie_bus::BusError),
    /// Any other store failure.
    #[error("the store failed")]
    Store(#[source] StoreError),
    /// A stored secret does not decrypt (wrong `DESKIE_ENCRYPTION_KEY` or corrupted data).
    #[error("a stored secret cannot be decrypted")]
    Secret(#[source] CipherError),
    /// The `Idempotency-Key` was used before, by the same caller on the same method and
    /// path, with another body.
    #[error(
        "this Idempotency-Key was already used with a different request body; \
         use a new key for a new request"
    )]
    IdempotencyKeyReused,
    /// The first request with this `Idempotency-Key` is still being answered.
    #[error("a request with this Idempotency-Key is still in progress; retry after it finished")]
    IdempotencyKeyInFlight,
    /// An answer to a request with an `Idempotency-Key` could not be kept or replayed.
    #[error("{0}")]
    Idempotency(&'static str),
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::VersionConflict { .. } => Self::Conflict(error),
            e if e.is_transient() => Self::Unavailable(e),
            e => Self::Store(e),
        }
    }
}

impl From<AgentCommandError> for ApiError {
    fn from(error: AgentCommandError) -> Self {
        match error {
            AgentCommandError::NotFound => Self::NotFound,
            AgentCommandError::EmailTaken => Self::Taken {
                field: "email".into(),
                message: "email is already used by another enabled agent".into(),
            },
            AgentCommandError::Disabled => Self::WrongState("the agent is disabled"),
            AgentCommandError::Store(e) => e.into(),
        }
    }
}

impl From<CaseCommandError> for ApiError {
    fn from(error: CaseCommandError) -> Self {
        match error {
            CaseCommandError::NotFound => Self::NotFound,
            CaseCommandError::Forbidden => Self::Forbidden("no access to this case's channel"),
            CaseCommandError::Invalid { field, message } => Self::invalid(field, message),
            CaseCommandError::Store(e) => e.into(),
        }
    }
}

impl From<RuleCommandError> for ApiError {
    fn from(error: RuleCommandError) -> Self {
        match error {
            RuleCommandError::NotFound => Self::NotFound,
            RuleCommandError::Invalid { field, message } => Self::invalid(field, message),
            RuleCommandError::Secret(e) => e.into(),
            RuleCommandError::Store(e) => e.into(),
        }
    }
}

impl From<CipherError> for ApiError {
    fn from(error: CipherError) -> Self {
        Self::Secret(error)
    }
}

/// Debug prints the whole source chain: tracing-actix-web logs it for every failed request.
impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_)
            | Self::Taken { .. }
            | Self::WrongState(_)
            | Self::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) | Self::BusUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) | Self::Secret(_) | Self::Idempotency(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = self.to_string();
        let field = match self {
            Self::Invalid { field, .. } | Self::Taken { field, .. } => Some(field.as_str()),
            Self::TooLarge { .. } => Some("body"),
            Self::IdempotencyKeyReused | Self::IdempotencyKeyInFlight => {
                Some(crate::idempotency::KEY_HEADER)
            }
            _ => None,
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unauthorized) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if matches!(self, Self::IdempotencyKeyInFlight) {
            response.insert_header(("Retry-After", crate::idempotency::RETRY_AFTER_SECS));
        }
        response.json(ErrorBody {
            error: &message,
            field,
        })
    }
}
