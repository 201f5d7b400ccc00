//! Waiting for an effect instead of sleeping: poll until it shows, fail the test naming it
//! when it does not within a liveness bound (not a timing claim).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How long [`eventually`] and [`wait_until`] wait before they fail the test.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(15);

/// How often they look.
const POLL: Duration = Duration::from_millis(20);

/// Polls `probe` until it yields `Some`; panics naming `what` after [`LIVENESS_BOUND`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + LIVENESS_BOUND;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `done` holds (a check without I/O); panics naming `what` after
/// [`LIVENESS_BOUND`].
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    eventually(what, || std::future::ready(done().then_some(()))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn yields_the_first_value_the_probe_finds() {
        let mut looks = 0;
        let found = eventually("the third look", || {
            looks += 1;
            std::future::ready((looks == 3).then_some(looks))
        })
        .await;
        assert_eq!(found, 3);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "timed out waiting for nothing at all")]
    async fn fails_naming_what_never_happened() {
        wait_until("nothing at all", || false).await;
    }
}
