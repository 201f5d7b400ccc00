//! `/api/v1/cases`: what agents (and the admin) see of cases and change on them.
//!
//! Agents see and act only on cases of channels in their `channel_access`: such a case gives
//! 403, and lists leave it out. Lists show cases without their messages; the detail has them.

mod history;
mod input;
mod query;
mod view;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use deskie_store::read_models::cases::{self, CaseFilter, CaseView};
use serde_json::Value;
use tracing_actix_web::RequestId;
use uuid::Uuid;

pub use history::{EventJson, data as event_data, time as event_time};
pub use view::CaseJson;

use super::{AppState, path_id};
use crate::ApiError;
use crate::auth::Principal;
use crate::channels;
use crate::commands::cases::{self as commands, CaseWithMessages, ensure_access};

/// `GET /api/v1/cases`: cases the caller may see, newest first, a page at a time. When more
/// follow, `Link: <…&cursor=X>; rel="next"` and `X-Next-Cursor: X` say where.
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query::CaseQuery { mut filter, pairs } = query::parse(request.query_string())?;
    if !restrict_to_access(&principal, &mut filter) {
        return Ok(HttpResponse::Ok().json(Vec::<CaseJson>::new()));
    }
    let limit = usize::try_from(filter.limit).unwrap_or(0);
    // One more than the page: whether it comes back says whether a next page exists.
    filter.limit += 1;
    let mut page: Vec<CaseView> = cases::list(state.store.pool(), &filter)
        .await?
        .into_iter()
        .filter(|case| principal.may_access(&case.channel))
        .collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let mut response = HttpResponse::Ok();
    if let Some(last) = page.last().filter(|_| more) {
        let cursor = query::encode_cursor(last.created_at, last.id);
        let link = format!("<{}>; rel=\"next\"", next_url(&request, &pairs, &cursor));
        for (name, value) in [("link", link), ("x-next-cursor", cursor)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.insert_header((HeaderName::from_static(name), value));
            }
        }
    }
    let items: Vec<CaseJson> = page.into_iter().map(CaseJson::summary).collect();
    Ok(response.json(items))
}

/// `GET /api/v1/cases/{id}`: the case with its messages.
pub async fn get(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: Uuid = path_id(&id)?;
    let (case, messages) = cases::get_with_messages(state.store.pool(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    ensure_access(&principal, &case)?;
    Ok(HttpResponse::Ok().json(CaseJson::detail(case, messages)))
}

/// `GET /api/v1/cases/{id}/events`: the case's whole history from the event store, oldest
/// first.
pub async fn events(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let case = visible_case(&state, &principal, &id).await?;
    let history: Vec<EventJson> = state
        .store
        .load_stream(case.id)
        .await?
        .into_iter()
        .map(|stored| EventJson::from(stored.envelope))
        .collect();
    Ok(HttpResponse::Ok().json(history))
}

/// `PATCH /api/v1/cases/{id}` `{status?, assignee_id?, group_id?}`.
pub async fn change(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let case = visible_case(&state, &principal, &id).await?;
    let change = input::case_change(body.into_inner())?;
    let cause = request_id.to_string();
    let changed = commands::change(&state.store, &principal, case.id, change, &cause).await?;
    Ok(detail(changed))
}

/// `PUT /api/v1/cases/{id}/customer` `{name?, email?, phone?}`: a hand edit.
pub async fn edit_customer(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let case = visible_case(&state, &principal, &id).await?;
    let edit = input::customer_edit(body.into_inner())?;
    let cause = request_id.to_string();
    let edited = commands::edit_customer(&state.store, &principal, case.id, edit, &cause).await?;
    Ok(detail(edited))
}

/// `POST /api/v1/cases/{id}/replies` `{text}` → 202 `{message_id}`: the reply is recorded
/// (`delivery: "pending"`) and handed to the outbound delivery.
pub async fn reply(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let case = visible_case(&state, &principal, &id).await?;
    let text = input::reply_text(body.into_inner())?;
    let cause = request_id.to_string();
    let message_id =
        commands::request_reply(&state.store, &principal, case.id, text, &cause).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "message_id": message_id })))
}

fn detail(case: CaseWithMessages) -> HttpResponse {
    HttpResponse::Ok().json(CaseJson::detail(case.case, case.messages))
}

/// The case named by the path, if it exists (404) and the caller may see it (403). Checked
/// before a body is validated, so an agent learns nothing from a 400 on a case it cannot see.
async fn visible_case(
    state: &AppState,
    principal: &Principal,
    raw_id: &str,
) -> Result<CaseView, ApiError> {
    let id: Uuid = path_id(raw_id)?;
    let case = cases::get(state.store.pool(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    ensure_access(principal, &case)?;
    Ok(case)
}

/// Narrows `filter` to the channels `principal` may see; `false` when that leaves none.
/// (With one known channel an agent sees all or nothing; should several channels come and
/// an agent see only some, the list is filtered once more after the query.)
fn restrict_to_access(principal: &Principal, filter: &mut CaseFilter) -> bool {
    if let Some(channel) = &filter.channel {
        return principal.may_access(channel);
    }
    let allowed: Vec<&str> = channels::KNOWN
        .iter()
        .copied()
        .filter(|c| principal.may_access(c))
        .collect();
    match allowed.as_slice() {
        [] => false,
        [only] if allowed.len() < channels::KNOWN.len() => {
            filter.channel = Some((*only).to_owned());
            true
        }
        _ => true,
    }
}

/// The absolute URL of the next page: this request's parameters with the new cursor.
fn next_url(request: &HttpRequest, pairs: &[(String, String)], cursor: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        query.append_pair(key, value);
    }
    query.append_pair("cursor", cursor);
    let info = request.connection_info();
    format!(
        "{}://{}{}?{}",
        info.scheme(),
        info.host(),
        request.path(),
        query.finish()
    )
}
