//! Chatra integrations.

use chrono::{DateTime, Utc};
use deskie_proto::events::{Envelope, Event, IntegrationSettings};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use super::{occurred_at, stream_uuid, timestamp};
use crate::StoreError;

/// A Chatra group id mapped to a Deskie group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMapping {
    /// The id copied from Chatra's UI.
    pub chatra_group_id: String,
    /// The Deskie group.
    pub group_id: Uuid,
}

/// An integration as stored (secrets still encrypted).
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct Integration {
    /// Id.
    pub id: Uuid,
    /// Stream version last applied.
    pub version: i64,
    /// Chatra public key (not a secret: it is also the widget id).
    pub public_key: String,
    /// Chatra secret key, encrypted.
    pub secret_key_encrypted: Vec<u8>,
    /// Group for chats without a mapping.
    pub default_group_id: Uuid,
    /// "separate" or "informational".
    pub panel: String,
    /// Chatra group → Deskie group.
    #[sqlx(json)]
    pub group_mappings: Vec<GroupMapping>,
    /// Webhook token, encrypted.
    pub webhook_token_encrypted: Vec<u8>,
    /// SHA-256 of the webhook token.
    pub webhook_token_sha256: Vec<u8>,
    /// Version that last changed the settings.
    pub settings_version: i64,
    /// "pending", "connected", "invalid_keys" or "unreachable".
    pub status: String,
    /// When the keys were last checked.
    pub status_checked_at: Option<DateTime<Utc>>,
    /// Why the last check failed, if it did.
    pub status_detail: Option<String>,
    /// `sender_name` of the settings; empty = [`DEFAULT_SENDER_NAME`] (see [`Integration::sender`]).
    pub sender_name: String,
    /// `sender_email` of the settings; empty = [`DEFAULT_SENDER_EMAIL`].
    pub sender_email: String,
    /// Whether agents' online status reaches Chatra: "unknown" (no verdict yet), "working"
    /// or "failing" (agent-sync's `IntegrationAgentStatusSyncChanged`).
    pub agent_sync_status: String,
    /// The HTTP status behind the verdict.
    pub agent_sync_http_status: Option<i32>,
    /// Since when the verdict stands.
    pub agent_sync_since: Option<DateTime<Utc>>,
    /// What Chatra said with a refusal.
    pub agent_sync_detail: Option<String>,
    /// When it was disconnected (then it is no longer listed or served).
    pub disconnected_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The name replies without an agent are sent to Chatra under, unless the admin set one.
pub const DEFAULT_SENDER_NAME: &str = "Deskie";
/// The e-mail replies without an agent are sent under, unless the admin set one. Chatra adds
/// an agent with an e-mail it does not know (`chatra-api.md` §3, §8.3): this one then names
/// the integration's messages in Chatra's dashboard.
pub const DEFAULT_SENDER_EMAIL: &str = "chatra-bot@deskie.io";

/// The identity a reply without an agent is sent to Chatra under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// `agentName`.
    pub name: String,
    /// `agentEmail`.
    pub email: String,
}

impl Integration {
    /// The sender identity: the admin's, else the defaults.
    pub fn sender(&self) -> Sender {
        let or_default = |value: &str, default: &str| {
            if value.trim().is_empty() {
                default.to_owned()
            } else {
                value.to_owned()
            }
        };
        Sender {
            name: or_default(&self.sender_name, DEFAULT_SENDER_NAME),
            email: or_default(&self.sender_email, DEFAULT_SENDER_EMAIL),
        }
    }
}

/// What ingest needs to authenticate a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCredentials {
    /// SHA-256 of the webhook token.
    pub token_sha256: Vec<u8>,
}

const COLUMNS: &str = "id, version, public_key, secret_key_encrypted, default_group_id, panel, group_mappings,
    webhook_token_encrypted, webhook_token_sha256, settings_version, status, status_checked_at, status_detail,
    sender_name, sender_email, agent_sync_status, agent_sync_http_status, agent_sync_since, agent_sync_detail,
    disconnected_at, created_at, updated_at";

/// Connected integrations, oldest first.
pub async fn list(pool: &PgPool) -> Result<Vec<Integration>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM integrations WHERE disconnected_at IS NULL ORDER BY created_at, id"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?)
}

