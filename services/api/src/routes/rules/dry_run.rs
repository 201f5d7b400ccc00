//! `POST /api/v1/rules/{id}/dry-run`: on which changes of the last N cases a rule would have
//! fired, replayed from their histories with the rules service's own pure functions, and
//! without any effect (nothing is appended, nothing is sent).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deskie_config::Cipher;
use deskie_domain::rules::{HistoryEvent, RuleSpec, ValidRule, context_at, evaluate, validate};
use deskie_proto::events::{Envelope, Event};
use deskie_store::StoredEvent;
use deskie_store::read_models::cases::{self, CaseFilter};
use deskie_store::read_models::rules::{self, StoredRule};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::ApiError;
use crate::routes::body::Fields;
use crate::routes::cases::event_time;
use crate::routes::{AppState, MAX_BODY_BYTES, path_id};

/// Cases replayed when the body names no number.
pub const DEFAULT_CASES: i64 = 50;
/// The most cases one dry run replays.
pub const MAX_CASES: i64 = 500;

/// The answer.
#[derive(Debug, Serialize)]
pub struct DryRun {
    rule_id: Uuid,
    cases_checked: usize,
    fired: Vec<WouldFire>,
}

/// One change the rule would have fired on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WouldFire {
    case_id: Uuid,
    /// The event that stands for the change (what the rules service evaluates).
    event_id: String,
    event_type: &'static str,
    at: Option<String>,
    matched_conditions: Vec<String>,
    /// The actions' types, in order.
    actions: Vec<&'static str>,
}

/// `POST /api/v1/rules/{id}/dry-run` `{"cases": N}?` → 200 [`DryRun`]; the newest N cases
/// (default 50, at most 500), each change oldest first.
pub async fn dry_run(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let stored = rules::get(state.store.pool(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let limit = cases_asked(&body)?;
    let rule = compile(&stored, &state.cipher)?;
    let filter = CaseFilter {
        channel: None,
        status: None,
        group_id: None,
        assignee_id: None,
        before: None,
        limit,
    };
    let newest = cases::list(state.store.pool(), &filter).await?;
    let mut fired = Vec::new();
    for case in &newest {
        let history = state.store.load_stream(case.id).await?;
        fired.extend(would_fire(&rule, case.id, &history));
    }
    Ok(HttpResponse::Ok().json(DryRun {
        rule_id: id,
        cases_checked: newest.len(),
        fired,
    }))
}

/// `cases` from an optional JSON body: absent, empty or `null` is [`DEFAULT_CASES`].
fn cases_asked(body: &[u8]) -> Result<i64, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DEFAULT_CASES);
    }
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("the body is not valid JSON: {e}")))?;
    let Some(cases) = Fields::of_body(body)?.get("cases").cloned() else {
        return Ok(DEFAULT_CASES);
    };
    cases
        .as_i64()
        .filter(|n| (1..=MAX_CASES).contains(n))
        .ok_or_else(|| {
            ApiError::invalid(
                "cases",
                format!("cases must be a whole number from 1 to {MAX_CASES}"),
            )
        })
}

/// The stored rule with its credentials decrypted, validated as if enabled: a dry run is how
/// an admin tries a rule out before switching it on.
fn compile(stored: &StoredRule, cipher: &Cipher) -> Result<ValidRule, ApiError> {
    let spec = stored.spec_with_secrets(|_, encrypted| cipher.decrypt_string(encrypted))?;
    let broken = |e: &dyn std::fmt::Display| {
        tracing::error!(rule_id = %stored.id, reason = %e, "stored rule does not validate");
        ApiError::WrongState("the stored rule does not validate; PATCH it first")
    };
    let mut spec: RuleSpec = serde_json::from_value(spec).map_err(|e| broken(&e))?;
    spec.enabled = true;
    validate(stored.id, &spec).map_err(|e| broken(&e))
}

/// Each change of `history` (oldest first) `rule` fires on, seen as the rules service sees
/// it: the case as of the end of the change's cause, business hours at the time it happened.
fn would_fire(rule: &ValidRule, case_id: Uuid, history: &[StoredEvent]) -> Vec<WouldFire> {
    let known: Vec<(&Envelope, &Event)> = history
        .iter()
        .filter_map(|stored| {
            let envelope = &stored.envelope;
            envelope.event.as_ref().map(|event| (envelope, event))
        })
        .collect();
    let seen: Vec<HistoryEvent<'_>> = known
        .iter()
        .filter_map(|(envelope, _)| HistoryEvent::of(envelope))
        .collect();
    let mut fired = Vec::new();
    for (index, (envelope, event)) in known.iter().enumerate() {
        let then = envelope
            .occurred_at
            .as_ref()
            .and_then(|ts| DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?))
            .unwrap_or_else(Utc::now);
        let Some(ctx) = context_at(case_id, &seen, index, then) else {
            continue;
        };
        for firing in evaluate(std::slice::from_ref(rule), &ctx) {
            fired.push(WouldFire {
                case_id,
                event_id: envelope.event_id.clone(),
                event_type: event.type_name(),
                at: event_time(envelope.occurred_at.as_ref()),
                matched_conditions: firing.matched_conditions,
                actions: firing.actions.iter().map(|action| action.kind()).collect(),
            });
        }
    }
    fired
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_defaults_to_50_and_is_1_to_500() {
        assert_eq!(cases_asked(b"").ok(), Some(DEFAULT_CASES));
        assert_eq!(cases_asked(b" {} ").ok(), Some(DEFAULT_CASES));
        assert_eq!(cases_asked(br#"{"cases": null}"#).ok(), Some(DEFAULT_CASES));
        assert_eq!(cases_asked(br#"{"cases": 500}"#).ok(), Some(500));
        for bad in [
            r#"{"cases": 0}"#,
            r#"{"cases": 501}"#,
            r#"{"cases": "5"}"#,
            r#"{"cases": 2.5}"#,
        ] {
            let Err(ApiError::Invalid { field, .. }) = cases_asked(bad.as_bytes()) else {
                panic!("{bad} accepted");
            };
            assert_eq!(field, "cases");
        }
        let Err(ApiError::Invalid { field, .. }) = cases_asked(b"[1]") else {
            panic!("an array accepted");
        };
        assert_eq!(field, "body");
    }
}
