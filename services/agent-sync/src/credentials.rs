//! An integration's API keys, decrypted for one call.

use deskie_chatra::ChatraCredentials;
use deskie_config::{Cipher, CipherError};
use deskie_store::read_models::integrations::Integration;
use secrecy::SecretString;

/// The integration's keys as Chatra wants them; fails when the stored secret does not
/// decrypt (another `DESKIE_ENCRYPTION_KEY`, or corrupted data).
pub(crate) fn credentials(
    cipher: &Cipher,
    integration: &Integration,
) -> Result<ChatraCredentials, CipherError> {
    let secret = cipher.decrypt_string(&integration.secret_key_encrypted)?;
    Ok(ChatraCredentials {
        public_key: integration.public_key.clone(),
        secret_key: SecretString::from(secret),
    })
}

/// Whether Chatra is worth calling with this integration's keys: connected and not known
/// to hold refused keys (a key check that could not reach Chatra does not count against it).
pub(crate) fn usable(integration: &Integration) -> bool {
    integration.disconnected_at.is_none() && integration.status != "invalid_keys"
}
