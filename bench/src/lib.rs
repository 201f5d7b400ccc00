//! Shared helpers for the bench binaries: latency histograms and progress lines.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Throughput and latency of one run.
#[derive(Debug)]
pub struct Figures {
    /// What was measured.
    pub name: String,
    /// Operations completed.
    pub count: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Per-operation latency in microseconds.
    pub latency_us: Histogram<u64>,
}

impl Figures {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    /// One line for the report.
    pub fn line(&self) -> String {
        let ms = |q: f64| self.latency_us.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "{:<44} {:>8} ops in {:>6.2} s = {:>8.0}/s   p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
            self.name,
            self.count,
            self.elapsed.as_secs_f64(),
            self.rate(),
            ms(0.50),
            ms(0.99),
            self.latency_us.max() as f64 / 1000.0
        )
    }
}

/// A histogram for latencies from 1 µs to 60 s.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid")
}
