//! `retention_pruned_rows_total{table}`, in a registry of its own.

use prometheus::{IntCounterVec, Opts, Registry};

/// Rows the retention job deleted, per table.
#[derive(Debug, Clone)]
pub struct RetentionMetrics {
    registry: Registry,
    pruned: IntCounterVec,
}

impl RetentionMetrics {
    /// Registers the counter.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let pruned = IntCounterVec::new(
            Opts::new(
                "retention_pruned_rows_total",
                "Rows the retention job deleted, by table",
            ),
            &["table"],
        )?;
        registry.register(Box::new(pruned.clone()))?;
        Ok(Self { registry, pruned })
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        deskie_telemetry::metrics::render(&self.registry)
    }

    /// Rows deleted from `table` so far (for tests and logs).
    pub fn pruned(&self, table: &str) -> u64 {
        self.pruned.with_label_values(&[table]).get()
    }

    pub(super) fn count(&self, table: &str, rows: u64) {
        self.pruned.with_label_values(&[table]).inc_by(rows);
    }
}
