//! Posting webhooks as a provider does: the same body again after a non-2xx or a timeout,
//! with growing pauses, until a 2xx or the provider gives up.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::ledger::{Answer, Kind, Ledger};

/// When and how long to resend.
#[derive(Debug, Clone, Copy)]
pub struct ResendPolicy {
    /// How long one attempt may wait for its answer.
    pub attempt_timeout: Duration,
    /// Pause after the first failed attempt; doubled each time up to `max_pause`.
    pub first_pause: Duration,
    /// Upper bound of the pause.
    pub max_pause: Duration,
    /// After this long since the first attempt the webhook is given up (left unacked).
    pub give_up_after: Duration,
}

impl Default for ResendPolicy {
    /// 10 s per attempt, pauses 250 ms doubling to 4 s, give up after 10 minutes.
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_secs(10),
            first_pause: Duration::from_millis(250),
            max_pause: Duration::from_secs(4),
            give_up_after: Duration::from_secs(600),
        }
    }
}

/// Posts webhooks to one ingest URL and records every attempt in the ledger.
#[derive(Debug, Clone)]
pub struct Sender {
    http: reqwest::Client,
    url: String,
    ledger: Ledger,
    policy: ResendPolicy,
    stop: CancellationToken,
}

impl Sender {
    /// A sender to `webhook_url` (token included) recording in `ledger`; it stops resending
    /// when `stop` is cancelled.
    pub fn new(
        webhook_url: &str,
        ledger: Ledger,
        policy: ResendPolicy,
        stop: CancellationToken,
    ) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: webhook_url.to_owned(),
            ledger,
            policy,
            stop,
        }
    }

    /// The ledger it records in.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Delivers `body` as `kind`, resending the same bytes until a 2xx; whether it got one.
    pub async fn send(&self, kind: Kind, body: &Value) -> bool {
        let body = body.to_string();
        let index = self.ledger.open(kind, body.clone());
        let first = Instant::now();
        let mut pause = self.policy.first_pause;
        loop {
            let sent = Instant::now();
            let answer = self.attempt(&body).await;
            let success = answer.is_success();
            self.ledger.attempt(index, sent, answer);
            if success {
                return true;
            }
            if first.elapsed() >= self.policy.give_up_after {
                return false;
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.stop.cancelled() => return false,
            }
            pause = (pause * 2).min(self.policy.max_pause);
        }
    }

    async fn attempt(&self, body: &str) -> Answer {
        let request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .timeout(self.policy.attempt_timeout)
            .send();
        match request.await {
            Ok(response) => Answer::Status(response.status().as_u16()),
            Err(error) if error.is_timeout() => Answer::Timeout,
            Err(error) => Answer::Transport(transport_reason(&error)),
        }
    }
}

/// A short reason for a failed exchange (the innermost cause).
fn transport_reason(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(inner) = source.source() {
        source = inner;
    }
    source.to_string()
}
