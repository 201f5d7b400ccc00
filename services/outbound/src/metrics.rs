//! outbound's Prometheus metrics, in a registry of its own (several services may share a
//! process).

use deskie_store::case_consumer::CaseEventMetrics;
use prometheus::{IntCounterVec, Opts, Registry};

/// `outbound_replies_total{outcome}`: `sent`, `failed`, `unknown`, `retried`, `deferred`
/// (given back untried: its Chatra account was paused or busy, or its lease ran out before
/// the call), `claim_lost` (a claim ran out before its outcome was recorded),
/// `record_failed`; and
/// `outbound_unknown_settled_total{by}`: `echo` or `deadline`; and
/// `outbound_notifications_total{kind, outcome}`: `slack`/`telegram` × `sent`, `failed`,
/// `retried`, `deferred` (put back to wait for the destination's turn), `claim_lost`,
/// `record_failed`.
#[derive(Debug, Clone)]
pub struct OutboundMetrics {
    registry: Registry,
    replies: IntCounterVec,
    settled: IntCounterVec,
    notifications: IntCounterVec,
    case_events: CaseEventMetrics,
}

impl OutboundMetrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let replies = IntCounterVec::new(
            Opts::new(
                "outbound_replies_total",
                "Reply delivery attempts by outcome",
            ),
            &["outcome"],
        )?;
        let settled = IntCounterVec::new(
            Opts::new(
                "outbound_unknown_settled_total",
                "Replies whose unknown outcome was settled, by what settled them",
            ),
            &["by"],
        )?;
        let notifications = IntCounterVec::new(
            Opts::new(
                "outbound_notifications_total",
                "Staff notification attempts by kind and outcome",
            ),
            &["kind", "outcome"],
        )?;
        registry.register(Box::new(replies.clone()))?;
        registry.register(Box::new(settled.clone()))?;
        registry.register(Box::new(notifications.clone()))?;
        // Every series from zero, so a dashboard sees "none yet" rather than nothing.
        for outcome in [
            "sent",
            "failed",
            "unknown",
            "retried",
            "deferred",
            "claim_lost",
            "record_failed",
        ] {
            replies.with_label_values(&[outcome]);
        }
        for by in ["echo", "deadline"] {
            settled.with_label_values(&[by]);
        }
        for kind in ["slack", "telegram"] {
            for outcome in [
                "sent",
                "failed",
                "retried",
                "deferred",
                "claim_lost",
                "record_failed",
            ] {
                notifications.with_label_values(&[kind, outcome]);
            }
        }
        let case_events = CaseEventMetrics::register(&registry)?;
        Ok(Self {
            registry,
            case_events,
            replies,
            settled,
            notifications,
        })
    }

    /// What became of each case event handed to the service's case-event consumer
    /// (`deskie_case_events_total`, the same for every consumer).
    pub fn case_events(&self) -> &CaseEventMetrics {
        &self.case_events
    }

    /// Counts one reply outcome.
    pub fn count(&self, outcome: &str) {
        self.replies.with_label_values(&[outcome]).inc();
    }

    /// Counts one unknown outcome settled by `by`.
    pub fn settled(&self, by: &str) {
        self.settled.with_label_values(&[by]).inc();
    }

    /// Counts one notification outcome of `kind` (`slack`, `telegram`).
    pub fn notified(&self, kind: &str, outcome: &str) {
        self.notifications.with_label_values(&[kind, outcome]).inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        deskie_telemetry::metrics::render(&self.registry)
    }
}
