//! A whole suite for the fault scenarios (in this process, as `deskie run` in a child
//! process, or each service its own binary): its own database (reached through a fault proxy
//! when a scenario cuts PostgreSQL), its own NATS prefix, and the load generator's stand-ins
//! for Chatra, Slack and Telegram.

use std::sync::Arc;
use std::time::Duration;

use deskie_config::Settings;
use deskie_loadgen::{Checker, Driven, Ledger, Plan, ResendPolicy, Sender, Sinks, Target};
use deskie_testkit::{FaultProxy, NatsServer, ServiceProcess, TestDb, TestNats, free_port};
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "admin-token-for-the-fault-suite";

/// How long the checker waits for the suite to drain after a fault before it reports.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(120);

/// When a scenario's fault ended: the drain is timed from then.
#[derive(Debug, Clone, Copy)]
pub enum FaultEnd {
    /// At this moment (a cut healed, a process restarted, the last fault met).
    At(std::time::Instant),
    /// With the last webhook accepted: the fault came with the load (poison, duplicates).
    LastWebhookAccepted,
}

/// How long Chatra's echo of a stored reply takes to come back.
pub const ECHO_DELAY: Duration = Duration::from_millis(300);

pub struct Harness {
    pub target: Target,
    pub sinks: Arc<Sinks>,
    /// Between the suite and PostgreSQL, when asked for.
    pub pg: Option<FaultProxy>,
    /// Between the suite and NATS, when asked for (the checker goes to NATS directly).
    pub nats_proxy: Option<FaultProxy>,
    pub nats_url: String,
    pub nats_prefix: String,
    pub sender: Sender,
    running: Option<deskie::RunningSuite>,
    /// The suite's binaries, when it runs in child processes.
    children: Vec<ChildService>,
    /// The child processes' environment (each is restarted with it).
    child_env: Vec<(&'static str, String)>,
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
        if let Some((_, dir)) = self.child_env.iter().find(|(k, _)| *k == "DESKIE_DATA_DIR") {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// What a scenario needs besides a suite.
#[derive(Debug, Clone, Copy, Default)]
pub struct Setup {
    /// PostgreSQL reached only through a [`FaultProxy`] ([`Harness::pg`]).
    pub pg_proxy: bool,
    /// NATS reached only through a [`FaultProxy`] ([`Harness::nats_proxy`]).
    pub nats_proxy: bool,
    /// A private nats-server on a free port, to kill and restart ([`Harness::nats_server`]).
    pub own_nats: bool,
    /// Where the suite's services run.
    pub deployment: Deployment,
    /// Settings on top of the test kit's (e.g. stream limits).
    pub vars: &'static [(&'static str, &'static str)],
}

/// Where a suite's services run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Deployment {
    /// In this process (`deskie::start_suite_with`).
    #[default]
    InProcess,
    /// `deskie run` in one child process, killed and restarted as [`DESKIE_RUN`].
    DeskieRun,
    /// Each service its own binary in its own child process, as `docker-compose.yml` runs
    /// them ([`SERVICES`]), each to kill and restart on its own.
    EachService,
}

/// The name of the one child process of [`Deployment::DeskieRun`].
pub const DESKIE_RUN: &str = "deskie run";

/// The binaries of [`Deployment::EachService`]: name, program, arguments, and the variable
/// of its ops (or, for ingest and the api, its only) address; routing has none.
pub const SERVICES: [(&str, &str, &[&str], Option<&str>); 8] = [
    ("ingest", "deskie-ingest", &[], Some("DESKIE_INGEST_ADDR")),
    ("routing", "deskie-routing", &[], None),
    ("relay", "deskie", &["relay"], Some("DESKIE_RELAY_ADDR")),
    (
        "projector",
        "deskie-projector",
        &[],
        Some("DESKIE_PROJECTOR_ADDR"),
    ),
    ("rules", "deskie-rules", &[], Some("DESKIE_RULES_ADDR")),
    (
        "outbound",
        "deskie-outbound",
        &[],
        Some("DESKIE_OUTBOUND_ADDR"),
    ),
    (
        "agent-sync",
        "deskie-agent-sync",
        &[],
        Some("DESKIE_AGENT_SYNC_ADDR"),
    ),
    ("api", "deskie-api", &[], Some("DESKIE_API_ADDR")),
];

/// One binary of a suite in child processes, restarted where it ran (same ports).
struct ChildService {
    name: &'static str,
    program: String,
    args: &'static [&'static str],
    ops: Option<(&'static str, u16)>,
    process: Option<ServiceProcess>,
}

impl ChildService {
    fn new(
        name: &'static str,
        program: &str,
        args: &'static [&'static str],
        ops_var: Option<&'static str>,
        env: &[(&'static str, String)],
    ) -> Self {
        // Ingest keeps the port the webhook URLs were built with.
        let ops = ops_var.map(|var| {
            let port = env
                .iter()
                .find(|(k, _)| *k == var)
                .and_then(|(_, v)| v.rsplit_once(':'))
                .and_then(|(_, port)| port.parse().ok())
                .filter(|port| *port != 0)
                .unwrap_or_else(free_port);
            (var, port)
        });
        Self {
            name,
            program: binary(program).display().to_string(),
            args,
            ops,
            process: None,
        }
    }

    /// Starts it and, when it has ops endpoints, waits until it is ready.
    async fn start(&mut self, env: &[(&'static str, String)]) {
        let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let process = ServiceProcess::spawn_on(&self.program, self.args, &envs, self.ops);
        if self.ops.is_some() {
            process.ready().await;
        }
        self.process = Some(process);
    }

    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }
}

/// Starts a suite as `setup` says.
pub async fn start(setup: Setup) -> Harness {
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
    let pg = match setup.pg_proxy {
        true => Some(proxy_var(&mut vars, "DESKIE_DATABASE_URL").await),
        false => None,
    };
    let nats_proxy = match setup.nats_proxy {
        true => Some(proxy_var(&mut vars, "DESKIE_NATS_URL").await),
        false => None,
    };
    vars.insert("DESKIE_TELEGRAM_API_URL", sinks.telegram_url().to_owned());
    for (name, value) in setup.vars {
        vars.insert(name, (*value).to_owned());
    }
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");
    let outbound = deskie_outbound::OutboundConfig {
        lease: Duration::from_secs(2),
        unknown_deadline: Duration::from_secs(60),
        poll_interval: Duration::from_millis(100),
        telegram_api_url: sinks.telegram_url().to_owned(),
        ..deskie_outbound::OutboundConfig::default()
    };
    let shutdown = CancellationToken::new();
    let mut child_env = Vec::new();
    let mut children = Vec::new();
    let (running, api) = if setup.deployment == Deployment::InProcess {
        let options = deskie::SuiteOptions {
            outbound: Some(outbound),
            agent_sync: None,
            rules: true,
        };
        let running = deskie::start_suite_with(&settings, options, shutdown.clone())
            .await
            .expect("suite");
        let api = format!("http://127.0.0.1:{}/api/v1", running.api_port);
        (Some(running), api)
    } else {
        vars.remove("DESKIE_API_ADDR");
        let data_dir = std::env::temp_dir().join(format!("deskie-faults-{}", nats.prefix()));
        vars.insert("DESKIE_DATA_DIR", data_dir.display().to_string());
        // Tuned as the in-process outbound above, within what the variables allow.
        vars.insert("DESKIE_OUTBOUND_LEASE_SECS", "16".to_owned());
        vars.insert("DESKIE_OUTBOUND_UNKNOWN_DEADLINE_SECS", "120".to_owned());
        child_env = vars.iter().map(|(k, v)| (*k, v.clone())).collect();
        if setup.deployment == Deployment::DeskieRun {
            let run = ChildService::new(
                DESKIE_RUN,
                "deskie",
                &["run"],
                Some("DESKIE_API_ADDR"),
                &child_env,
            );
            children.push(run);
        } else {
            migrate(&child_env);
            for (name, program, args, ops) in SERVICES {
                children.push(ChildService::new(name, program, args, ops, &child_env));
            }
        }
        for child in &mut children {
            child.start(&child_env).await;
        }
        let api_child = children
            .iter()
            .find(|c| matches!(c.ops, Some(("DESKIE_API_ADDR", _))))
            .and_then(|c| c.process.as_ref())
            .expect("a child serving the API");
        let api = format!("{}/api/v1", api_child.base());
        (None, api)
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
        nats_proxy,
        nats_url: nats.url().to_owned(),
        nats_prefix: nats.prefix().to_owned(),
        sender,
        running,
        children,
        child_env,
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

    /// Waits for `driving` to have sent everything and the suite to drain after the fault
    /// ended (at most [`DRAIN_DEADLINE`]), stops the driver's background work, and fails
    /// the test unless the checker's figures are clean ([`assert_clean`]); the report, for
    /// the scenario's own checks.
    pub async fn settle(
        &self,
        scenario: &str,
        plan: &Plan,
        driving: tokio::task::JoinHandle<Driven>,
        end: FaultEnd,
    ) -> deskie_loadgen::Report {
        let driven = driving.await.expect("driven");
        let fault_ended = match end {
            FaultEnd::At(at) => at,
            FaultEnd::LastWebhookAccepted => driven.sent_all_at,
        };
        let report = self
            .checker(plan)
            .wait_drained(fault_ended, DRAIN_DEADLINE)
            .await
            .expect("checker");
        driven.finish();
        assert_clean(scenario, &report, fault_ended, driven.sent_all_at);
        report
    }

    /// A checker of `plan` against this suite (dead letters included).
    pub fn checker(&self, plan: &Plan) -> Checker {
        Checker::new(
            self.target.clone(),
            self.sinks.clone(),
            self.sender.ledger().clone(),
            plan.clone(),
            Some((self.nats_url.clone(), self.nats_prefix.clone())),
        )
    }

    /// Why each dead letter was given up (`deskie dead-letters`), for an in-process suite.
    pub async fn dead_letter_reasons(&self) -> Vec<String> {
        let bus = &self.running.as_ref().expect("an in-process suite").bus;
        deskie::dead_letters::list(bus, 1000)
            .await
            .expect("dead letters")
            .into_iter()
            .map(|letter| letter.reason)
            .collect()
    }

    /// The largest message the suite's NATS server takes (its `max_payload`).
    pub async fn nats_max_payload(&self) -> usize {
        let client = async_nats::connect(&self.nats_url).await.expect("NATS");
        client.server_info().max_payload
    }

    /// Sets the byte limit of the suite's webhook and event streams to `max_bytes`, as a
    /// restart with new `DESKIE_NATS_*_MAX_BYTES` would; returns each stream's bytes before.
    pub async fn raise_stream_limits(&self, max_bytes: i64) -> Vec<(String, u64)> {
        let client = async_nats::connect(&self.nats_url).await.expect("NATS");
        let jetstream = async_nats::jetstream::new(client);
        let mut before = Vec::new();
        for stream in ["webhooks", "events"] {
            let name = format!("{}_{stream}", self.nats_prefix);
            let mut handle = jetstream.get_stream(&name).await.expect("stream");
            let info = handle.info().await.expect("stream info");
            before.push((name, info.state.bytes));
            let mut config = info.config.clone();
            config.max_bytes = max_bytes;
            jetstream.update_stream(config).await.expect("limit raised");
        }
        before
    }

    /// Waits (at most `deadline`) until Chatra, Slack and Telegram together have met
    /// `faults` injected faults, and returns when that happened.
    pub async fn faults_met(&self, faults: usize, deadline: Duration) -> std::time::Instant {
        let until = std::time::Instant::now() + deadline;
        loop {
            let met = [
                self.sinks.chatra.requests(),
                self.sinks.slack.requests(),
                self.sinks.telegram.requests(),
            ]
            .iter()
            .flatten()
            .filter(|r| r.fault.is_some())
            .count();
            if met >= faults {
                return std::time::Instant::now();
            }
            assert!(
                std::time::Instant::now() < until,
                "only {met} of {faults} faults were met"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Webhooks routing has handled (its inbox), for an in-process suite.
    pub async fn routed(&self) -> i64 {
        let store = &self.running.as_ref().expect("an in-process suite").store;
        sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = 'routing'")
            .fetch_one(store.pool())
            .await
            .expect("routing's inbox")
    }

    /// Kills (SIGKILL) every child process of the suite.
    pub fn kill_suite(&mut self) {
        for child in &mut self.children {
            child.kill();
        }
    }

    /// Kills (SIGKILL) the child process `name` ([`DESKIE_RUN`] or one of [`SERVICES`]).
    pub fn kill(&mut self, name: &str) {
        self.child(name).kill();
    }

    /// Starts the child process `name` again, on the same ports and with the same
    /// environment, and waits until it is ready (when it has ops endpoints).
    pub async fn restart(&mut self, name: &str) {
        let env = self.child_env.clone();
        self.child(name).start(&env).await;
    }

    fn child(&mut self, name: &str) -> &mut ChildService {
        self.children
            .iter_mut()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no child process {name}"))
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

/// A [`FaultProxy`] to where the URL in `vars[var]` points, and that URL pointed at the
/// proxy instead (`scheme://user@HOST:PORT/path` or `HOST:PORT`).
async fn proxy_var(
    vars: &mut std::collections::HashMap<&'static str, String>,
    var: &'static str,
) -> FaultProxy {
    let url = vars.get(var).cloned().expect("the URL to proxy");
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let before_path = rest.split('/').next().unwrap_or(rest);
    let authority = before_path
        .rsplit_once('@')
        .map_or(before_path, |(_, host)| host);
    let address = tokio::net::lookup_host(authority)
        .await
        .expect("upstream address")
        .next()
        .expect("an address");
    let proxy = FaultProxy::start(address).await;
    let proxied = url.replacen(authority, &format!("127.0.0.1:{}", proxy.port()), 1);
    vars.insert(var, proxied);
    proxy
}

/// Applies the migrations (`deskie migrate`), as the compose file does before the services.
fn migrate(env: &[(&'static str, String)]) {
    let status = std::process::Command::new(binary("deskie"))
        .arg("migrate")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("deskie migrate runs");
    assert!(status.success(), "deskie migrate failed");
}

/// The binary `name` (of the package of the same name) next to this test's executable
/// (`target/<profile>/NAME`), built first when missing.
fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = dir.join(name);
    if !path.exists() {
        let mut build = std::process::Command::new(env!("CARGO"));
        build.args(["build", "--bin", name, "-p", name]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        assert!(
            build.status().expect("cargo build").success(),
            "building {name} failed"
        );
    }
    path
}
