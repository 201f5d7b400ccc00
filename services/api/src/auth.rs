//! Bearer-token authentication: the admin token, or an enabled agent's token.
//!
//! [`authenticate`] runs on every `/api/v1` request, before any body is read, and leaves the
//! caller as a [`Principal`] in the request's extensions; [`admin_only`] guards the admin's
//! resources. An agent's token is looked up in the `agents` read model on every request, so
//! disabling an agent (or rotating its token) takes effect at once.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use deskie_store::read_models::agents;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ApiError;
use crate::routes::AppState;
use crate::routes::agents::AgentView;

/// The admin token, kept only as its SHA-256 so comparing hides its length and content.
#[derive(Clone)]
pub struct AdminToken {
    sha256: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken([REDACTED])")
    }
}

impl AdminToken {
    /// Remembers the configured token.
    pub fn new(token: &SecretString) -> Self {
        Self {
            sha256: Sha256::digest(token.expose_secret().as_bytes()).into(),
        }
    }

    /// Whether `presented` is the admin token, in time independent of where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        presented.ct_eq(&self.sha256).into()
    }
}

/// Who is calling: the admin, or an enabled agent (as the read model had it at the start of
/// the request).
#[derive(Debug, Clone)]
pub enum Principal {
    /// The holder of `DESKIE_ADMIN_TOKEN`: may do everything.
    Admin,
    /// An agent, acting as itself.
    Agent(AgentView),
}

impl Principal {
    /// Whether the caller may see and act on cases of `channel` (the admin may on all).
    pub fn may_access(&self, channel: &str) -> bool {
        match self {
            Self::Admin => true,
            Self::Agent(agent) => agent.channel_access.iter().any(|c| c == channel),
        }
    }

    /// The acting agent's id; `None` for the admin.
    pub fn agent_id(&self) -> Option<uuid::Uuid> {
        match self {
            Self::Admin => None,
            Self::Agent(agent) => Some(agent.id),
        }
    }
}

/// Handlers take the caller as an argument; it is always there behind [`authenticate`].
impl FromRequest for Principal {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let principal = request.extensions().get::<Principal>().cloned();
        std::future::ready(principal.ok_or(ApiError::Unauthorized))
    }
}

/// The token of an `Authorization: Bearer {token}` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Middleware for the `/api/v1` scope: identifies the caller or refuses with 401, before
/// any body is read.
pub async fn authenticate(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let principal = identify(&request).await?;
    request.extensions_mut().insert(principal);
    next.call(request).await
}

async fn identify(request: &ServiceRequest) -> Result<Principal, ApiError> {
    let token = bearer_token(request.headers()).ok_or(ApiError::Unauthorized)?;
    let admin = request.app_data::<web::Data<AdminToken>>();
    if admin.is_some_and(|admin| admin.matches(token)) {
        return Ok(Principal::Admin);
    }
    let state = request
        .app_data::<web::Data<AppState>>()
        .ok_or(ApiError::Unauthorized)?;
    // Agents' tokens are 256 random bits, so their SHA-256 can be looked up by index: the
    // timing of the lookup reveals nothing usable about any token.
    let sha256: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let agent = agents::by_token_sha256(state.store.pool(), &sha256).await?;
    agent
        .map(|agent| Principal::Agent(AgentView::from(agent)))
        .ok_or(ApiError::Unauthorized)
}

/// The SHA-256 of the bearer token in `headers`: how the `agents` read model finds the
/// token's agent, so a long-lived request (a live stream) can check it is still enabled.
pub fn token_sha256(headers: &HeaderMap) -> Option<[u8; 32]> {
    bearer_token(headers).map(|token| Sha256::digest(token.as_bytes()).into())
}

/// Middleware for the admin's resources (groups, integrations, agents): 403 for agents.
pub async fn admin_only(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let is_admin = matches!(
        request.extensions().get::<Principal>(),
        Some(Principal::Admin)
    );
    if !is_admin {
        return Err(ApiError::Forbidden("admin only").into());
    }
    next.call(request).await
}

/// Middleware for an agent's own resources (`/agents/me/...`): 403 for the admin, who is
/// no agent, before any body is read.
pub async fn agent_only(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let is_agent = matches!(
        request.extensions().get::<Principal>(),
        Some(Principal::Agent(_))
    );
    if !is_agent {
        return Err(ApiError::Forbidden(crate::routes::agents::AGENTS_ONLY).into());
    }
    next.call(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        let admin = AdminToken::new(&SecretString::from("the-admin-token-123"));
        assert!(admin.matches("the-admin-token-123"));
        assert!(!admin.matches("the-admin-token-124"));
        assert!(!admin.matches("the-admin-token-12"));
        assert!(!admin.matches(""));
        assert!(!format!("{admin:?}").contains("the-admin"));
    }
}
