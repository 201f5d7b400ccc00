//! A service's own listening address from its variable.

use std::net::SocketAddr;

use crate::ConfigError;

/// The address in `var` (read through `lookup`), else `default`; a malformed value is an
/// error naming `var`.
pub fn addr_var(
    lookup: impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let raw = lookup(var)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned());
    raw.trim().parse().map_err(|e| ConfigError::Invalid {
        var,
        reason: format!("{e} (expected host:port, e.g. {default})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_applies_and_a_bad_value_is_named() {
        let addr = addr_var(|_| None, "DESKIE_X_ADDR", "127.0.0.1:8085").expect("default");
        assert_eq!(addr.port(), 8085);
        let set = addr_var(
            |_| Some("0.0.0.0:9".into()),
            "DESKIE_X_ADDR",
            "127.0.0.1:8085",
        );
        assert_eq!(set.expect("set").port(), 9);
        let error = addr_var(
            |_| Some("nowhere".into()),
            "DESKIE_X_ADDR",
            "127.0.0.1:8085",
        )
        .expect_err("refused");
        assert!(error.to_string().starts_with("DESKIE_X_ADDR"), "{error}");
    }
}
