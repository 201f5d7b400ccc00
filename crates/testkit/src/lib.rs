//! Test resources against the machine's real PostgreSQL and NATS.
//!
//! - [`TestDb`]: a fresh database per test, dropped afterwards.
//! - [`TestNats`]: a unique `DESKIE_NATS_PREFIX` on the shared server; its streams are
//!   deleted afterwards.
//! - [`NatsServer`]: a private `nats-server` on a free port, for tests that stop and restart it.
//! - [`FaultProxy`]: a loopback TCP proxy that refuses, blackholes, delays or resets
//!   traffic to a real server, for network-fault tests without root.
//! - [`ChatraStandIn`]: a local Chatra REST API that records requests and fails on demand.
//! - [`case_events`]: builders of case events; [`record_case`] and [`append_case`] write
//!   them to a case, projected or not; [`connect_integration`] connects a Chatra integration.
//! - [`given`]: `given(history).when(decision)`, how every case decision is tested.
//! - [`SlackStandIn`], [`TelegramStandIn`]: a local Slack incoming webhook and Telegram Bot
//!   API (`sendMessage`), recording requests and failing on demand in the same way.
//!
//! `DESKIE_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and
//! `DESKIE_TEST_NATS_URL` (default `nats://127.0.0.1:4222`) point elsewhere when needed.

pub mod case_events;
mod case_writes;
mod chatra_standin;
mod db;
mod eventually;
mod fault_proxy;
mod fixtures;
mod given;
mod integrations;
mod nats;
mod process;
mod server;
mod slack_standin;
mod sse;
mod standin;
mod streams;
mod suite_env;
mod telegram_standin;

pub use case_writes::{TEST_CAUSE, append_case, record_case, record_case_as};
pub use chatra_standin::ChatraStandIn;
pub use db::TestDb;
pub use eventually::{LIVENESS_BOUND, eventually, wait_until};
pub use fault_proxy::{FaultProxy, ProxyMode};
pub use fixtures::{chatra_fixture, chatra_fixture_dir};
pub use given::{Given, Then, given};
pub use integrations::{connect_integration, integration_settings};
pub use nats::TestNats;
pub use process::{
    ServiceProcess, TEST_ENCRYPTION_KEY, assert_bad_variables_are_named, assert_serves_ops,
    free_port, run_with,
};
pub use server::NatsServer;
pub use slack_standin::SlackStandIn;
pub use sse::{Sse, SseReader};
pub use standin::{Fault, RecordedRequest};
pub use streams::{header, read_stream};
pub use suite_env::suite_vars;
pub use telegram_standin::TelegramStandIn;

/// A short random token for names (databases, prefixes).
pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// Runs `cleanup` to completion on a private runtime; for `Drop`, which cannot await.
pub(crate) fn block_on_cleanup<F>(cleanup: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let _ = std::thread::spawn(move || {
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            runtime.block_on(cleanup);
        }
    })
    .join();
}
