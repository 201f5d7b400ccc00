//! The webhook token must never be printed, even if a body quoted it.
//!
//! Ingest does not store the token, so it can only be in a body Chatra sent: say, a message
//! quoting the webhook URL. We do not have the token (only its SHA-256), so every stretch of
//! the token's alphabet of the token's length (read from its sealed copy's length, no key
//! needed) is hashed and compared. Windows, not whole words: in a JSON string the token may
//! be glued to an escape (`\ntoken` reads as `ntoken`) or a percent-encoding (`%2Ftoken`).

use std::ops::RangeInclusive;

use deskie_config::Cipher;
use sha2::{Digest, Sha256};

/// What replaces the webhook token wherever it shows up in a body.
pub const TOKEN_REMOVED: &str = "[webhook token removed]";

/// Token lengths tried when the sealed copy does not tell (it is not one `Cipher` made).
const ANY_TOKEN_LENGTH: RangeInclusive<usize> = 16..=64;

/// Finds one integration's webhook token in text, knowing only its hash.
#[derive(Debug, Clone)]
pub struct TokenGuard {
    sha256: Vec<u8>,
    lengths: RangeInclusive<usize>,
}

impl TokenGuard {
    /// For the token whose SHA-256 is `sha256` and whose encrypted copy is `sealed`.
    pub fn new(sha256: Vec<u8>, sealed: &[u8]) -> Self {
        let lengths = match Cipher::sealed_len(sealed) {
            Some(len) if len > 0 => len..=len,
            _ => ANY_TOKEN_LENGTH,
        };
        Self { sha256, lengths }
    }

    /// `text` with the token replaced by [`TOKEN_REMOVED`] wherever it stands.
    pub fn scrub(&self, text: &str) -> String {
        let is_token_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find(is_token_char) {
            out.push_str(&rest[..start]);
            let run_and_after = &rest[start..];
            let end = run_and_after
                .find(|c: char| !is_token_char(c))
                .unwrap_or(run_and_after.len());
            self.scrub_run(&run_and_after[..end], &mut out);
            rest = &run_and_after[end..];
        }
        out.push_str(rest);
        out
    }

    /// Appends `run` (token characters only, so ASCII) with every window that is the token
    /// replaced.
    fn scrub_run(&self, run: &str, out: &mut String) {
        let (mut at, mut copied) = (0, 0);
        while at < run.len() {
            let token_here = self
                .lengths
                .clone()
                .filter(|len| at + len <= run.len())
                .find(|len| {
                    Sha256::digest(&run.as_bytes()[at..at + len]).as_slice() == self.sha256
                });
            match token_here {
                Some(len) => {
                    out.push_str(&run[copied..at]);
                    out.push_str(TOKEN_REMOVED);
                    at += len;
                    copied = at;
                }
                None => at += 1,
            }
        }
        out.push_str(&run[copied..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "AbC-_dEf0123456789xyzXYZ0123456789abcdefghi";

    fn guards() -> [TokenGuard; 2] {
        let sha256 = Sha256::digest(TOKEN.as_bytes()).to_vec();
        let sealed = Cipher::from_key_bytes(&[3; 32]).encrypt(TOKEN.as_bytes());
        [
            TokenGuard::new(sha256.clone(), &sealed),
            TokenGuard::new(sha256, b"not sealed"),
        ]
    }

    #[test]
    fn the_token_is_removed_wherever_it_stands_and_nothing_else_is() {
        let text = format!(
            r#"{{"url":"https://x/webhooks/chatra/1?token={TOKEN}&a=b","t":"{TOKEN}","é":"{TOKEN}","n":"line\n{TOKEN}\t","p":"%2F{TOKEN}{TOKEN}x"}}"#
        );
        let t = TOKEN_REMOVED;
        let expected = format!(
            r#"{{"url":"https://x/webhooks/chatra/1?token={t}&a=b","t":"{t}","é":"{t}","n":"line\n{t}\t","p":"%2F{t}{t}x"}}"#
        );
        for guard in guards() {
            assert_eq!(guard.scrub(&text), expected);
            assert_eq!(guard.scrub("nothing here, é"), "nothing here, é");
            assert_eq!(
                guard.scrub(&TOKEN[1..]),
                &TOKEN[1..],
                "a part is not the token"
            );
        }
    }
}
