//! Secrets `deskie run` generates on first start, kept in its data folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use deskie_config::{Cipher, Settings};
use rand::RngCore;
use secrecy::SecretString;

/// The folder `deskie run` keeps its generated secrets in (`DESKIE_DATA_DIR`, default `.deskie`).
#[derive(Debug, Clone)]
pub struct DataDir(pub PathBuf);

impl DataDir {
    /// From `DESKIE_DATA_DIR`, else `./.deskie`.
    pub fn from_env() -> Self {
        Self(
            std::env::var_os("DESKIE_DATA_DIR")
                .map_or_else(|| PathBuf::from(".deskie"), PathBuf::from),
        )
    }
}

/// Fills in a missing admin token and encryption key from the data folder, generating and
/// saving them (mode 0600) on first start. Returns human-readable notes of what it did,
/// for the operator; the admin token is printed once, when it is made.
pub fn fill_generated_secrets(
    settings: &mut Settings,
    data: &DataDir,
) -> anyhow::Result<Vec<String>> {
    let mut notes = Vec::new();
    std::fs::create_dir_all(&data.0)
        .with_context(|| format!("cannot create data folder {}", data.0.display()))?;
    if settings.encryption_key.is_none() {
        let path = data.0.join("encryption-key");
        let (key, made) = read_or_create(&path, Cipher::generate_encoded_key)?;
        settings.encryption_key = Some(
            Cipher::from_encoded_key(&key)
                .with_context(|| format!("{} does not hold a valid key", path.display()))?,
        );
        if made {
            notes.push(format!(
                "generated DESKIE_ENCRYPTION_KEY into {} — back it up: without it, stored secrets cannot be read",
                path.display()
            ));
        }
    }
    if settings.admin_token.is_none() {
        let path = data.0.join("admin-token");
        let (token, made) = read_or_create(&path, || {
            let mut bytes = [0u8; 24];
            rand::thread_rng().fill_bytes(&mut bytes);
            format!("dka_{}", hex::encode(bytes))
        })?;
        if made {
            notes.push(format!(
                "generated admin token (saved in {}): {token}",
                path.display()
            ));
        } else {
            notes.push(format!("admin token read from {}", path.display()));
        }
        settings.admin_token = Some(SecretString::from(token));
    }
    Ok(notes)
}

fn read_or_create(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<(String, bool)> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim().to_owned();
        if !existing.is_empty() {
            return Ok((existing, false));
        }
    }
    let value = make();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(file, "{value}")?;
    Ok((value, true))
}
