//! AES-256-GCM for secrets at rest (Chatra secret keys, webhook tokens, bot tokens).

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;

const NONCE_LEN: usize = 12;
/// AES-GCM's authentication tag, appended to the ciphertext.
const TAG_LEN: usize = 16;

/// Why a key or a ciphertext was refused. Never carries the secret itself.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    /// The configured key is not 32 bytes of hex or base64.
    #[error("expected 32 bytes as 64 hex characters or base64")]
    BadKey,
    /// The ciphertext was altered, truncated, or made with another key.
    #[error("secret cannot be decrypted (wrong DESKIE_ENCRYPTION_KEY or corrupted data)")]
    Undecryptable,
}

/// Encrypts and decrypts small secrets with the deployment's `DESKIE_ENCRYPTION_KEY`.
///
/// Output is `nonce (12 bytes) || ciphertext+tag`, a fresh random nonce each time.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([REDACTED])")
    }
}

impl Cipher {
    /// Builds a cipher from 32 raw key bytes.
    pub fn from_key_bytes(bytes: &[u8; 32]) -> Self {
        Self {
            aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)),
        }
    }

    /// Parses the key as 64 hex characters or as base64 of 32 bytes.
    pub fn from_encoded_key(encoded: &str) -> Result<Self, CipherError> {
        let encoded = encoded.trim();
        let bytes = hex::decode(encoded)
            .ok()
            .filter(|b| b.len() == 32)
            .or_else(|| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
                    .filter(|b| b.len() == 32)
            })
            .ok_or(CipherError::BadKey)?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Ok(Self::from_key_bytes(&key))
    }

    /// A new random key, hex-encoded, for `deskie run` to generate on first start.
    pub fn generate_encoded_key() -> String {
        hex::encode(Aes256Gcm::generate_key(&mut OsRng))
    }

    /// Encrypts `plaintext`.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        // Encryption with a valid key and a fresh nonce cannot fail for inputs this small;
        // an empty output on the impossible error would be caught by decrypt.
        out.extend(self.aead.encrypt(&nonce, plaintext).unwrap_or_default());
        out
    }

    /// Decrypts what [`Cipher::encrypt`] produced.
    pub fn decrypt(&self, data: &[u8]) -> Result<Vec<u8>, CipherError> {
        if data.len() < NONCE_LEN {
            return Err(CipherError::Undecryptable);
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        self.aead
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| CipherError::Undecryptable)
    }

    /// The length of the secret sealed in `data` (what [`Cipher::encrypt`] produced), from
    /// `data`'s length alone: nonce and tag have fixed sizes, so no key is needed. `None` when
    /// `data` is too short to be a sealed secret.
    pub fn sealed_len(data: &[u8]) -> Option<usize> {
        data.len().checked_sub(NONCE_LEN + TAG_LEN)
    }

    /// Decrypts into a UTF-8 string.
    pub fn decrypt_string(&self, data: &[u8]) -> Result<String, CipherError> {
        String::from_utf8(self.decrypt(data)?).map_err(|_| CipherError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sealed_length_is_the_secrets() {
        let cipher = Cipher::from_key_bytes(&[7; 32]);
        for secret in ["", "x", "a 43-character webhook token, more or less."] {
            let sealed = cipher.encrypt(secret.as_bytes());
            assert_eq!(Cipher::sealed_len(&sealed), Some(secret.len()));
        }
        assert_eq!(Cipher::sealed_len(&[1, 2, 3]), None);
    }

    #[test]
    fn round_trips_and_never_shows_the_plaintext() {
        let cipher = Cipher::from_encoded_key(&Cipher::generate_encoded_key()).expect("key");
        let sealed = cipher.encrypt(b"chatra-secret");
        assert!(!sealed.windows(13).any(|w| w == b"chatra-secret"));
        assert_eq!(
            cipher.decrypt_string(&sealed).as_deref(),
            Ok("chatra-secret")
        );
        assert_ne!(
            sealed,
            cipher.encrypt(b"chatra-secret"),
            "nonce must be fresh"
        );
    }

    #[test]
    fn another_key_or_tampering_is_refused() {
        let a = Cipher::from_key_bytes(&[1; 32]);
        let b = Cipher::from_key_bytes(&[2; 32]);
        let mut sealed = a.encrypt(b"x");
        assert_eq!(b.decrypt(&sealed), Err(CipherError::Undecryptable));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(a.decrypt(&sealed), Err(CipherError::Undecryptable));
        assert_eq!(a.decrypt(b"short"), Err(CipherError::Undecryptable));
    }

    #[test]
    fn keys_are_accepted_as_hex_or_base64_only_at_32_bytes() {
        assert!(Cipher::from_encoded_key(&"00".repeat(32)).is_ok());
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(Cipher::from_encoded_key(&b64).is_ok());
        assert!(Cipher::from_encoded_key(&"00".repeat(31)).is_err());
        assert!(Cipher::from_encoded_key("not a key").is_err());
    }
}
