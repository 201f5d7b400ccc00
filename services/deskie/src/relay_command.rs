//! `deskie relay`: the relay alone, with `/healthz`, `/readyz` and `/metrics` (its lag and
//! leadership) on [`ADDR_VAR`].

use std::net::SocketAddr;

use deskie_config::{ConfigError, Settings};
use deskie_store::relay::{Relay, RelayConfig, RelayMetrics};
use deskie_store::retention::RetentionMetrics;
use deskie_store::startup::{Backing, consumer_endpoints};
use deskie_telemetry::ops;
use tokio_util::sync::CancellationToken;

/// Where `deskie relay` serves its health and metrics.
pub const ADDR_VAR: &str = "DESKIE_RELAY_ADDR";
/// The default of [`ADDR_VAR`].
pub const DEFAULT_ADDR: &str = "127.0.0.1:8086";

/// [`ADDR_VAR`] read through `lookup`.
pub fn addr_from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<SocketAddr, ConfigError> {
    deskie_config::addr_var(lookup, ADDR_VAR, DEFAULT_ADDR)
}

/// Opens the database (created and migrated if needed) and NATS, then relays (and runs the
/// retention job, [`crate::retention_job`]) until `shutdown`, serving the ops endpoints on
/// `addr` meanwhile.
pub async fn run(
    settings: &Settings,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (listener, _port) = ops::bind(addr)?;
    let metrics = RelayMetrics::new()?;
    let retention_metrics = RetentionMetrics::new()?;
    let backing = Backing::open(
        &settings.database_url,
        &settings.nats_url,
        deskie_bus::Topology::configured(settings),
        "deskie-relay",
    )
    .await?;
    let (page, retention_page) = (metrics.clone(), retention_metrics.clone());
    let endpoints = consumer_endpoints(&backing.bus, &backing.store, move || {
        page.render() + &retention_page.render()
    });
    let retention = tokio::spawn(crate::retention_job(
        settings,
        backing.store.clone(),
        retention_metrics,
        shutdown.clone(),
    ));
    let relay = Relay::new(backing.store.url(), backing.bus, RelayConfig::default())
        .with_metrics(metrics)
        .run(shutdown.clone());
    ops::serve_alongside(listener, endpoints, shutdown.cancelled(), relay).await?;
    shutdown.cancel();
    let _ = retention.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_defaults_and_a_bad_one_is_named() {
        let addr = addr_from_lookup(|_| None).expect("default");
        assert_eq!(addr.to_string(), DEFAULT_ADDR);
        let error = addr_from_lookup(|_| Some("nowhere".into())).expect_err("refused");
        assert!(error.to_string().starts_with(ADDR_VAR), "{error}");
    }
}
