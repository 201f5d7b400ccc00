//! rules: the admin's rules on new and updated Live Chat cases (see `docs/services/rules.md`
//! and `docs/rules.md`).
//!
//! For each case event that is a change rules see ([`deskie_domain::rules::case_change`];
//! one per cause, [`deskie_domain::rules::changes_to_evaluate`]), in one transaction on the
//! case's stream: the inbox record of the event, the case as of that change, the enabled
//! rules of its trigger evaluated in position order, then `RuleFired` and the events of
//! their actions ([`deskie_domain::rules::decide_rule_effects`]). Redelivery fires nothing
//! twice (the inbox); events caused by rules trigger no rules (no loops). Auto-replies go
//! out through outbound like agents' replies (`ReplyRequested`, source `rule`).

mod handler;
mod metrics;
pub mod rotation;
mod rule_book;

pub use handler::EvaluateRules;
pub use metrics::RulesMetrics;
pub use rule_book::RuleBook;

use deskie_bus::Bus;
use deskie_bus::consumer::{self, ConsumerSpec};
use deskie_config::Cipher;
use deskie_store::Store;
use deskie_store::case_consumer::{self, CaseEventHandler};
use deskie_store::startup::consumer_endpoints;
use deskie_telemetry::ops;
use tokio_util::sync::CancellationToken;

/// Consumer, inbox and `emitted_by` name.
pub const SERVICE: &str = "rules";

/// The consumer settings of rules.
pub fn consumer_spec(bus: &Bus) -> ConsumerSpec {
    case_consumer::consumer_spec(bus.topology(), SERVICE)
}

/// Where the `deskie-rules` binary serves `/healthz`, `/readyz` and `/metrics`.
pub const ADDR_VAR: &str = "DESKIE_RULES_ADDR";
/// The default of [`ADDR_VAR`].
pub const DEFAULT_ADDR: &str = "127.0.0.1:8085";

/// Runs rules until `shutdown` is cancelled, counting into `metrics`.
pub async fn run(
    cipher: Cipher,
    store: Store,
    bus: Bus,
    metrics: RulesMetrics,
    shutdown: CancellationToken,
) {
    let case_events = metrics.case_events().clone();
    let handler = CaseEventHandler::new(
        store,
        bus.topology().clone(),
        EvaluateRules::new(cipher, metrics),
    )
    .with_metrics(case_events);
    consumer::run(bus.clone(), consumer_spec(&bus), handler, shutdown).await;
}

/// [`run`] with `/healthz`, `/readyz` (NATS, database) and `/metrics` on `listener`.
pub async fn run_serving(
    cipher: Cipher,
    store: Store,
    bus: Bus,
    listener: std::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = RulesMetrics::new()?;
    let endpoints = consumer_endpoints(&bus, &store, {
        let metrics = metrics.clone();
        move || metrics.render()
    });
    let work = run(cipher, store, bus, metrics, shutdown.clone());
    ops::serve_alongside(listener, endpoints, shutdown.cancelled(), work).await?;
    Ok(())
}
