//! The retention job (`deskie_store::retention`) as `deskie run` and `deskie relay` run it:
//! wherever a relay runs, so once per deployment's relay process (several relay processes
//! each prune; deleting the same old rows twice is harmless).

use deskie_config::Settings;
use deskie_store::Store;
use deskie_store::retention::{self, Ages, RetentionMetrics};
use tokio_util::sync::CancellationToken;

/// Prunes the bookkeeping tables at start and every `DESKIE_RETENTION_INTERVAL_SECS` until
/// `shutdown`, with the retentions of `settings`.
pub fn retention_job(
    settings: &Settings,
    store: Store,
    metrics: RetentionMetrics,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    let config = settings.retention;
    let ages = Ages {
        inbox: config.inbox,
        outbox: config.outbox,
        visitor_fetches: config.visitor_fetches,
    };
    tracing::info!(
        inbox_secs = ages.inbox.as_secs(),
        outbox_secs = ages.outbox.as_secs(),
        visitor_fetches_secs = ages.visitor_fetches.as_secs(),
        every_secs = config.interval.as_secs(),
        "retention job: pruning old bookkeeping rows periodically"
    );
    retention::run(store, ages, config.interval, Some(metrics), shutdown)
}
