//! Random bearer secrets: agents' API tokens and integrations' webhook tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// 32 random bytes (256 bits) as URL-safe base64 without padding.
///
/// Only its SHA-256 is what gets compared (ingest for webhook tokens, [`crate::auth`] for
/// agents' tokens); an agent's token is shown once, a webhook token is also kept encrypted
/// so the admin can see the URL again. `Debug` never shows it.
#[derive(Debug, Clone)]
pub struct SecretToken(SecretString);

impl SecretToken {
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

    /// The token itself, for the one answer that shows it (or for encryption).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// SHA-256 of the token's bytes: what is stored and compared.
    pub fn sha256(&self) -> Vec<u8> {
        Sha256::digest(self.expose().as_bytes()).to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_url_safe_fresh_and_hidden_from_debug() {
        let a = SecretToken::generate();
        let b = SecretToken::generate();
        assert_eq!(a.expose().len(), 43);
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.sha256().len(), 32);
        assert!(!format!("{a:?}").contains(a.expose()));
    }
}
