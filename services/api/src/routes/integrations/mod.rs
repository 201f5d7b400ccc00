//! `/api/v1/integrations/chatra`: connecting Chatra accounts.

mod input;
mod view;

use actix_web::{HttpResponse, web};
use deskie_store::read_models::integrations;
use serde_json::Value;
use tracing_actix_web::RequestId;

pub use view::IntegrationView;

use super::{AppState, path_id};
use crate::ApiError;
use crate::commands::integrations as commands;

/// `POST /api/v1/integrations/chatra` → 201; the key check runs in the background.
pub async fn connect(
    state: web::Data<AppState>,
    request_id: RequestId,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let new = input::new_integration(body.into_inner())?;
    input::ensure_groups_exist(
        &state.store,
        Some(new.default_group_id),
        Some(&new.group_mappings),
    )
    .await?;
    let integration =
        commands::connect(&state.store, &state.cipher, new, &request_id.to_string()).await?;
    state.key_checks.request(integration.id);
    let location = format!("/api/v1/integrations/chatra/{}", integration.id);
    Ok(HttpResponse::Created()
        .insert_header(("Location", location))
        .json(state.view(integration)))
}

/// `GET /api/v1/integrations/chatra`: connected integrations, oldest first.
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let views: Vec<IntegrationView> = integrations::list(state.store.pool())
        .await?
        .into_iter()
        .map(|integration| state.view(integration))
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `GET /api/v1/integrations/chatra/{id}`.
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let integration = integrations::get(state.store.pool(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(state.view(integration)))
}

/// `PATCH /api/v1/integrations/chatra/{id}`: partial update, optionally a new webhook token.
pub async fn update(
    state: web::Data<AppState>,
    request_id: RequestId,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    let patch = input::integration_patch(body.into_inner())?;
    input::ensure_groups_exist(
        &state.store,
        patch.default_group_id,
        patch.group_mappings.as_deref(),
    )
    .await?;
    let (integration, changed) = commands::update(
        &state.store,
        &state.cipher,
        id,
        patch,
        &request_id.to_string(),
    )
    .await?
    .ok_or(ApiError::NotFound)?;
    if changed {
        // The read model sets every changed integration back to `pending` (a check answers
        // for one settings version), so any change, not only new keys, asks for a check.
        state.key_checks.request(integration.id);
    }
    Ok(HttpResponse::Ok().json(state.view(integration)))
}

/// `DELETE /api/v1/integrations/chatra/{id}` → 204; its webhook URL stops working.
pub async fn disconnect(
    state: web::Data<AppState>,
    request_id: RequestId,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id)?;
    if commands::disconnect(&state.store, id, &request_id.to_string()).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}

impl AppState {
    fn view(&self, integration: integrations::Integration) -> IntegrationView {
        IntegrationView::new(integration, &self.cipher, &self.public_url)
    }
}
