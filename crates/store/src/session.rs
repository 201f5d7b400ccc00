//! The settings every PostgreSQL session of ours starts with, sent in the startup packet's
//! `options` (`-c name=value`), so they hold from the first statement on any connection.
//!
//! **Noticing a dead peer.** sqlx 0.9 opens its socket itself and offers no hook to set
//! client-side `SO_KEEPALIVE`/`TCP_USER_TIMEOUT` (and this workspace forbids the `unsafe`
//! needed to reach the descriptor). What matters most after a network cut is that the
//! *server* ends the cut-off session — that frees the relay's leader lock, the stream locks
//! and the open transaction that holds the relay's horizon — so each session asks the server
//! for short keepalives: probing after [`KEEPALIVE_IDLE_SECS`] of silence, every
//! [`KEEPALIVE_INTERVAL_SECS`], giving up after [`KEEPALIVE_COUNT`] unanswered probes
//! (≈ 11 s; `reference/scale-out.md` §2.5 measured 3.3 s with 2/1/2 against the default's two
//! hours), and `tcp_user_timeout` for data the client never acknowledges. The client side
//! notices through deadlines instead: the pool's `acquire_timeout` covers its liveness ping,
//! the relay bounds every statement on its leader session ([`crate::relay`]), and NATS
//! connections ping (`deskie_bus::Bus::connect`).
//!
//! **Timeouts** (`reference/reliability.md` §3.4): `idle_in_transaction_session_timeout`
//! (30 s) ends a leaked transaction, which would otherwise hold locks and the relay. It is
//! set only where the server, database or role leaves it off ([`fill_in_defaults`]), so a
//! stricter value configured there (compose's 30 s, the tests' 10 s) stays in force. A
//! blanket `statement_timeout`/`lock_timeout` is *not* set on the pool: migrations and
//! `deskie replay` legitimately run long statements and wait on sqlx's migration lock, and
//! the stream lock's wait is the designed way two writers of a case take turns.
//!
//! A value the operator put in `DESKIE_DATABASE_URL`'s `options` wins: it is kept and ours is
//! not added.

use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::PgConnectOptions;

/// Seconds of silence before the server probes the client.
pub const KEEPALIVE_IDLE_SECS: u64 = 5;
/// Seconds between probes.
pub const KEEPALIVE_INTERVAL_SECS: u64 = 2;
/// Unanswered probes before the server drops the session.
pub const KEEPALIVE_COUNT: u64 = 3;
/// How long data the server sent may stay unacknowledged before it drops the session.
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a session may sit idle inside a transaction.
pub const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What every pooled session gets: short server-side keepalives.
pub(crate) fn pooled(options: PgConnectOptions) -> PgConnectOptions {
    with_settings(options, &base_settings())
}

/// A dedicated session (the relay's leader lock): the pool's settings plus
/// `statement_timeout`, so a statement the server cannot finish fails instead of stalling.
pub(crate) fn dedicated(
    options: PgConnectOptions,
    application_name: &str,
    statement_timeout: Duration,
) -> PgConnectOptions {
    let mut settings = base_settings();
    settings.push(("statement_timeout", millis(statement_timeout)));
    with_settings(options, &settings).application_name(application_name)
}

fn base_settings() -> Vec<(&'static str, String)> {
    vec![
        ("tcp_keepalives_idle", KEEPALIVE_IDLE_SECS.to_string()),
        (
            "tcp_keepalives_interval",
            KEEPALIVE_INTERVAL_SECS.to_string(),
        ),
        ("tcp_keepalives_count", KEEPALIVE_COUNT.to_string()),
        ("tcp_user_timeout", millis(TCP_USER_TIMEOUT)),
    ]
}

/// Sets [`IDLE_IN_TRANSACTION_TIMEOUT`] on a new session when nothing configured one (it is
/// `0`); one statement, once per connection.
pub(crate) async fn fill_in_defaults(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT set_config('idle_in_transaction_session_timeout', $1, false)
          WHERE current_setting('idle_in_transaction_session_timeout') = '0'",
    )
    .bind(millis(IDLE_IN_TRANSACTION_TIMEOUT))
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds each setting the URL's own `options` does not already name.
fn with_settings(options: PgConnectOptions, settings: &[(&str, String)]) -> PgConnectOptions {
    let given = options.get_options().unwrap_or_default().to_owned();
    let missing: Vec<(&str, &String)> = settings
        .iter()
        .filter(|(name, _)| !given.contains(&format!("{name}=")))
        .map(|(name, value)| (*name, value))
        .collect();
    if missing.is_empty() {
        options
    } else {
        options.options(missing)
    }
}

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_session_gets_short_keepalives() {
        let options: PgConnectOptions = "postgres://u@h/db".parse().expect("url");
        let sent = pooled(options).get_options().unwrap_or_default().to_owned();
        for expected in [
            "-c tcp_keepalives_idle=5",
            "-c tcp_keepalives_interval=2",
            "-c tcp_keepalives_count=3",
            "-c tcp_user_timeout=10000",
        ] {
            assert!(sent.contains(expected), "{expected} missing from {sent}");
        }
        assert!(!sent.contains("statement_timeout="), "{sent}");
    }

    #[test]
    fn an_operators_own_value_wins() {
        let options: PgConnectOptions = "postgres://u@h/db?options=-c%20tcp_keepalives_idle%3D60"
            .parse()
            .expect("url");
        let sent = pooled(options).get_options().unwrap_or_default().to_owned();
        assert_eq!(sent.matches("tcp_keepalives_idle=").count(), 1, "{sent}");
        assert!(sent.contains("tcp_keepalives_idle=60"), "{sent}");
        assert!(sent.contains("tcp_keepalives_count=3"), "{sent}");
    }

    #[test]
    fn a_dedicated_session_bounds_its_statements_and_names_itself() {
        let options: PgConnectOptions = "postgres://u@h/db".parse().expect("url");
        let options = dedicated(options, "deskie-relay", Duration::from_secs(10));
        let sent = options.get_options().unwrap_or_default();
        assert!(sent.contains("-c statement_timeout=10000"), "{sent}");
        assert_eq!(options.get_application_name(), Some("deskie-relay"));
    }
}
