//! What the projector needs beyond the shared settings.

use std::net::SocketAddr;

/// Where the projector serves `/healthz`, `/readyz` and `/metrics`, if anywhere.
pub const ADDR_VAR: &str = "DESKIE_PROJECTOR_ADDR";
/// The default of [`ADDR_VAR`] for the `deskie-projector` binary.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8082";

/// The projector's own configuration.
#[derive(Debug, Clone, Default)]
pub struct ProjectorConfig {
    /// Address of the small HTTP server (`/healthz`, `/readyz`, `/metrics`); `None` serves
    /// nothing (as in `deskie run`, which may mount [`crate::ProjectorMetrics`] itself).
    pub http_addr: Option<SocketAddr>,
}

pub use deskie_config::ConfigError;

impl ProjectorConfig {
    /// Reads [`ADDR_VAR`] through `lookup` (default [`DEFAULT_ADDR`]).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let addr = deskie_config::addr_var(lookup, ADDR_VAR, DEFAULT_ADDR)?;
        Ok(Self {
            http_addr: Some(addr),
        })
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_defaults_and_a_bad_one_is_named() {
        let config = ProjectorConfig::from_lookup(|_| None).expect("default");
        assert_eq!(config.http_addr, DEFAULT_ADDR.parse().ok());
        let error = ProjectorConfig::from_lookup(|_| Some("nowhere".into())).expect_err("refused");
        assert!(error.to_string().starts_with(ADDR_VAR), "{error}");
    }
}
