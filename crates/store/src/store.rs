//! The connection pool, database creation and migrations.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

/// Errors of the store. Domain refusals (a version conflict) are kept apart from
/// infrastructure failures, so callers can retry the one and report the other.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else appended to the stream first.
    #[error("stream {stream_id} is at version {actual}, expected {expected}")]
    VersionConflict {
        /// The stream.
        stream_id: uuid::Uuid,
        /// What the caller decided against.
        expected: u64,
        /// What is stored.
        actual: u64,
    },
    /// A stored payload cannot be decoded (corruption or an incompatible writer).
    #[error("stored event {event_id} cannot be decoded: {reason}")]
    Corrupt {
        /// The event.
        event_id: uuid::Uuid,
        /// Why.
        reason: String,
    },
    /// The event's encoded envelope is larger than NATS accepts, so the relay could never
    /// publish it: refused at append, before anything is written.
    #[error(
        "event {event_type} of stream {stream_id} is {size} bytes encoded, more than the {limit} \
         bytes an event may have (NATS max_payload less room for headers); it could never be published"
    )]
    EventTooLarge {
        /// The event's type name, e.g. `message_received`.
        event_type: &'static str,
        /// The stream it was meant for.
        stream_id: uuid::Uuid,
        /// The encoded envelope's size in bytes.
        size: usize,
        /// The largest envelope allowed ([`Store::max_event_bytes`]).
        limit: usize,
    },
    /// A case was written through a transaction that did not lock it (a caller's mistake:
    /// [`crate::case_stream::CaseBatch`] writes only the cases it opened).
    #[error("case {case_id} is not locked by this transaction")]
    CaseNotLocked {
        /// The case.
        case_id: uuid::Uuid,
    },
    /// The database URL is unusable.
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// PostgreSQL failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether retrying later may succeed (the database was unreachable or busy).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::VersionConflict { .. } => true,
            Self::Database(error) => is_outage(error),
            Self::Corrupt { .. }
            | Self::EventTooLarge { .. }
            | Self::CaseNotLocked { .. }
            | Self::BadUrl(_)
            | Self::Migration(_) => false,
        }
    }
}

/// A database error that says the database (or the way to it) is away or busy, not that
/// the statement is wrong: connection failures, an exhausted pool, and the SQLSTATEs of
/// a server shutting down or starting, out of connections, or asking for a retry
/// (serialization failure, deadlock, lock timeout).
fn is_outage(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            let code = code.as_ref();
            code.starts_with("08") // connection exception
                || code.starts_with("53") // insufficient resources (too many connections)
                || code.starts_with("57P") // admin / crash shutdown, cannot connect now
                || matches!(code, "40001" | "40P01" | "55P03")
        }),
        _ => false,
    }
}

/// How a consumer treats a store failure: a stored event that does not decode will not
/// decode later either (poison); an outage is waited out in place; anything else may pass
/// and spends a delivery.
impl From<StoreError> for deskie_bus::consumer::HandlerError {
    fn from(error: StoreError) -> Self {
        match error {
            // An event that does not decode, or could never be published, will not pass later.
            StoreError::Corrupt { .. } | StoreError::EventTooLarge { .. } => Self::Poison {
                reason: error.to_string(),
            },
            error if error.is_transient() => Self::Unavailable {
                reason: error.to_string(),
            },
            error => Self::Retry {
                reason: error.to_string(),
                after: None,
            },
        }
    }
}

/// The PostgreSQL system of record.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    url: String,
    max_event_bytes: usize,
}

impl Store {
    /// Connects to `url` (without creating the database), as `deskie`. Sessions carry short
    /// server-side keepalives and an idle-transaction timeout ([`crate::session`]); events
    /// are limited to what NATS's default `max_payload` carries until
    /// [`Store::with_max_message_bytes`] says otherwise.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_as(url, "deskie").await
    }

    /// Connects to `url` with `application_name` set to `name`, so an operator (and
    /// `deskie replay`) sees in `pg_stat_activity` which process holds which session.
    pub async fn connect_as(url: &str, name: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .parse::<PgConnectOptions>()
            .map_err(|e: sqlx::Error| StoreError::BadUrl(e.to_string()))?
            .application_name(name);
        let pool = PgPoolOptions::new()
            .max_connections(24)
            // Also bounds the liveness ping of a pooled connection: a dead one is noticed here.
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(|conn, _| Box::pin(crate::session::fill_in_defaults(conn)))
            .connect_lazy_with(
                crate::session::pooled(options).log_statements(tracing::log::LevelFilter::Trace),
            );
        Ok(Self {
            pool,
            url: url.to_owned(),
            max_event_bytes: crate::event_limit::envelope_limit(
                deskie_bus::Bus::DEFAULT_MAX_MESSAGE_BYTES,
            ),
        })
    }

    /// Limits events to what fits a NATS message of `max_message_bytes`, headers included
    /// (what [`deskie_bus::Bus::max_message_bytes`] reports): an append of a larger event
    /// fails with [`StoreError::EventTooLarge`] instead of wedging the relay.
    pub fn with_max_message_bytes(mut self, max_message_bytes: usize) -> Self {
        self.max_event_bytes = crate::event_limit::envelope_limit(max_message_bytes);
        self
    }

    /// The largest encoded envelope an append accepts.
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// Creates the database named in `url` when it does not exist yet.
    pub async fn create_database_if_missing(url: &str) -> Result<bool, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| StoreError::BadUrl(e.to_string()))?;
        let name = options
            .get_database()
            .ok_or_else(|| StoreError::BadUrl("no database name".into()))?
            .to_owned();
        let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_optional(&mut admin)
                .await?;
        if exists.is_some() {
            return Ok(false);
        }
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let created = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .execute(&mut admin)
            .await;
        match created {
            Ok(_) => Ok(true),
            // Another process created it meanwhile.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies the embedded migrations (idempotent; safe to race).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    /// The pool, for read models and adapters.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The URL, for components that need a dedicated session (the relay's leader lock).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}
