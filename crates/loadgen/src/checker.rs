//! The checker: compares the ledger with what the API shows and what the stand-ins received.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deskie_testkit::RecordedRequest;
use serde_json::Value;

use crate::dead_letters::dead_letter_count;
use crate::error::LoadError;
use crate::ledger::{Kind, Ledger};
use crate::plan::Plan;
use crate::report::Report;
use crate::sinks::Sinks;
use crate::target::Target;

/// Checks one load run against the suite it drove.
#[derive(Debug)]
pub struct Checker {
    target: Target,
    sinks: Arc<Sinks>,
    ledger: Ledger,
    plan: Plan,
    nats: Option<(String, String)>,
    http: reqwest::Client,
}

impl Checker {
    /// A checker of `plan` as recorded in `ledger`; with `nats` (URL and prefix) it also
    /// counts dead letters.
    pub fn new(
        target: Target,
        sinks: Arc<Sinks>,
        ledger: Ledger,
        plan: Plan,
        nats: Option<(String, String)>,
    ) -> Self {
        Self {
            target,
            sinks,
            ledger,
            plan,
            nats,
            http: reqwest::Client::new(),
        }
    }

    /// Polls until the suite did everything the ledger asked for and the stand-ins saw no new
    /// call between two looks a second apart, or until `deadline` after `fault_ended`; the
    /// report of the last look, with the drain time from `fault_ended` when it settled.
    pub async fn wait_drained(
        &self,
        fault_ended: Instant,
        deadline: Duration,
    ) -> Result<Report, LoadError> {
        // The first look of the current settled run, and the stand-in traffic it saw.
        let mut settled: Option<(Duration, [u64; 4])> = None;
        let mut messages_drain = None;
        loop {
            let looked = fault_ended.elapsed();
            let mut report = self.observe().await?;
            if messages_drain.is_none() && report.lost_messages == 0 {
                messages_drain = Some(looked);
            }
            report.messages_drain = messages_drain;
            let traffic = [
                report.chatra_replies as u64,
                report.slack_posts as u64,
                report.telegram_posts as u64,
                report.dead_letters,
            ];
            if report.settled() {
                match settled {
                    Some((since, seen)) if seen == traffic => {
                        report.drain = Some(since);
                        return Ok(report);
                    }
                    _ => settled = Some((looked, traffic)),
                }
            } else {
                settled = None;
            }
            if looked > deadline {
                return Ok(report);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// One full look: the ledger against the API, the stand-ins and the dead letters.
    pub async fn observe(&self) -> Result<Report, LoadError> {
        let records = self.ledger.records();
        let mut report = Report {
            ledger: self.ledger.totals(),
            ..Report::default()
        };
        // Which of each visitor's messages were accepted, and which were sent at all.
        let mut acked: HashMap<usize, HashSet<usize>> = HashMap::new();
        let mut sent: HashSet<usize> = HashSet::new();
        for record in &records {
            match record.kind {
                Kind::Message {
                    visitor, message, ..
                } => {
                    sent.insert(visitor);
                    if record.acked() {
                        acked.entry(visitor).or_default().insert(message);
                    }
                }
                Kind::Poison(_) if record.acked() => report.poison_acked += 1,
                _ => {}
            }
        }
        report.chats = acked.len();
        report.messages_acked = acked.values().map(HashSet::len).sum();

        let replies = self.sinks.chatra_replies();
        let slack = self.sinks.slack_posts();
        let telegram = self.sinks.telegram_posts();
        report.chatra_replies = replies.len();
        report.slack_posts = slack.len();
        report.telegram_posts = telegram.len();
        // A call the stand-in refused or never answered left no effect: not a duplicate.
        report.calls_without_effect = [&replies, &slack, &telegram]
            .iter()
            .map(|calls| calls.iter().filter(|r| !r.took_effect()).count())
            .sum();
        let (replies, slack, telegram) =
            (effective(replies), effective(slack), effective(telegram));
        let replies_by_client =
            count_by(&replies, |r| r.body["clientId"].as_str().map(str::to_owned));
        let slack_by_case = count_by(&slack, |r| case_in(&r.body["text"]));
        let telegram_by_case = count_by(&telegram, |r| case_in(&r.body["text"]));

        let mut known_clients = HashSet::new();
        let mut known_cases = HashSet::new();
        for visitor in self.plan.visitors() {
            let case_id = self.target.case_id(&visitor.client_id, &visitor.chat_id);
            let case_key = case_id.to_string();
            if sent.contains(&visitor.index) {
                known_clients.insert(visitor.client_id.clone());
                known_cases.insert(case_key.clone());
            }
            let n_replies = replies_by_client
                .get(&visitor.client_id)
                .copied()
                .unwrap_or(0);
            report.duplicate_replies += n_replies.saturating_sub(1);
            for by_case in [&slack_by_case, &telegram_by_case] {
                let n = by_case.get(&case_key).copied().unwrap_or(0);
                report.duplicate_notifications += n.saturating_sub(1);
            }
            let Some(accepted) = acked.get(&visitor.index) else {
                continue;
            };
            if n_replies == 0 {
                report.missing_replies += 1;
            }
            // Only chats of the sales group are notified (see `Target`).
            if visitor.chatra_group.is_none() {
                for by_case in [&slack_by_case, &telegram_by_case] {
                    report.effects_without_cause += by_case.get(&case_key).copied().unwrap_or(0);
                }
            } else {
                for by_case in [&slack_by_case, &telegram_by_case] {
                    if by_case.get(&case_key).copied().unwrap_or(0) == 0 {
                        report.missing_notifications += 1;
                    }
                }
            }
            let Some(case) = self.get(&format!("/cases/{case_id}")).await? else {
                report.lost_messages += accepted.len();
                report.unsettled_replies += 1;
                continue;
            };
            let messages = case["messages"].as_array().cloned().unwrap_or_default();
            for &k in accepted {
                let text = visitor.messages.get(k).map(|(_, t)| t.as_str());
                let shown = messages
                    .iter()
                    .filter(|m| m["author"] == "customer" && m["text"].as_str() == text)
                    .count();
                if shown == 0 {
                    report.lost_messages += 1;
                }
                report.duplicate_messages += shown.saturating_sub(1);
            }
            let greetings: Vec<&Value> =
                messages.iter().filter(|m| m["source"] == "rule").collect();
            if greetings.is_empty() || greetings.iter().any(|m| m["delivery"] != "sent") {
                report.unsettled_replies += 1;
            }
            let expected_group = match visitor.chatra_group {
                Some(_) => &self.target.sales_group,
                None => &self.target.default_group,
            };
            if case["group_id"].as_str() != Some(expected_group.as_str()) {
                report.wrong_groups += 1;
            }
            let events = self
                .get(&format!("/cases/{case_id}/events"))
                .await?
                .and_then(|e| e.as_array().cloned())
                .unwrap_or_default();
            let received = count_values(&events, "customer_message_received", |e| {
                e["data"]["chatra_message_id"].as_str().map(str::to_owned)
            });
            report.duplicate_messages += received
                .values()
                .map(|n| n.saturating_sub(1))
                .sum::<usize>();
            let decided = events
                .iter()
                .filter(|e| e["type"] == "reply_requested" && e["data"]["source"] == "rule")
                .count();
            report.duplicate_greetings += decided.saturating_sub(1);
            report.settled_by_echo += events
                .iter()
                .filter(|e| e["type"] == "reply_delivered" && e["data"]["settled_by"] == "echo")
                .count();
        }
        report.effects_without_cause += replies_by_client
            .keys()
            .filter(|c| !known_clients.contains(*c))
            .count();
        for by_case in [&slack_by_case, &telegram_by_case] {
            report.effects_without_cause +=
                by_case.keys().filter(|c| !known_cases.contains(*c)).count();
        }
        report.effects_without_cause += self
            .all_case_ids()
            .await?
            .iter()
            .filter(|id| !known_cases.contains(*id))
            .count();
        if let Some((url, prefix)) = &self.nats {
            report.dead_letters = dead_letter_count(url, prefix).await?;
            let poison = report.poison_acked as u64;
            report.unexpected_dead_letters = report.dead_letters.saturating_sub(poison);
            report.missing_dead_letters = poison.saturating_sub(report.dead_letters);
        }
        Ok(report)
    }

    /// Every case id the API lists, following the pages.
    async fn all_case_ids(&self) -> Result<Vec<String>, LoadError> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/cases?limit=200", self.target.api);
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let response = self
                .http
                .get(&url)
                .bearer_auth(&self.target.admin)
                .send()
                .await
                .map_err(|e| LoadError::api("GET /cases", e))?;
            if !response.status().is_success() {
                return Err(LoadError::api("GET /cases", response.status()));
            }
            let next = response
                .headers()
                .get("X-Next-Cursor")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let page: Value = response
                .json()
                .await
                .map_err(|e| LoadError::api("GET /cases", e))?;
            let cases = page
                .as_array()
                .ok_or_else(|| LoadError::shape("GET /cases", &page))?;
            ids.extend(
                cases
                    .iter()
                    .filter_map(|c| c["id"].as_str().map(str::to_owned)),
            );
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(ids),
            }
        }
    }

