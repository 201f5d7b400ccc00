//! `GET /clients/{id}`: the visitor card.

use reqwest::Method;
use serde_json::Value;

use crate::client::{ChatraClient, ChatraCredentials, client_path};
use crate::error::{ChatraError, excerpt};

impl ChatraClient {
    /// `GET /clients/{client_id}`: the visitor card, as Chatra's JSON (its keys are mostly
    /// undocumented; `deskie_domain::chatra::parse_visitor` reads it). A 2xx whose body is
    /// not JSON is [`ChatraError::BadResponse`]; an id of `.` or `..`, which would name
    /// another path, is refused unsent.
    pub async fn get_client(
        &self,
        creds: &ChatraCredentials,
        client_id: &str,
    ) -> Result<Value, ChatraError> {
        let path = client_path(client_id)?;
        let body = self.call(creds, Method::GET, &path, &()).await?;
        serde_json::from_str(&body).map_err(|e| ChatraError::BadResponse {
            reason: format!("visitor card is not JSON ({e}): {}", excerpt(&body, "")),
        })
    }
}
