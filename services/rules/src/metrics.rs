//! The rules service's Prometheus metrics, in a registry of its own.

use deskie_store::case_consumer::CaseEventMetrics;
use prometheus::{IntCounterVec, Opts, Registry};

/// `rules_events_total{outcome}`: `fired` (at least one rule fired), `none` (evaluated,
/// nothing fired), `skipped` (part of a change already evaluated, or already handled),
/// `retried`, `poison`.
#[derive(Debug, Clone)]
pub struct RulesMetrics {
    registry: Registry,
    events: IntCounterVec,
    case_events: CaseEventMetrics,
}

impl RulesMetrics {
    /// Registers every metric, each series from zero.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let events = IntCounterVec::new(
            Opts::new(
                "rules_events_total",
                "Case events that trigger rules, by outcome",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(events.clone()))?;
        for outcome in ["fired", "none", "skipped", "retried", "poison"] {
            events.with_label_values(&[outcome]);
        }
        let case_events = CaseEventMetrics::register(&registry)?;
        Ok(Self {
            registry,
            events,
            case_events,
        })
    }

    /// What became of each case event handed to the service's case-event consumer
    /// (`deskie_case_events_total`, the same for every consumer).
    pub fn case_events(&self) -> &CaseEventMetrics {
        &self.case_events
    }

    /// Counts one event.
    pub fn count(&self, outcome: &str) {
        self.events.with_label_values(&[outcome]).inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        deskie_telemetry::metrics::render(&self.registry)
    }
}
