//! One case event in: the case brought up to the event store.

use deskie_bus::consumer::{Delivery, Handler, HandlerError};
use deskie_store::case_consumer::case_event_of;
use deskie_store::read_models::cases;
use deskie_store::{Store, StoreError};

use crate::ProjectorMetrics;

/// The projector's handler: decode, then [`cases::catch_up`] in a transaction of its own.
#[derive(Debug, Clone)]
pub struct ProjectCases {
    store: Store,
    metrics: ProjectorMetrics,
}

/// What became of one event.
enum Outcome {
    Applied(u64),
    AlreadyApplied,
    Ignored,
}

impl ProjectCases {
    /// A handler writing through `store`, counting into `metrics`.
    pub fn new(store: Store, metrics: ProjectorMetrics) -> Self {
        Self { store, metrics }
    }

    async fn project(&self, delivery: &Delivery) -> Result<Outcome, HandlerError> {
        let Some((case_id, envelope)) = case_event_of(delivery)? else {
            return Ok(Outcome::Ignored);
        };
        // Most events were already projected by their writer, in its own transaction: a
        // plain read settles those without taking the row lock writers wait on.
        let stored: Option<i64> = sqlx::query_scalar("SELECT version FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| store_error(e.into()))?;
        if stored.is_some_and(|v| u64::try_from(v).unwrap_or(0) >= envelope.version) {
            return Ok(Outcome::AlreadyApplied);
        }
        let mut tx = self
            .store
            .pool()
            .begin()
            .await
            .map_err(|e| store_error(e.into()))?;
        let applied = cases::catch_up(&mut tx, case_id)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(|e| store_error(e.into()))?;
        Ok(if applied > 0 {
            Outcome::Applied(applied)
        } else {
            Outcome::AlreadyApplied
        })
    }
}

impl Handler for ProjectCases {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let outcome = self.project(delivery).await;
        self.metrics.count(match &outcome {
            Ok(Outcome::Applied(_)) => "applied",
            Ok(Outcome::AlreadyApplied) => "already_applied",
            Ok(Outcome::Ignored) => "ignored",
            Err(HandlerError::Retry { .. }) => "retried",
            Err(HandlerError::Unavailable { .. }) => "unavailable",
            Err(HandlerError::Poison { .. }) => "poison",
        });
        if let Ok(Outcome::Applied(applied)) = &outcome {
            tracing::debug!(applied, "case projected");
        }
        outcome.map(|_| ())
    }
}

fn store_error(error: StoreError) -> HandlerError {
    error.into()
}