/// A connected integration.
pub async fn get(
    conn: impl sqlx::PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<Integration>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM integrations WHERE id = $1 AND disconnected_at IS NULL");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// The webhook credentials of a connected integration, `None` when unknown or disconnected.
pub async fn webhook_credentials(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<WebhookCredentials>, StoreError> {
    let hash: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT webhook_token_sha256 FROM integrations WHERE id = $1 AND disconnected_at IS NULL",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(hash.map(|token_sha256| WebhookCredentials { token_sha256 }))
}

/// Connected integrations whose API keys are due for a check: never checked since their
/// settings last changed (`pending`), or `unreachable` at a check before `unreachable_before`.
/// At most `limit`, those waiting longest first.
pub async fn due_for_key_check(
    pool: &PgPool,
    unreachable_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Uuid>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM integrations
          WHERE disconnected_at IS NULL
            AND (status = 'pending' OR (status = 'unreachable' AND status_checked_at < $1))
          ORDER BY COALESCE(status_checked_at, updated_at), id
          LIMIT $2",
    )
    .bind(unreachable_before)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Projects an integration event; one that may change the webhook credentials (connect,
/// update, disconnect) is announced afterwards ([`super::integration_changes`]), in the same
/// transaction, so the announcement is delivered exactly when the change commits.
pub(super) async fn apply(conn: &mut PgConnection, envelope: &Envelope) -> Result<(), StoreError> {
    let id = stream_uuid(envelope)?;
    let changes_credentials = matches!(
        envelope.event,
        Some(
            Event::IntegrationConnected(_)
                | Event::IntegrationUpdated(_)
                | Event::IntegrationDisconnected(_)
        )
    );
    project(conn, id, envelope).await?;
    if changes_credentials {
        super::integration_changes::announce(conn, id).await?;
    }
    Ok(())
}

async fn project(conn: &mut PgConnection, id: Uuid, envelope: &Envelope) -> Result<(), StoreError> {
    let at = occurred_at(envelope);
    let version = i64::try_from(envelope.version).unwrap_or(i64::MAX);
    match &envelope.event {
        Some(Event::IntegrationConnected(e)) => {
            let settings = e.settings.clone().unwrap_or_default();
            upsert_settings(conn, id, version, &settings, at).await
        }
        Some(Event::IntegrationUpdated(e)) => {
            let settings = e.settings.clone().unwrap_or_default();
            upsert_settings(conn, id, version, &settings, at).await
        }
        Some(Event::IntegrationDisconnected(_)) => {
            sqlx::query(
                "UPDATE integrations SET version = $2, disconnected_at = $3, updated_at = $3 WHERE id = $1 AND version < $2",
            )
            .bind(id)
            .bind(version)
            .bind(at)
            .execute(conn)
            .await?;
            Ok(())
        }
        Some(Event::IntegrationKeysChecked(e)) => {
            let checked_at = timestamp(e.checked_at.as_ref()).unwrap_or(at);
            // A check of older settings only moves the version, never the status.
            sqlx::query(
                "UPDATE integrations
                    SET version = $2,
                        status = CASE WHEN settings_version = $3 THEN $4 ELSE status END,
                        status_checked_at = CASE WHEN settings_version = $3 THEN $5 ELSE status_checked_at END,
                        status_detail = CASE WHEN settings_version = $3 THEN $6 ELSE status_detail END
                  WHERE id = $1 AND version < $2",
            )
            .bind(id)
            .bind(version)
            .bind(i64::try_from(e.settings_version).unwrap_or(i64::MAX))
            .bind(&e.status)
            .bind(checked_at)
            .bind(&e.detail)
            .execute(conn)
            .await?;
            Ok(())
        }
        Some(Event::IntegrationAgentStatusSyncChanged(e)) => {
            let since = timestamp(e.since.as_ref()).unwrap_or(at);
            sqlx::query(
                "UPDATE integrations
                    SET version = $2, agent_sync_status = $3, agent_sync_http_status = $4,
                        agent_sync_since = $5, agent_sync_detail = $6
                  WHERE id = $1 AND version < $2",
            )
            .bind(id)
            .bind(version)
            .bind(&e.status)
            .bind(e.http_status.and_then(|s| i32::try_from(s).ok()))
            .bind(since)
            .bind(&e.detail)
            .execute(conn)
            .await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn upsert_settings(
    conn: &mut PgConnection,
    id: Uuid,
    version: i64,
    settings: &IntegrationSettings,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let default_group_id: Uuid =
        settings
            .default_group_id
            .parse()
            .map_err(|_| StoreError::Corrupt {
                event_id: Uuid::nil(),
                reason: "default_group_id is not a UUID".into(),
            })?;
    let mappings: Vec<GroupMapping> = settings
        .group_mappings
        .iter()
        .filter_map(|m| {
            Some(GroupMapping {
                chatra_group_id: m.chatra_group_id.clone(),
                group_id: m.group_id.parse().ok()?,
            })
        })
        .collect();
    sqlx::query(
        "INSERT INTO integrations (id, version, public_key, secret_key_encrypted, default_group_id, panel, group_mappings,
                                   webhook_token_encrypted, webhook_token_sha256, settings_version, status,
                                   sender_name, sender_email, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $2, 'pending', $11, $12, $10, $10)
         ON CONFLICT (id) DO UPDATE SET
             version = EXCLUDED.version, public_key = EXCLUDED.public_key,
             secret_key_encrypted = EXCLUDED.secret_key_encrypted, default_group_id = EXCLUDED.default_group_id,
             panel = EXCLUDED.panel, group_mappings = EXCLUDED.group_mappings,
             webhook_token_encrypted = EXCLUDED.webhook_token_encrypted,
             webhook_token_sha256 = EXCLUDED.webhook_token_sha256,
             settings_version = EXCLUDED.settings_version, status = 'pending',
             sender_name = EXCLUDED.sender_name, sender_email = EXCLUDED.sender_email,
             status_checked_at = NULL, status_detail = NULL, updated_at = EXCLUDED.updated_at
         WHERE integrations.version < EXCLUDED.version",
    )
    .bind(id)
    .bind(version)
    .bind(&settings.public_key)
    .bind(&settings.secret_key_encrypted)
    .bind(default_group_id)
    .bind(&settings.panel)
    .bind(sqlx::types::Json(&mappings))
    .bind(&settings.webhook_token_encrypted)
    .bind(&settings.webhook_token_sha256)
    .bind(at)
    .bind(&settings.sender_name)
    .bind(&settings.sender_email)
    .execute(conn)
    .await?;
    Ok(())
}

/// An integration whether or not it was disconnected since: a webhook accepted before the
/// disconnect is still routed with the settings it came in under.
pub async fn get_including_disconnected(
    conn: impl sqlx::PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<Integration>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM integrations WHERE id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}
