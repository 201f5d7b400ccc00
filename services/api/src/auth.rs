//! Bearer-token authentication of the admin.
//!
//! Agents' tokens (BRIEF §3) will extend this into a caller that is either the admin or an
//! agent; today every `/api/v1` route is the admin's.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::web;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ApiError;

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

/// The token of an `Authorization: Bearer {token}` header (scheme case-insensitive).
fn bearer_token(request: &ServiceRequest) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Middleware for the `/api/v1` scope: refuses with 401 before any body is read.
pub async fn require_admin(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let admin = request.app_data::<web::Data<AdminToken>>();
    let allowed = match (admin, bearer_token(&request)) {
        (Some(admin), Some(token)) => admin.matches(token),
        _ => false,
    };
    if !allowed {
        return Err(ApiError::Unauthorized.into());
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
