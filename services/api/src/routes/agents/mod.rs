//! `/api/v1/agents`: the admin adds, edits and disables agents and issues their tokens;
//! an agent sets its own online status.

mod input;
mod view;

use actix_web::{HttpResponse, web};
use deskie_store::read_models::agents;
use serde_json::Value;
use tracing_actix_web::RequestId;

pub use view::{AgentView, IssuedAgentView};

use super::{AppState, path_id};
use crate::ApiError;
use crate::auth::Principal;
use crate::commands::agents as commands;

/// `POST /api/v1/agents` → 201 with the agent's token, shown this once.
pub async fn create(
    state: web::Data<AppState>,
    request_id: RequestId,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let mut new = input::new_agent(body.into_inner())?;
    new.group_ids = input::existing_groups(&state.store, &new.group_ids).await?;
    let (agent, token) = commands::create(&state.store, new, &request_id.to_string()).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/agents/{}", agent.id)))
        .json(IssuedAgentView::new(agent, &token)))
}

/// `GET /api/v1/agents`: every agent, disabled ones included, oldest first.
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let views: Vec<AgentView> = agents::list(state.store.pool())
        .await?
        .into_iter()
        .map(AgentView::from)
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `GET /api/v1/agents/{id}`.
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let agent = agents::get(state.store.pool(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(AgentView::from(agent)))
}

/// `PATCH /api/v1/agents/{id}`: edits the profile; `"disabled": true` disables for good.
pub async fn update(
    state: web::Data<AppState>,
    request_id: RequestId,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let mut patch = input::agent_patch(body.into_inner())?;
    if let Some(ids) = &patch.group_ids {
        patch.group_ids = Some(input::existing_groups(&state.store, ids).await?);
    }
    let agent = commands::update(&state.store, id, patch, &request_id.to_string()).await?;
    Ok(HttpResponse::Ok().json(AgentView::from(agent)))
}

/// `POST /api/v1/agents/{id}/token` → 200 with a new token; the old one stops working.
pub async fn rotate_token(
    state: web::Data<AppState>,
    request_id: RequestId,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let (agent, token) = commands::rotate_token(&state.store, id, &request_id.to_string()).await?;
    Ok(HttpResponse::Ok().json(IssuedAgentView::new(agent, &token)))
}

/// `PUT /api/v1/agents/me/status` → 200 with the calling agent; `{"status": "online"}` or
/// `"offline"`. Agents only ([`crate::auth::agent_only`] refuses the admin before the body).
pub async fn set_my_status(
    state: web::Data<AppState>,
    request_id: RequestId,
    principal: Principal,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = principal
        .agent_id()
        .ok_or(ApiError::Forbidden(AGENTS_ONLY))?;
    let status = input::agent_status(body.into_inner())?;
    let agent = commands::set_status(&state.store, id, status, &request_id.to_string()).await?;
    Ok(HttpResponse::Ok().json(AgentView::from(agent)))
}

/// Why the admin gets 403 on an agent's own resources.
pub const AGENTS_ONLY: &str =
    "only an agent has a status: call this with the agent's own token, not the admin token";
