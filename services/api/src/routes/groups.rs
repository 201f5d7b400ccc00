//! `/api/v1/groups`: Deskie groups.

use std::collections::HashSet;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deskie_store::Store;
use deskie_store::read_models::groups::{self, Group};
use serde::Serialize;
use serde_json::Value;
use tracing_actix_web::RequestId;
use uuid::Uuid;

use super::body::Fields;
use super::{AppState, path_id};
use crate::ApiError;
use crate::commands::groups::{create_group, rename_group};

/// Refuses, naming the field (`default_group_id`, `group_ids[1]`), the first id that names
/// no existing group; `named` pairs each field with its id. Groups are never deleted, so one
/// that exists now still exists when the request's events are written.
pub async fn ensure_groups_exist(
    store: &Store,
    named: impl IntoIterator<Item = (String, Uuid)>,
) -> Result<(), ApiError> {
    let named: Vec<(String, Uuid)> = named.into_iter().collect();
    if named.is_empty() {
        return Ok(());
    }
    // One read, however many ids: an agent may name up to 500 groups.
    let existing: HashSet<Uuid> = groups::list(store.pool())
        .await?
        .into_iter()
        .map(|group| group.id)
        .collect();
    match named.into_iter().find(|(_, id)| !existing.contains(id)) {
        Some((field, _)) => Err(ApiError::invalid(
            &field,
            format!("{field} names no existing group"),
        )),
        None => Ok(()),
    }
}

/// A group as the API shows it.
#[derive(Debug, Serialize)]
pub struct GroupView {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
}

impl From<Group> for GroupView {
    fn from(group: Group) -> Self {
        Self {
            id: group.id,
            name: group.name,
            created_at: group.created_at,
        }
    }
}

/// `POST /api/v1/groups` `{name}` → 201.
pub async fn create(
    state: web::Data<AppState>,
    request_id: RequestId,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let name = Fields::of_body(body.into_inner())?.required_text("name")?;
    let group = create_group(&state.store, name, &request_id.to_string()).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/groups/{}", group.id)))
        .json(GroupView::from(group)))
}

/// `GET /api/v1/groups`: every group, oldest first.
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let groups: Vec<GroupView> = groups::list(state.store.pool())
        .await?
        .into_iter()
        .map(GroupView::from)
        .collect();
    Ok(HttpResponse::Ok().json(groups))
}

/// `GET /api/v1/groups/{id}`.
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let group = groups::get(state.store.pool(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(GroupView::from(group)))
}

/// `PATCH /api/v1/groups/{id}` `{name}`: renames.
pub async fn rename(
    state: web::Data<AppState>,
    request_id: RequestId,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let name = Fields::of_body(body.into_inner())?.required_text("name")?;
    let group = rename_group(&state.store, id, name, &request_id.to_string())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(GroupView::from(group)))
}
