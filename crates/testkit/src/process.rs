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
    base: String,
}

impl ServiceProcess {
    /// Starts `program` with `envs`, serving its ops endpoints on a free port set through
    /// `addr_var`; logs only warnings, stdout discarded.
    pub fn spawn(program: &str, envs: &[(&str, &str)], addr_var: &str) -> Self {
        let port = free_port();
        let child = Command::new(program)
            .envs(envs.iter().copied())
            .env(addr_var, format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} does not start: {e}"));
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// `GET path` on the ops port: the status and the body.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::get(format!("{}{path}", self.base)).await.ok()?;
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
