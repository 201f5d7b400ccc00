//! A service binary run as ops run it: its own process, its ops endpoints on a free port,
//! killed when the test is done (or fails).

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (free when asked; good enough for a test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running service binary, killed (SIGKILL) when dropped.
pub struct ServiceProcess {
    child: Child,
    /// `http://127.0.0.1:PORT` of its ops endpoints; `None` for a binary without them.
    base: Option<String>,
}

impl ServiceProcess {
    /// Starts `program` with `envs`, serving its ops endpoints on a free port set through
    /// `addr_var`; logs only warnings, stdout discarded.
    pub fn spawn(program: &str, envs: &[(&str, &str)], addr_var: &str) -> Self {
        Self::spawn_with_args(program, &[], envs, addr_var)
    }

    /// [`ServiceProcess::spawn`] with command-line arguments (e.g. `deskie relay`).
    pub fn spawn_with_args(
        program: &str,
        args: &[&str],
        envs: &[(&str, &str)],
        addr_var: &str,
    ) -> Self {
        Self::spawn_on(program, args, envs, Some((addr_var, free_port())))
    }

    /// Starts `program` with `args` and `envs`; with `ops`, its ops endpoints on that port
    /// (set through that variable), so a restarted service answers where the killed one
    /// did. Logs only warnings, stdout discarded.
    pub fn spawn_on(
        program: &str,
        args: &[&str],
        envs: &[(&str, &str)],
        ops: Option<(&str, u16)>,
    ) -> Self {
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        if let Some((addr_var, port)) = ops {
            command.env(addr_var, format!("127.0.0.1:{port}"));
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{program} does not start: {e}"));
        Self {
            child,
            base: ops.map(|(_, port)| format!("http://127.0.0.1:{port}")),
        }
    }

    /// `http://127.0.0.1:PORT`, where its ops endpoints (for `deskie run`, the API) listen.
    pub fn base(&self) -> &str {
        self.base
            .as_deref()
            .expect("a service started with ops endpoints")
    }

    /// `GET path` on the ops port: the status and the body.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::get(format!("{}{path}", self.base())).await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.unwrap_or_default()))
    }

    /// Waits (up to 30 s) for `/readyz` to answer 200; returns its JSON.
    pub async fn ready(&self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some((200, body)) = self.get("/readyz").await {
                return serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
            }
            assert!(Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the process now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `program` to its end with `envs` plus `var=value`; what it printed and how it ended.
pub fn run_with(program: &str, envs: &[(&str, &str)], var: &str, value: &str) -> Output {
    Command::new(program)
        .envs(envs.iter().copied())
        .env(var, value)
        .output()
        .unwrap_or_else(|e| panic!("{program} does not run: {e}"))
}

/// An encryption key for service binaries under test.
pub const TEST_ENCRYPTION_KEY: &str =
    "abababababababababababababababababababababababababababababababab";

/// Runs the service binary `program` once per `(var, value)` in `bad` (with a usable key and a
/// database nobody listens on) and asserts each run fails naming `var` on stderr.
pub fn assert_bad_variables_are_named(program: &str, bad: &[(&str, &str)]) {
    let base = [
        ("DESKIE_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY),
        (
            "DESKIE_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/never",
        ),
    ];
    for (var, value) in bad {
        let output = run_with(program, &base, var, value);
        assert!(!output.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(var), "{var} not named: {stderr}");
    }
}

/// Starts the service binary `program` on a fresh database and NATS prefix, its ops port set
/// through `addr_var`, and asserts it becomes ready (NATS and database checked), answers
/// `/healthz` and serves `metric` on `/metrics`.
pub async fn assert_serves_ops(program: &str, addr_var: &str, metric: &str) {
    let (db, nats) = (crate::TestDb::create().await, crate::TestNats::new());
    let envs = [
        ("DESKIE_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY),
        ("DESKIE_DATABASE_URL", db.url()),
        ("DESKIE_NATS_URL", nats.url()),
        ("DESKIE_NATS_PREFIX", nats.prefix()),
    ];
    let service = ServiceProcess::spawn(program, &envs, addr_var);
    let ready = service.ready().await;
    assert_eq!(ready["checks"]["nats"], true);
    assert_eq!(ready["checks"]["database"], true);
    assert_eq!(service.get("/healthz").await.map(|(s, _)| s), Some(200));
    let (_, metrics) = service.get("/metrics").await.expect("metrics");
    assert!(metrics.contains(metric), "{metrics}");
}
