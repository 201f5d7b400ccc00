//! An integration as the admin sees it: settings, webhook URL and key status, never the
//! secret key.

use chrono::{DateTime, Utc};
use deskie_config::Cipher;
use deskie_store::read_models::integrations::{GroupMapping, Integration};
use serde::Serialize;
use uuid::Uuid;

use crate::webhook_token::WebhookToken;

/// The JSON shape of an integration.
#[derive(Debug, Serialize)]
pub struct IntegrationView {
    id: Uuid,
    public_key: String,
    default_group_id: Uuid,
    panel: String,
    group_mappings: Vec<GroupMapping>,
    /// `null` only when the stored token cannot be decrypted (wrong encryption key).
    webhook_url: Option<String>,
    webhook_token: Option<String>,
    status: String,
    status_checked_at: Option<DateTime<Utc>>,
    status_detail: Option<String>,
    /// The identity replies without an agent go to Chatra under (defaults applied).
    sender_name: String,
    sender_email: String,
    /// Whether agents' online status reaches Chatra.
    agent_status_sync: AgentStatusSyncView,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// agent-sync's verdict on the agent-online pings (`docs/services/agent-sync.md`).
#[derive(Debug, Serialize)]
pub struct AgentStatusSyncView {
    /// "unknown" (no ping yet), "working" or "failing".
    status: String,
    /// The HTTP status behind the verdict, e.g. 404 when Chatra does not know the ping path.
    http_status: Option<i32>,
    /// Since when the verdict stands.
    since: Option<DateTime<Utc>>,
    /// What Chatra said with a refusal.
    detail: Option<String>,
}

impl IntegrationView {
    /// Decrypts the webhook token to show it with its URL.
    pub fn new(integration: Integration, cipher: &Cipher, public_url: &str) -> Self {
        let token = match cipher.decrypt_string(&integration.webhook_token_encrypted) {
            Ok(token) => Some(WebhookToken::from_plaintext(token)),
            Err(error) => {
                tracing::warn!(integration_id = %integration.id, %error, "webhook token cannot be shown");
                None
            }
        };
        let sender = integration.sender();
        Self {
            id: integration.id,
            webhook_url: token
                .as_ref()
                .map(|t| crate::webhook_token::webhook_url(t, public_url, integration.id)),
            webhook_token: token.map(|t| t.expose().to_owned()),
            public_key: integration.public_key,
            default_group_id: integration.default_group_id,
            panel: integration.panel,
            group_mappings: integration.group_mappings,
            sender_name: sender.name,
            sender_email: sender.email,
            agent_status_sync: AgentStatusSyncView {
                status: integration.agent_sync_status,
                http_status: integration.agent_sync_http_status,
                since: integration.agent_sync_since,
                detail: integration.agent_sync_detail,
            },
            status: integration.status,
            status_checked_at: integration.status_checked_at,
            status_detail: integration.status_detail,
            created_at: integration.created_at,
            updated_at: integration.updated_at,
        }
    }
}
