//! A worker loop's doorbell: whoever queued work for it in a transaction rings after the
//! commit, so the loop looks at once instead of at its next poll.

use std::sync::Arc;

use tokio::sync::Notify;

/// Wakes one worker loop (the customer-edit sender, the visitor fetch loop).
#[derive(Debug, Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    /// Wakes the loop; call after the commit (before it, the new row is not visible). A
    /// wake while the loop is busy is kept for its next wait.
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Returns once woken.
    pub(crate) async fn notified(&self) {
        self.0.notified().await;
    }
}
