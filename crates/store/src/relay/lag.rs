//! How far behind the relay is, and who to blame when it stays behind.
//!
//! The leader measures its lag about once a second: the committed events past its
//! checkpoint and the age of the oldest of them (from its `recorded_at`, taken when it was
//! appended, so a long writing transaction counts from its append). When events have waited
//! longer than [`LagWatch`]'s threshold it logs, at most every so often, the sessions of
//! this database that hold the horizon back (`pg_stat_activity`) and the last publish
//! error, so a stall is never silent.

use std::time::{Duration, Instant};

use sqlx::{PgConnection, Row};

use crate::StoreError;

/// The relay's lag at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lag {
    /// Committed events past the checkpoint.
    pub unpublished: i64,
    /// Seconds since the oldest of them was appended; 0 when there is none.
    pub oldest_age_secs: f64,
}

/// Measures the lag past the checkpoint `(last_tx, last_seq)`.
pub(super) async fn measure(
    conn: &mut PgConnection,
    last_tx: &str,
    last_seq: i64,
) -> Result<Lag, StoreError> {
    let row = sqlx::query(
        "SELECT count(*) AS unpublished,
                COALESCE(EXTRACT(EPOCH FROM now() - min(recorded_at))::float8, 0) AS oldest_age
           FROM events
          WHERE (tx_id, seq) > ($1::text::xid8, $2)",
    )
    .bind(last_tx)
    .bind(last_seq)
    .fetch_one(conn)
    .await?;
    Ok(Lag {
        unpublished: row.try_get("unpublished")?,
        oldest_age_secs: row.try_get::<f64, _>("oldest_age")?.max(0.0),
    })
}

/// A session (or prepared transaction) of this database with a transaction id: what holds
/// the horizon, oldest first.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Holder {
    /// Backend pid (none for a prepared transaction).
    pub pid: Option<i32>,
    /// Database.
    pub datname: Option<String>,
    /// `application_name` (`prepared: <gid>` for a prepared transaction).
    pub application_name: Option<String>,
    /// `active`, `idle in transaction`, … (`prepared`).
    pub state: Option<String>,
    /// Its transaction id.
    pub xid: Option<String>,
    /// Seconds since its transaction started.
    #[sqlx(rename = "xact_age")]
    pub xact_age_secs: Option<f64>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        write!(
            f,
            "pid={} datname={} application_name={:?} state={} xid={} xact_age={:.1}s",
            self.pid.map_or_else(|| "-".into(), |p| p.to_string()),
            or_dash(&self.datname),
            or_dash(&self.application_name),
            or_dash(&self.state),
            or_dash(&self.xid),
            self.xact_age_secs.unwrap_or(0.0),
        )
    }
}

/// The oldest transactions of this database that have an id (at most five).
pub async fn holders(conn: &mut PgConnection) -> Result<Vec<Holder>, StoreError> {
    let holders = sqlx::query_as::<_, Holder>(
        "SELECT pid, datname::text AS datname, application_name, state,
                backend_xid::text AS xid,
                EXTRACT(EPOCH FROM now() - xact_start)::float8 AS xact_age
           FROM pg_stat_activity
          WHERE backend_xid IS NOT NULL
            AND datid = (SELECT oid FROM pg_database WHERE datname = current_database())
         UNION ALL
         SELECT NULL, database::text, 'prepared: ' || gid, 'prepared', transaction::text,
                EXTRACT(EPOCH FROM now() - prepared)::float8
           FROM pg_prepared_xacts
          WHERE database = current_database()
         ORDER BY xact_age DESC NULLS LAST
         LIMIT 5",
    )
    .fetch_all(conn)
    .await?;
    Ok(holders)
}

/// When to measure the lag and when to warn about it.
#[derive(Debug)]
pub(super) struct LagWatch {
    measure_every: Duration,
    warn_after: Duration,
    warn_every: Duration,
    last_measured: Option<Instant>,
    last_warned: Option<Instant>,
}

impl LagWatch {
    /// Measures every `measure_every`; warns when events waited longer than `warn_after`,
    /// at most once per `warn_every`.
    pub(super) fn new(measure_every: Duration, warn_after: Duration, warn_every: Duration) -> Self {
        Self {
            measure_every,
            warn_after,
            warn_every,
            last_measured: None,
            last_warned: None,
        }
    }

    /// Whether a measurement is due now (and, if so, counts it as taken).
    pub(super) fn measure_due(&mut self) -> bool {
        let due = self
            .last_measured
            .is_none_or(|at| at.elapsed() >= self.measure_every);
        if due {
            self.last_measured = Some(Instant::now());
        }
        due
    }

    /// Whether `lag` deserves a warning now (and, if so, counts it as given).
    pub(super) fn warn_due(&mut self, lag: &Lag) -> bool {
        let waiting = lag.unpublished > 0
            && Duration::try_from_secs_f64(lag.oldest_age_secs)
                .is_ok_and(|age| age >= self.warn_after);
        let due = waiting
            && self
                .last_warned
                .is_none_or(|at| at.elapsed() >= self.warn_every);
        if due {
            self.last_warned = Some(Instant::now());
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag(unpublished: i64, oldest_age_secs: f64) -> Lag {
        Lag {
            unpublished,
            oldest_age_secs,
        }
    }

    #[test]
    fn warns_only_about_events_that_waited_and_not_on_every_poll() {
        let mut watch = LagWatch::new(
            Duration::from_secs(1),
            Duration::from_secs(5),
            Duration::from_secs(3600),
        );
        assert!(!watch.warn_due(&lag(0, 0.0)), "nothing waits");
        assert!(!watch.warn_due(&lag(3, 1.0)), "not long enough");
        assert!(!watch.warn_due(&lag(0, 60.0)), "no event waits");
        assert!(watch.warn_due(&lag(3, 6.0)));
        assert!(!watch.warn_due(&lag(3, 7.0)), "rate limited");
    }

    #[test]
    fn the_first_measurement_is_due_at_once_then_not_before_the_interval() {
        let mut watch = LagWatch::new(
            Duration::from_secs(3600),
            Duration::from_secs(5),
            Duration::from_secs(30),
        );
        assert!(watch.measure_due());
        assert!(!watch.measure_due());
    }
}
