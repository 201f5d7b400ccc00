//! agent-sync's Prometheus metrics, in a registry of its own (several services may share a
//! process).

use deskie_store::case_consumer::CaseEventMetrics;
use prometheus::{IntCounterVec, Opts, Registry};

/// `agent_sync_pings_total{outcome}` (`sent`; `path_unknown`: Chatra answered 404/405;
/// `refused`: another 4xx; `failed`: no answer, 429 or 5xx),
/// `agent_sync_client_updates_total{outcome}` (`sent`, `retried`, `rejected`, `skipped`),
/// `agent_sync_links_total{learnt_from}` (`delivery`, `mirrored_message`),
/// `agent_sync_visitor_fetches_total{outcome}` (`done`, `retried`, `failed`,
/// `rate_limited`, `claim_lost`).
#[derive(Debug, Clone)]
pub struct AgentSyncMetrics {
    registry: Registry,
    pings: IntCounterVec,
    client_updates: IntCounterVec,
    links: IntCounterVec,
    visitor_fetches: IntCounterVec,
    case_events: CaseEventMetrics,
}

impl AgentSyncMetrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, label: &str| {
            let counter = IntCounterVec::new(Opts::new(name, help), &[label])?;
            registry.register(Box::new(counter.clone()))?;
            Ok::<_, prometheus::Error>(counter)
        };
        let pings = counter(
            "agent_sync_pings_total",
            "Agent-online pings sent to Chatra, by outcome",
            "outcome",
        )?;
        let client_updates = counter(
            "agent_sync_client_updates_total",
            "Agents' customer edits sent to Chatra (PUT /clients), by outcome",
            "outcome",
        )?;
        let links = counter(
            "agent_sync_links_total",
            "AgentChatraLinked recorded, by what taught the link",
            "learnt_from",
        )?;
        let visitor_fetches = counter(
            "agent_sync_visitor_fetches_total",
            "Attempts to fetch Chatra's visitor card (GET /clients), by outcome",
            "outcome",
        )?;
        let case_events = CaseEventMetrics::register(&registry)?;
        Ok(Self {
            registry,
            case_events,
            pings,
            client_updates,
            links,
            visitor_fetches,
        })
    }

    /// What became of each case event handed to the service's case-event consumer
    /// (`deskie_case_events_total`, the same for every consumer).
    pub fn case_events(&self) -> &CaseEventMetrics {
        &self.case_events
    }

    /// The registry, to mount on a `/metrics` endpoint.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        deskie_telemetry::metrics::render(&self.registry)
    }

    pub(crate) fn ping(&self, outcome: &str) {
        self.pings.with_label_values(&[outcome]).inc();
    }

    pub(crate) fn client_update(&self, outcome: &str) {
        self.client_updates.with_label_values(&[outcome]).inc();
    }

    pub(crate) fn link(&self, learnt_from: &str) {
        self.links.with_label_values(&[learnt_from]).inc();
    }

    pub(crate) fn visitor_fetch(&self, outcome: &str) {
        self.visitor_fetches.with_label_values(&[outcome]).inc();
    }

    /// Visitor-card fetches that ended with `outcome` so far (for tests and logs).
    pub fn visitor_fetches(&self, outcome: &str) -> u64 {
        self.visitor_fetches.with_label_values(&[outcome]).get()
    }

    /// Customer edits that ended an attempt with `outcome` so far (for tests and logs).
    pub fn client_updates(&self, outcome: &str) -> u64 {
        self.client_updates.with_label_values(&[outcome]).get()
    }

    /// Pings that ended with `outcome` so far (for tests and logs).
    pub fn pings(&self, outcome: &str) -> u64 {
        self.pings.with_label_values(&[outcome]).get()
    }
}
