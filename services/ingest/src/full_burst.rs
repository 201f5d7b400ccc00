//! A burst of webhooks refused because the webhook stream is full: logged once when it
//! starts (error) and once when it ends (warn), however many webhooks it refused.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the refusals of the current burst; zero while the stream takes webhooks.
#[derive(Debug, Default)]
pub(crate) struct FullBurst {
    refused: AtomicU64,
}

impl FullBurst {
    /// A webhook was refused because the stream is full; `reason` is the server's answer.
    pub fn refused(&self, reason: &str) {
        if self.refused.fetch_add(1, Ordering::AcqRel) == 0 {
            tracing::error!(
                reason,
                "the webhook stream is full: webhooks are answered 503 until old ones expire \
                 or DESKIE_NATS_WEBHOOKS_MAX_BYTES is raised (docs/operations.md)"
            );
        }
    }

    /// A webhook was stored: ends the burst, if there was one.
    pub fn stored(&self) {
        if self.refused.load(Ordering::Acquire) == 0 {
            return;
        }
        let refused = self.refused.swap(0, Ordering::AcqRel);
        if refused > 0 {
            tracing::warn!(
                refused,
                "the webhook stream takes webhooks again after refusing some as full"
            );
        }
    }

    /// Whether the last publish found the stream full.
    pub fn is_full(&self) -> bool {
        self.refused.load(Ordering::Acquire) > 0
    }
}