    /// `GET {api}{path}` as the admin: the JSON on 200, `None` on 404.
    async fn get(&self, path: &str) -> Result<Option<Value>, LoadError> {
        let response = self
            .http
            .get(format!("{}{path}", self.target.api))
            .bearer_auth(&self.target.admin)
            .send()
            .await
            .map_err(|e| LoadError::api(format!("GET {path}"), e))?;
        match response.status().as_u16() {
            404 => Ok(None),
            200 => response
                .json()
                .await
                .map(Some)
                .map_err(|e| LoadError::api(format!("GET {path}"), e)),
            status => Err(LoadError::api(format!("GET {path}"), status)),
        }
    }
}

/// How many requests each key names.
/// The calls that took effect at the stand-in.
fn effective(calls: Vec<RecordedRequest>) -> Vec<RecordedRequest> {
    calls
        .into_iter()
        .filter(RecordedRequest::took_effect)
        .collect()
}

fn count_by(
    requests: &[RecordedRequest],
    key: impl Fn(&RecordedRequest) -> Option<String>,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in requests {
        *counts.entry(key(request).unwrap_or_default()).or_default() += 1;
    }
    counts
}

/// How many events of `event_type` each key names.
fn count_values(
    events: &[Value],
    event_type: &str,
    key: impl Fn(&Value) -> Option<String>,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for event in events.iter().filter(|e| e["type"] == event_type) {
        *counts.entry(key(event).unwrap_or_default()).or_default() += 1;
    }
    counts
}

/// The case id a notification's text names (after "case ").
fn case_in(text: &Value) -> Option<String> {
    let text = text.as_str()?;
    let (_, rest) = text.rsplit_once("case ")?;
    Some(rest.trim().to_owned())
}
