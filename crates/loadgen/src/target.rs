//! The suite under load, set up through its API: two groups, a Chatra integration mapping
//! the Chatra group `chatra-sales` to the second, one rule greeting every new chat (an
//! auto-reply to Chatra) and one telling Slack and Telegram about each new chat of the sales
//! group (only those: Slack and Telegram take about one message a second per webhook or
//! chat, and outbound keeps to that, so notifying every chat would make them the bottleneck).

use serde_json::{Value, json};

use crate::error::LoadError;
use crate::plan::SALES_CHATRA_GROUP;
use crate::sinks::{BOT_TOKEN, PUBLIC_KEY, SECRET_KEY, Sinks, TELEGRAM_CHAT};

/// The greeting's text: what Chatra receives once per new chat.
pub const GREETING: &str = "Hello {{customer.name}}, we are on it.";
/// The notification's text (Slack and Telegram): names the case, so each is traced to it.
pub const NOTIFICATION: &str = "New chat: case {{case.id}}";

/// A running suite as the load generator drives it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The API's base, e.g. `http://127.0.0.1:8081/api/v1`.
    pub api: String,
    /// The admin token.
    pub admin: String,
    /// Ingest's URL for the integration, token included.
    pub webhook_url: String,
    /// The integration's id.
    pub integration_id: uuid::Uuid,
    /// The group for chats without a mapped Chatra group.
    pub default_group: String,
    /// The group `chatra-sales` maps to.
    pub sales_group: String,
}

impl Target {
    /// Sets up the groups, the integration and the greeting rule on the suite whose API is
    /// at `api` (`…/api/v1`), with Chatra, Slack and Telegram at `sinks`.
    pub async fn connect(api: &str, admin: &str, sinks: &Sinks) -> Result<Self, LoadError> {
        let http = reqwest::Client::new();
        let post = |path: &'static str, body: Value| {
            let http = http.clone();
            let url = format!("{api}{path}");
            async move {
                let response = http
                    .post(&url)
                    .bearer_auth(admin)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| LoadError::api(path, e))?;
                let status = response.status();
                let answer: Value = response.json().await.map_err(|e| LoadError::api(path, e))?;
                if !status.is_success() {
                    return Err(LoadError::api(path, format!("{status}: {answer}")));
                }
                Ok::<Value, LoadError>(answer)
            }
        };
        let text = |v: &Value, key: &str, what: &str| {
            v[key]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| LoadError::shape(what, v))
        };
        let support = post("/groups", json!({"name": "Support"})).await?;
        let sales = post("/groups", json!({"name": "Sales"})).await?;
        let default_group = text(&support, "id", "group")?;
        let sales_group = text(&sales, "id", "group")?;
        let integration = post(
            "/integrations/chatra",
            json!({
                "public_key": PUBLIC_KEY, "secret_key": SECRET_KEY,
                "default_group_id": default_group, "panel": "separate",
                "group_mappings": [{"chatra_group_id": SALES_CHATRA_GROUP, "group_id": sales_group}],
            }),
        )
        .await?;
        let webhook_url = text(&integration, "webhook_url", "integration")?;
        let integration_id = text(&integration, "id", "integration")?
            .parse()
            .map_err(|_| LoadError::shape("integration id", &integration))?;
        post(
            "/rules",
            json!({
                "name": "Greet", "trigger": "case_created",
                "actions": [{"type": "reply", "text": GREETING}],
            }),
        )
        .await?;
        post(
            "/rules",
            json!({
                "name": "Tell the sales staff", "trigger": "case_created",
                "conditions": {"all": [{"field": "group_id", "op": "in", "value": [sales_group]}]},
                "actions": [
                    {"type": "notify_slack", "webhook_url": sinks.slack_webhook_url(), "text": NOTIFICATION},
                    {"type": "notify_telegram", "bot_token": BOT_TOKEN, "chat_id": TELEGRAM_CHAT, "text": NOTIFICATION},
                ],
            }),
        )
        .await?;
        Ok(Self {
            api: api.to_owned(),
            admin: admin.to_owned(),
            webhook_url,
            integration_id,
            default_group,
            sales_group,
        })
    }

    /// The case a visitor's chat becomes.
    pub fn case_id(&self, client_id: &str, chat_id: &str) -> uuid::Uuid {
        deskie_domain::case::case_id_for(self.integration_id, client_id, chat_id)
    }
}
