//! Case events in: each case brought up to the event store.
//!
//! Deliveries are gathered into batches ([`deskie_bus::batch`]): one read tells which of
//! the batch's cases are behind, and only those are caught up, each in a transaction of its
//! own (a transaction holding one case row at a time cannot deadlock with the writers).

use std::collections::{BTreeMap, HashMap};

use deskie_bus::batch::{BatchHandler, Batcher};
use deskie_bus::consumer::{Delivery, Handler, HandlerError};
use deskie_store::case_consumer::case_event_of;
use deskie_store::read_models::cases;
use deskie_store::{Store, StoreError};
use uuid::Uuid;

use crate::ProjectorMetrics;

/// Batches projected at once.
pub const PROJECTOR_WORKERS: usize = 2;

/// The most events one batch looks at.
pub const MAX_BATCH: usize = 128;

/// The projector's handler: decode, then hand the event to the batch workers.
#[derive(Debug, Clone)]
pub struct ProjectCases {
    batcher: Batcher<(Uuid, u64)>,
    metrics: ProjectorMetrics,
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Applied,
    AlreadyApplied,
}

impl ProjectCases {
    /// A handler writing through `store`, counting into `metrics`. Starts the batch
    /// workers (a Tokio runtime must be running).
    pub fn new(store: Store, metrics: ProjectorMetrics) -> Self {
        let batcher = Batcher::start(
            ProjectBatch {
                store,
                metrics: metrics.clone(),
            },
            PROJECTOR_WORKERS,
            MAX_BATCH,
        );
        Self { batcher, metrics }
    }
}

impl Handler for ProjectCases {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let event = case_event_of(delivery).inspect_err(|e| self.metrics.count(label(e)))?;
        let Some((case_id, envelope)) = event else {
            self.metrics.count("ignored");
            return Ok(());
        };
        self.batcher.submit((case_id, envelope.version)).await
    }
}

/// Projects batches of `(case, version)`.
#[derive(Debug)]
struct ProjectBatch {
    store: Store,
    metrics: ProjectorMetrics,
}

impl ProjectBatch {
    /// Every event of `items` whose case row is behind it, caught up; the outcome per
    /// case.
    async fn project(
        &self,
        items: &[(Uuid, u64)],
    ) -> Result<HashMap<Uuid, Result<Outcome, HandlerError>>, StoreError> {
        let mut wanted: BTreeMap<Uuid, u64> = BTreeMap::new();
        for &(case_id, version) in items {
            let highest = wanted.entry(case_id).or_default();
            *highest = (*highest).max(version);
        }
        let case_ids: Vec<Uuid> = wanted.keys().copied().collect();
        // Most events were already projected by their writer, in its own transaction: a
        // plain read settles those without taking the row locks writers wait on.
        let stored: HashMap<Uuid, i64> =
            sqlx::query_as("SELECT id, version FROM cases WHERE id = ANY($1)")
                .bind(&case_ids)
                .fetch_all(self.store.pool())
                .await?
                .into_iter()
                .collect();
        let mut outcomes = HashMap::new();
        for (case_id, version) in wanted {
            let projected = stored.get(&case_id).copied().unwrap_or(0);
            if u64::try_from(projected).unwrap_or(0) >= version {
                outcomes.insert(case_id, Ok(Outcome::AlreadyApplied));
                continue;
            }
            outcomes.insert(case_id, self.catch_up(case_id).await);
        }
        Ok(outcomes)
    }

    async fn catch_up(&self, case_id: Uuid) -> Result<Outcome, HandlerError> {
        let mut tx = self.store.pool().begin().await.map_err(StoreError::from)?;
        let applied = cases::catch_up(&mut tx, case_id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        if applied > 0 {
            tracing::debug!(%case_id, applied, "case projected");
        }
        Ok(match applied {
            0 => Outcome::AlreadyApplied,
            _ => Outcome::Applied,
        })
    }
}

impl BatchHandler for ProjectBatch {
    type Item = (Uuid, u64);
    type Output = ();

    async fn handle_batch(&self, items: Vec<(Uuid, u64)>) -> Vec<Result<(), HandlerError>> {
        let outcomes = match self.project(&items).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                let error = HandlerError::from(error);
                return items.iter().map(|_| Err(error.clone())).collect();
            }
        };
        items
            .iter()
            .map(|(case_id, _)| {
                let outcome = outcomes
                    .get(case_id)
                    .cloned()
                    .unwrap_or(Ok(Outcome::AlreadyApplied));
                self.metrics.count(match &outcome {
                    Ok(Outcome::Applied) => "applied",
                    Ok(Outcome::AlreadyApplied) => "already_applied",
                    Err(error) => label(error),
                });
                outcome.map(|_| ())
            })
            .collect()
    }
}

fn label(error: &HandlerError) -> &'static str {
    match error {
        HandlerError::Retry { .. } => "retried",
        HandlerError::Unavailable { .. } => "unavailable",
        HandlerError::Poison { .. } => "poison",
    }
}
