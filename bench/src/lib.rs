//! Shared helpers for the bench binaries: latency histograms, progress lines and the
//! machine's raw limits ([`raw`]).

pub mod raw;

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::time::{Duration, Instant};

use deskie_config::Settings;
use deskie_testkit::{RecordedRequest, TestDb, TestNats};
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

/// A throw-away database and NATS prefix, and the settings of a whole suite on loopback
/// using them; both are removed when this is dropped.
#[derive(Debug)]
pub struct BenchEnv {
    /// The database.
    pub db: TestDb,
    /// The NATS prefix.
    pub nats: TestNats,
    /// Settings for `deskie::start_suite` (ingest on a free port, the API on any).
    pub settings: Settings,
}

/// Service logs (JSON on stdout) when `RUST_LOG` is set, e.g. `RUST_LOG=warn`; the
/// benchmarks print only their figures otherwise. Keep the guard until the end of `main`.
pub fn logs_from_env() -> Option<deskie_telemetry::TelemetryGuard> {
    std::env::var_os("RUST_LOG")?;
    deskie_telemetry::init("bench", None).ok()
}

/// A [`BenchEnv`] whose admin token is `admin` and whose Chatra is at `chatra_url`.
pub async fn bench_env(admin: &str, chatra_url: &str) -> anyhow::Result<BenchEnv> {
    let db = TestDb::create().await;
    let nats = TestNats::new();
    let vars = deskie_testkit::suite_vars(&db, &nats, admin, chatra_url);
    let settings = Settings::from_lookup(|k| vars.get(k).cloned())?;
    Ok(BenchEnv { db, nats, settings })
}

/// The suite's options for a delivery benchmark: outbound with no per-integration rate limit
/// (else the default 10/s would be the only figure) and a 100 ms claim poll.
pub fn unthrottled_suite_options(settings: &Settings) -> anyhow::Result<deskie::SuiteOptions> {
    let mut options = deskie::SuiteOptions::from_settings(settings)?;
    if let Some(outbound) = options.outbound.as_mut() {
        let unlimited = std::num::NonZeroU32::new(1_000_000).unwrap_or(std::num::NonZeroU32::MAX);
        outbound.rate = deskie_outbound::RateLimit {
            per_second: unlimited,
            burst: unlimited,
        };
        outbound.poll_interval = Duration::from_millis(100);
    }
    Ok(options)
}

/// The calls a stand-in received, matched to the requests that caused them.
#[derive(Debug)]
pub struct MatchedCalls {
    /// From each request to its first call, in µs.
    pub latency_us: Histogram<u64>,
    /// When the last matched call arrived.
    pub last: Instant,
    /// Calls for a request already matched: a delivery made twice.
    pub duplicates: usize,
    /// Calls matching no timed request (warm-up traffic, or something unexpected).
    pub unmatched: usize,
}

/// Matches each call to the request `key` names in `sent_at` (when it was sent); a second
/// call for the same request is counted as a duplicate and not timed again.
pub fn match_calls<K: Hash + Eq>(
    calls: &[RecordedRequest],
    sent_at: &HashMap<K, Instant>,
    key: impl Fn(&RecordedRequest) -> Option<K>,
    started: Instant,
) -> MatchedCalls {
    let mut matched = MatchedCalls {
        latency_us: latency_histogram(),
        last: started,
        duplicates: 0,
        unmatched: 0,
    };
    let mut seen = HashSet::new();
    for call in calls {
        let Some((k, at)) = key(call).and_then(|k| sent_at.get(&k).map(|at| (k, *at))) else {
            matched.unmatched += 1;
            continue;
        };
        if !seen.insert(k) {
            matched.duplicates += 1;
            continue;
        }
        let micros = call.at.saturating_duration_since(at).as_micros();
        let _ = matched
            .latency_us
            .record(u64::try_from(micros).unwrap_or(u64::MAX));
        matched.last = matched.last.max(call.at);
    }
    matched
}
