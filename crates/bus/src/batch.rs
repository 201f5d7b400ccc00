//! Group commit: the deliveries a runner handles at once are gathered into batches, each
//! handled together (one transaction) by a [`BatchHandler`].
//!
//! A [`Handler`](crate::consumer::Handler) checks what it can alone (decode, parse), then
//! [`Batcher::submit`]s the item and waits for its batch's outcome; the runner's ack, retry
//! and dead-letter rules stay as they are, per delivery. No timer waits for a batch to
//! fill: a worker takes whatever is queued when it becomes free (at most `max_batch`), so
//! under light load a batch is one item with no added latency, and under heavy load the
//! batches grow while the workers are busy.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::consumer::HandlerError;

/// Handles items together.
pub trait BatchHandler: Send + Sync + 'static {
    /// What one delivery hands over.
    type Item: Send + 'static;
    /// What one delivery gets back when its item was handled.
    type Output: Send + 'static;

    /// Handles `items`; one outcome per item, in their order.
    fn handle_batch(
        &self,
        items: Vec<Self::Item>,
    ) -> impl Future<Output = Vec<Result<Self::Output, HandlerError>>> + Send;
}

/// The receiving end of the queue, shared by the workers.
type SharedQueue<I, O> = Arc<Mutex<mpsc::UnboundedReceiver<Job<I, O>>>>;

/// One submitted item and where its outcome goes.
struct Job<I, O> {
    item: I,
    outcome: oneshot::Sender<Result<O, HandlerError>>,
}

/// The queue in front of a [`BatchHandler`]'s workers. Cloning shares it; the workers stop
/// once every clone is dropped and the queue is empty.
pub struct Batcher<I, O = ()> {
    queue: mpsc::UnboundedSender<Job<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<I, O> std::fmt::Debug for Batcher<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts `workers` workers running `handler` on batches of at most `max_batch` items.
    /// The queue is unbounded: what bounds it is the runner's concurrency, since each
    /// submitter waits for its outcome.
    pub fn start<H: BatchHandler<Item = I, Output = O>>(
        handler: H,
        workers: usize,
        max_batch: usize,
    ) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let handler = Arc::new(handler);
        for _ in 0..workers.max(1) {
            tokio::spawn(work(handler.clone(), receiver.clone(), max_batch.max(1)));
        }
        Self { queue }
    }

    /// Queues `item` and waits for the outcome of the batch it went in.
    pub async fn submit(&self, item: I) -> Result<O, HandlerError> {
        let (outcome, receiver) = oneshot::channel();
        let stopped = || HandlerError::Retry {
            reason: "the batch workers stopped".to_owned(),
            after: None,
        };
        self.queue
            .send(Job { item, outcome })
            .map_err(|_| stopped())?;
        receiver.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// One worker: takes the next item and whatever else is queued (up to `max_batch`), hands
/// them over together, and reports each outcome.
async fn work<H: BatchHandler>(
    handler: Arc<H>,
    receiver: SharedQueue<H::Item, H::Output>,
    max_batch: usize,
) {
    loop {
        let mut jobs = Vec::new();
        {
            let mut receiver = receiver.lock().await;
            if receiver.recv_many(&mut jobs, max_batch).await == 0 {
                return;
            }
        }
        let (items, outcomes): (Vec<_>, Vec<_>) =
            jobs.into_iter().map(|job| (job.item, job.outcome)).unzip();
        let expected = items.len();
        let mut results = handler.handle_batch(items).await.into_iter();
        for outcome in outcomes {
            let result = results.next().unwrap_or_else(|| {
                Err(HandlerError::Retry {
                    reason: format!(
                        "the batch handler gave fewer outcomes than its {expected} items"
                    ),
                    after: None,
                })
            });
            // The submitter may have gone (shutdown); its delivery is then redelivered.
            let _ = outcome.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Records the size of every batch; fails items equal to 13.
    #[derive(Clone)]
    struct Sizes {
        sizes: Arc<std::sync::Mutex<Vec<usize>>>,
        gate: Arc<tokio::sync::Semaphore>,
        calls: Arc<AtomicUsize>,
    }

    impl BatchHandler for Sizes {
        type Item = u32;
        type Output = ();

        async fn handle_batch(&self, items: Vec<u32>) -> Vec<Result<(), HandlerError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Ok(permit) = self.gate.acquire().await {
                permit.forget();
            }
            if let Ok(mut sizes) = self.sizes.lock() {
                sizes.push(items.len());
            }
            items
                .into_iter()
                .map(|item| {
                    if item == 13 {
                        Err(HandlerError::Poison {
                            reason: "thirteen".to_owned(),
                        })
                    } else {
                        Ok(())
                    }
                })
                .collect()
        }
    }

    /// One worker over [`Sizes`] with batches of at most `max_batch`, and a handle on what
    /// it records; the gate starts shut.
    fn sized(max_batch: usize) -> (Batcher<u32>, Sizes) {
        let handler = Sizes {
            sizes: Arc::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
            calls: Arc::default(),
        };
        (Batcher::start(handler.clone(), 1, max_batch), handler)
    }

    #[tokio::test]
    async fn items_queued_while_the_worker_is_busy_go_in_one_batch_each_with_its_own_outcome() {
        let (batcher, Sizes { sizes, gate, calls }) = sized(64);
        // The first item holds the one worker (at the gate) while the next ten queue.
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.submit(1).await }
        });
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // `join!` polls the submissions first, which queues all ten, and only then lets
        // the worker go.
        let (outcomes, ()) = tokio::join!(
            futures::future::join_all((10..20).map(|item| batcher.submit(item))),
            async { gate.add_permits(2) },
        );
        assert!(matches!(first.await, Ok(Ok(()))));
        for (item, outcome) in (10..20).zip(outcomes) {
            match item {
                13 => assert!(matches!(outcome, Err(HandlerError::Poison { .. }))),
                _ => assert!(outcome.is_ok(), "item {item}: {outcome:?}"),
            }
        }
        let sizes = sizes.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(sizes, vec![1, 10]);
    }

    #[tokio::test]
    async fn a_batch_never_exceeds_its_limit() {
        let (batcher, Sizes { sizes, gate, .. }) = sized(4);
        let handles: Vec<_> = (0..10)
            .map(|item| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.submit(item).await })
            })
            .collect();
        gate.add_permits(100);
        for handle in handles {
            assert!(matches!(handle.await, Ok(Ok(()))));
        }
        let sizes = sizes.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(sizes.iter().sum::<usize>(), 10);
        assert!(sizes.iter().all(|&size| size <= 4), "{sizes:?}");
    }
}
