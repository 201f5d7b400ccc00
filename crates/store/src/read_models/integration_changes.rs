//! Changes of an integration's webhook credentials, announced with PostgreSQL's
//! `NOTIFY`, so a process that caches them (ingest) can drop its copy at once.
//!
//! The projection ([`super::integrations`]) announces inside the writer's transaction:
//! PostgreSQL delivers a notification only when that transaction commits, and only to a
//! session whose snapshot already sees the commit, so a listener that re-reads after
//! hearing one reads the new row; a rolled-back write announces nothing. Notifications
//! are not durable: one sent while no session listened, or while a listener's session was
//! being replaced, is gone. A cache must therefore serve nothing while it is not listening
//! and forget what it read before it listened again ([`Heard::Lost`]).

use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use uuid::Uuid;

use crate::{Store, StoreError};

/// The channel the projection announces on; the payload is the integration id.
pub const CHANNEL: &str = "deskie_integrations";

/// How long the listening session may take to connect, and a statement on it to finish.
const SESSION_DEADLINE: Duration = Duration::from_secs(5);

/// Announces that integration `id` changed; delivered when the caller's transaction commits.
pub(super) async fn announce(conn: &mut PgConnection, id: Uuid) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// What a listener heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// This integration's credentials may have changed.
    Changed(Uuid),
    /// A notification on [`CHANNEL`] whose payload is no integration id (not ours): any
    /// integration may have changed.
    Unreadable,
    /// The session ended: what was announced since the last notification may be lost.
    /// Listen again with a new [`IntegrationChanges`].
    Lost,
}

/// A session of its own that listens on [`CHANNEL`].
pub struct IntegrationChanges {
    listener: PgListener,
}

impl IntegrationChanges {
    /// Opens a dedicated session named `application_name` (so `pg_stat_activity` shows
    /// who listens) and listens; returns once `LISTEN` is in force, so every change
    /// committed from then on is heard.
    pub async fn listen(store: &Store, application_name: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = store
            .url()
            .parse()
            .map_err(|e: sqlx::Error| StoreError::BadUrl(e.to_string()))?;
        let options = crate::session::dedicated(options, application_name, SESSION_DEADLINE);
        // A pool of one, only so PgListener can own the connection; it never reconnects
        // by itself (the caller decides, after forgetting what it cached).
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(SESSION_DEADLINE)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok(Self { listener })
    }

    /// Waits for the next notification. An error means the same as [`Heard::Lost`].
    pub async fn next(&mut self) -> Result<Heard, StoreError> {
        Ok(match self.listener.try_recv().await? {
            Some(notification) => notification
                .payload()
                .parse()
                .map_or(Heard::Unreadable, Heard::Changed),
            None => Heard::Lost,
        })
    }
}
