//! The one error type of every handler, mapped to an HTTP status in one place.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use deskie_config::CipherError;
use deskie_store::StoreError;
use serde::Serialize;

/// Why a request failed. Messages never carry a secret or a submitted value.
#[derive(thiserror::Error)]
pub enum ApiError {
    /// No bearer token, or not the admin's.
    #[error("missing or invalid admin token")]
    Unauthorized,
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
    /// No such resource (including ids that are not UUIDs).
    #[error("not found")]
    NotFound,
    /// Someone else changed the same stream meanwhile.
    #[error("changed concurrently, please retry")]
    Conflict(#[source] StoreError),
    /// PostgreSQL is unreachable or saturated.
    #[error("the database is unavailable")]
    Unavailable(#[source] StoreError),
    /// Any other store failure.
    #[error("the store failed")]
    Store(#[source] StoreError),
    /// A stored secret does not decrypt (wrong `DESKIE_ENCRYPTION_KEY` or corrupted data).
    #[error("a stored secret cannot be decrypted")]
    Secret(#[source] CipherError),
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
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) | Self::Secret(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = self.to_string();
        let field = match self {
            Self::Invalid { field, .. } => Some(field.as_str()),
            Self::TooLarge { .. } => Some("body"),
            _ => None,
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unauthorized) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.json(ErrorBody {
            error: &message,
            field,
        })
    }
}
