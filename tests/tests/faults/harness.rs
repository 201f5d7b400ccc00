//! A whole suite in this process for the fault scenarios: its own database (reached through
//! a fault proxy when a scenario cuts PostgreSQL), its own NATS prefix, and the load
//! generator's stand-ins for Chatra, Slack and Telegram.

use std::sync::Arc;
use std::time::Duration;

use deskie_config::Settings;
use deskie_loadgen::{Checker, Driven, Ledger, Plan, ResendPolicy, Sender, Sinks, Target};
use deskie_testkit::{FaultProxy, NatsServer, ServiceProcess, TestDb, TestNats};
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "admin-token-for-the-fault-suite";

/// How long Chatra's echo of a stored reply takes to come back.
pub const ECHO_DELAY: Duration = Duration::from_millis(300);

pub struct Harness {
    pub target: Target,
    pub sinks: Arc<Sinks>,
    /// Between the suite and PostgreSQL, when asked for.
    pub pg: Option<FaultProxy>,
    pub nats_url: String,
    pub nats_prefix: String,
    pub sender: Sender,
    running: Option<deskie::RunningSuite>,
    process: Option<ServiceProcess>,
    /// The child process's environment (`deskie run` is restarted with it).
    process_env: Vec<(&'static str, String)>,
    shutdown: CancellationToken,
    stop_sending: CancellationToken,
    _db: TestDb,
    _nats: TestNats,
    /// A private nats-server, when asked for (dropped last: the prefix's cleanup uses it).
    pub nats_server: Option<NatsServer>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop_sending.cancel();
        self.shutdown.cancel();
        self.kill_suite();
        if let Some((_, dir)) = self
            .process_env
            .iter()
            .find(|(k, _)| *k == "DESKIE_DATA_DIR")
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// What a scenario needs besides a suite.
#[derive(Debug, Clone, Copy, Default)]
pub struct Setup {
    /// PostgreSQL reached only through a [`FaultProxy`] ([`Harness::pg`]).
    pub pg_proxy: bool,
    /// A private nats-server on a free port, to kill and restart ([`Harness::nats_server`]).
    pub own_nats: bool,
    /// The suite as `deskie run` in a child process, to kill and restart
    /// ([`Harness::kill_suite`], [`Harness::restart_suite`]), instead of in this process.
    pub child_process: bool,
}

/// Starts a suite as `setup` says.
pub async fn start(setup: Setup) -> Harness {
    let pg_proxy = setup.pg_proxy;
    let sinks = Arc::new(Sinks::start().await);
    let db = TestDb::create().await;
    let nats_server = match setup.own_nats {
        true => Some(NatsServer::start_new().await),
        false => None,
    };
    let nats = match &nats_server {
        Some(server) => TestNats::on(server.url()),
        None => TestNats::new(),
    };
    let mut vars = deskie_testkit::suite_vars(&db, &nats, ADMIN, sinks.chatra_url());
    let pg = match pg_proxy {
        true => {
            // postgres://user@HOST:PORT/name: the proxy goes where HOST:PORT was.
            let upstream = db
                .url()
                .rsplit_once('@')
                .and_then(|(_, rest)| rest.split_once('/'))
                .map(|(host, _)| host.to_owned())
                .expect("host:port in the test database URL");
            let address = tokio::net::lookup_host(upstream.as_str())
                .await
                .expect("database address")
                .next()
                .expect("an address");
            let proxy = FaultProxy::start(address).await;
            let url = db
                .url()
                .replace(&upstream, &format!("127.0.0.1:{}", proxy.port()));
            vars.insert("DESKIE_DATABASE_URL", url);
            Some(proxy)
        }
        false => None,
    };
    vars.insert("DESKIE_TELEGRAM_API_URL", sinks.telegram_url().to_owned());
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");
    let outbound = deskie_outbound::OutboundConfig {
        lease: Duration::from_secs(2),
        unknown_deadline: Duration::from_secs(60),
        poll_interval: Duration::from_millis(100),
        telegram_api_url: sinks.telegram_url().to_owned(),
        ..deskie_outbound::OutboundConfig::default()
    };
    let shutdown = CancellationToken::new();
    let mut process_env = Vec::new();
    let (running, process, api) = if setup.child_process {
        vars.remove("DESKIE_API_ADDR");
        let data_dir = std::env::temp_dir().join(format!("deskie-faults-{}", nats.prefix()));
        vars.insert("DESKIE_DATA_DIR", data_dir.display().to_string());
        // Tuned as the in-process outbound below, within what the variables allow.
        vars.insert("DESKIE_OUTBOUND_LEASE_SECS", "16".to_owned());
        vars.insert("DESKIE_OUTBOUND_UNKNOWN_DEADLINE_SECS", "120".to_owned());
        process_env = vars.iter().map(|(k, v)| (*k, v.clone())).collect();
        let process = spawn_suite(&process_env).await;
        let api = format!("{}/api/v1", process.base());
        (None, Some(process), api)
    } else {
        let options = deskie::SuiteOptions {
            outbound: Some(outbound),
            agent_sync: None,
            rules: true,
        };
        let running = deskie::start_suite_with(&settings, options, shutdown.clone())
            .await
            .expect("suite");
        let api = format!("http://127.0.0.1:{}/api/v1", running.api_port);
        (Some(running), None, api)
    };
    let target = Target::connect(&api, ADMIN, &sinks)
        .await
        .expect("target set up");
    let stop_sending = CancellationToken::new();
    let sender = Sender::new(
        &target.webhook_url,
        Ledger::new(),
        ResendPolicy::default(),
        stop_sending.clone(),
    );
    Harness {
        target,
        sinks,
        pg,
        nats_url: nats.url().to_owned(),
        nats_prefix: nats.prefix().to_owned(),
        sender,
        running,
        process,
        process_env,
        shutdown,
        stop_sending,
        _db: db,
        _nats: nats,
        nats_server,
    }
}

impl Harness {
    /// Runs `plan` in the background; the driven run when it has all been sent.
    pub fn drive(&self, plan: &Plan) -> tokio::task::JoinHandle<Driven> {
        let (plan, sender, sinks) = (plan.clone(), self.sender.clone(), self.sinks.clone());
        tokio::spawn(async move { deskie_loadgen::drive(&plan, &sender, sinks, ECHO_DELAY).await })
    }

    /// A checker of `plan` against this suite (dead letters included).
    /// Waits for the suite to drain after `fault_ended` (at most `deadline`), stops the
    /// driver's background work, and fails the test unless the checker's figures are clean
    /// ([`assert_clean`]); the report, for the scenario's own checks.
    pub async fn settle(
        &self,
        scenario: &str,
        plan: &Plan,
        driven: &Driven,
        fault_ended: std::time::Instant,
        deadline: std::time::Duration,
    ) -> deskie_loadgen::Report {
        let report = self
            .checker(plan)
            .wait_drained(fault_ended, deadline)
            .await
            .expect("checker");
        driven.finish();
        assert_clean(scenario, &report, fault_ended, driven.sent_all_at);
        report
    }

    pub fn checker(&self, plan: &Plan) -> Checker {
        Checker::new(
            self.target.clone(),
            self.sinks.clone(),
            self.sender.ledger().clone(),
            plan.clone(),
            Some((self.nats_url.clone(), self.nats_prefix.clone())),
        )
    }

    /// Webhooks routing has handled (its inbox), for an in-process suite.
    pub async fn routed(&self) -> i64 {
        let store = &self.running.as_ref().expect("an in-process suite").store;
        sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = 'routing'")
            .fetch_one(store.pool())
            .await
            .expect("routing's inbox")
    }

    /// Kills (SIGKILL) the `deskie run` child process.
    pub fn kill_suite(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts `deskie run` again with the same environment and waits until it is ready; the
    /// API's new address replaces the old one.
    pub async fn restart_suite(&mut self) {
        let process = spawn_suite(&self.process_env).await;
        self.target.api = format!("{}/api/v1", process.base());
        self.process = Some(process);
    }

    /// Stops every service and waits for them.
    pub async fn stop(mut self) {
        self.stop_sending.cancel();
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            tokio::time::timeout(Duration::from_secs(15), running.wait())
                .await
                .expect("the suite stops within 15 s");
        }
    }
}

/// How many times larger than the CI size a scenario runs: `DESKIE_FAULTS_SCALE` (default 1;
/// e.g. 20 for a soak).
pub fn scale() -> usize {
    std::env::var("DESKIE_FAULTS_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// Prints the scenario's figures and fails the test on any non-zero failure figure.
/// `fault_ended` and `sent_all` say when the fault ended and when the last webhook was
/// settled at the sender: the drain runs from the first, and load may have gone on after it.
fn assert_clean(
    scenario: &str,
    report: &deskie_loadgen::Report,
    fault_ended: std::time::Instant,
    sent_all: std::time::Instant,
) {
    let after = sent_all
        .saturating_duration_since(fault_ended)
        .as_secs_f64();
    println!("== {scenario}\n{report}\nlast webhook acked {after:.1} s after the fault ended");
    assert!(
        report.is_clean(),
        "{scenario}: {:?}\n{report}",
        report.failures()
    );
    assert!(
        report.drain.is_some(),
        "{scenario}: did not drain\n{report}"
    );
}

/// `deskie run` as a child process with `env`, once its API answers `/readyz`.
async fn spawn_suite(env: &[(&'static str, String)]) -> ServiceProcess {
    let binary = deskie_binary();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let process = ServiceProcess::spawn_with_args(
        &binary.display().to_string(),
        &["run"],
        &envs,
        "DESKIE_API_ADDR",
    );
    process.ready().await;
    process
}

/// The `deskie` binary next to this test's executable (`target/<profile>/deskie`), built
/// first when missing.
fn deskie_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = dir.join("deskie");
    if !path.exists() {
        let mut build = std::process::Command::new(env!("CARGO"));
        build.args(["build", "--bin", "deskie", "-p", "deskie"]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        assert!(
            build.status().expect("cargo build").success(),
            "building deskie failed"
        );
    }
    path
}
