//! The secret in each integration's webhook URL.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A webhook token: 32 random bytes (256 bits) as URL-safe base64 without padding.
///
/// Stored only encrypted (so the admin can see the URL again) and as its SHA-256 (what
/// ingest compares against); `Debug` never shows it.
#[derive(Debug, Clone)]
pub struct WebhookToken(SecretString);

impl WebhookToken {
    /// A fresh random token from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A token recovered from storage.
    pub fn from_plaintext(token: String) -> Self {
        Self(SecretString::from(token))
    }

    /// The token itself, for the admin's eyes and for encryption.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// SHA-256 of the token's bytes.
    pub fn sha256(&self) -> Vec<u8> {
        Sha256::digest(self.expose().as_bytes()).to_vec()
    }

    /// `{public_url}/webhooks/chatra/{id}?token={token}`: what the admin pastes into Chatra.
    pub fn webhook_url(&self, public_url: &str, integration_id: Uuid) -> String {
        format!(
            "{}/webhooks/chatra/{integration_id}?token={}",
            public_url.trim_end_matches('/'),
            self.expose()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_url_safe_and_fresh() {
        let a = WebhookToken::generate();
        let b = WebhookToken::generate();
        assert_eq!(a.expose().len(), 43);
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.sha256().len(), 32);
        assert!(!format!("{a:?}").contains(a.expose()));
        let id = Uuid::nil();
        assert_eq!(
            a.webhook_url("https://d.example/", id),
            format!(
                "https://d.example/webhooks/chatra/{id}?token={}",
                a.expose()
            )
        );
    }
}
