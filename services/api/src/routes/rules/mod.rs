//! `/api/v1/rules`: the admin's rules for Live Chat cases (docs/rules.md), and their dry run.

mod dry_run;
mod view;

use actix_web::{HttpResponse, web};
use deskie_store::read_models::rules;
use serde_json::{Map, Value};
use tracing_actix_web::RequestId;

pub use dry_run::{DEFAULT_CASES, MAX_CASES, dry_run};
pub use view::rule_view;

use super::{AppState, path_id};
use crate::ApiError;
use crate::commands::rules::{create_rule, delete_rule, update_rule};

/// `POST /api/v1/rules` → 201 the rule; 400 naming the field when it does not validate.
pub async fn create(
    state: web::Data<AppState>,
    request_id: RequestId,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let body = object(body.into_inner())?;
    let rule = create_rule(&state.store, &state.cipher, body, &request_id.to_string()).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/rules/{}", rule.id)))
        .json(rule_view(&rule, &state.cipher)))
}

/// `GET /api/v1/rules`: every rule, by trigger, then position, then id.
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let views: Vec<Value> = rules::list(state.store.pool())
        .await?
        .iter()
        .map(|rule| rule_view(rule, &state.cipher))
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `GET /api/v1/rules/{id}`.
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let rule = rules::get(state.store.pool(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(rule_view(&rule, &state.cipher)))
}

/// `PATCH /api/v1/rules/{id}`: top-level keys merged over the rule, then validated again.
pub async fn update(
    state: web::Data<AppState>,
    request_id: RequestId,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let patch = object(body.into_inner())?;
    let cause = request_id.to_string();
    let rule = update_rule(&state.store, &state.cipher, id, patch, &cause).await?;
    Ok(HttpResponse::Ok().json(rule_view(&rule, &state.cipher)))
}

/// `DELETE /api/v1/rules/{id}` → 204.
pub async fn delete(
    state: web::Data<AppState>,
    request_id: RequestId,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    delete_rule(&state.store, id, &request_id.to_string()).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid("body", "the body must be a JSON object")),
    }
}
