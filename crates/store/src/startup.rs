//! What every service binary does before it serves, written once: PostgreSQL (the database
//! created if missing, as `DESKIE_DATABASE_URL` promises, and the migrations applied) and
//! NATS, with errors that name the variable to fix.

use deskie_bus::{Bus, BusError, Topology};
use deskie_telemetry::ops::OpsEndpoints;

use crate::{Store, StoreError};

/// The store and the bus a service runs on.
pub struct Backing {
    /// PostgreSQL, migrated.
    pub store: Store,
    /// NATS JetStream under the service's client name.
    pub bus: Bus,
    /// Whether this start created the database (a first start).
    pub created_database: bool,
}

/// Why a service could not start; each names what to check.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// PostgreSQL is unreachable, or the database could not be created or opened.
    #[error("DESKIE_DATABASE_URL: cannot reach PostgreSQL or create the database: {0}")]
    Database(StoreError),
    /// A migration failed (the database is left as the failed migration found it).
    #[error("applying the database migrations: {0}")]
    Migrations(StoreError),
    /// The NATS URL is unusable (an unreachable server is retried in the background instead).
    #[error("DESKIE_NATS_URL: cannot connect to NATS: {0}")]
    Bus(BusError),
}

impl Backing {
    /// Creates the database if missing, connects and migrates it, then connects to NATS as
    /// `client_name` (e.g. `deskie-routing`, what NATS monitoring shows) with `topology`
    /// (binaries pass [`Topology::configured`], so every process provisions the same stream
    /// limits; a bare prefix means the default limits).
    /// Appends are limited to events NATS can carry ([`Bus::max_message_bytes`], the
    /// default 1 MiB when NATS was not reachable yet).
    pub async fn open(
        database_url: &str,
        nats_url: &str,
        topology: impl Into<Topology>,
        client_name: &str,
    ) -> Result<Self, StartupError> {
        let created_database = Store::create_database_if_missing(database_url)
            .await
            .map_err(StartupError::Database)?;
        let store = Store::connect_as(database_url, client_name)
            .await
            .map_err(StartupError::Database)?;
        store.migrate().await.map_err(StartupError::Migrations)?;
        let bus = Bus::connect(nats_url, topology.into(), client_name)
            .await
            .map_err(StartupError::Bus)?;
        let store = store.with_max_message_bytes(bus.max_message_bytes());
        Ok(Self {
            store,
            bus,
            created_database,
        })
    }
}

/// `/readyz` and `/metrics` of a service that consumes from NATS and writes PostgreSQL: ready
/// while the NATS connection is up and the database answers; `metrics` renders the page.
pub fn consumer_endpoints(
    bus: &Bus,
    store: &Store,
    metrics: impl Fn() -> String + Send + Sync + 'static,
) -> OpsEndpoints {
    let (bus, store) = (bus.clone(), store.clone());
    OpsEndpoints::new(
        move || {
            let (nats, store) = (bus.is_connected(), store.clone());
            async move { [("nats", nats), ("database", store.ping().await)] }
        },
        metrics,
    )
}
