//! IntegrationConnected, IntegrationUpdated, IntegrationDisconnected, IntegrationKeysChecked.

use deskie_config::Cipher;
use deskie_proto::Timestamp;
use deskie_proto::events::{
    Event, GroupMapping as ProtoMapping, IntegrationConnected, IntegrationDisconnected,
    IntegrationKeysChecked, IntegrationSettings, IntegrationUpdated,
};
use deskie_store::read_models::integrations::{self, GroupMapping, Integration};
use deskie_store::{Store, StoreError, StreamKey, StreamTx};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::append_and_project;
use crate::webhook_token::WebhookToken;

/// The stream type of integrations.
pub const STREAM_TYPE: &str = "integration";

/// Where Deskie shows a Live Chat case's Chatra data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Panel {
    /// An integrations panel of its own.
    #[default]
    Separate,
    /// Under the user data, below "Latest cases".
    Informational,
}

impl Panel {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Separate => "separate",
            Self::Informational => "informational",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "separate" => Some(Self::Separate),
            "informational" => Some(Self::Informational),
            _ => None,
        }
    }
}

/// A validated request to connect a Chatra account.
#[derive(Debug)]
pub struct NewIntegration {
    /// Chatra public key.
    pub public_key: String,
    /// Chatra secret key.
    pub secret_key: SecretString,
    /// Group for chats without a mapping.
    pub default_group_id: Uuid,
    /// Panel mode.
    pub panel: Panel,
    /// Chatra group id → Deskie group, chatra ids unique.
    pub group_mappings: Vec<GroupMapping>,
    /// The sender identity's name; `None` = the default.
    pub sender_name: Option<String>,
    /// The sender identity's e-mail; `None` = the default.
    pub sender_email: Option<String>,
}

/// A validated partial update; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct IntegrationPatch {
    /// New public key.
    pub public_key: Option<String>,
    /// New secret key.
    pub secret_key: Option<SecretString>,
    /// New default group.
    pub default_group_id: Option<Uuid>,
    /// New panel mode.
    pub panel: Option<Panel>,
    /// New mappings (the whole list).
    pub group_mappings: Option<Vec<GroupMapping>>,
    /// Replace the webhook token (the old URL stops working).
    pub rotate_webhook_token: bool,
    /// New sender name; `Some(None)` goes back to the default.
    pub sender_name: Option<Option<String>>,
    /// New sender e-mail; `Some(None)` goes back to the default.
    pub sender_email: Option<Option<String>>,
}

/// What a key check found; the names are the `status` values of the read model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Chatra accepted the keys.
    Connected,
    /// Chatra refused the keys (401/403).
    InvalidKeys,
    /// No usable answer (network error, timeout, 5xx, 429, anything unexpected).
    Unreachable,
}

impl KeyStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::InvalidKeys => "invalid_keys",
            Self::Unreachable => "unreachable",
        }
    }
}

/// Connects a Chatra account with a fresh webhook token; secrets are stored only encrypted.
pub async fn connect(
    store: &Store,
    cipher: &Cipher,
    new: NewIntegration,
    cause: &str,
) -> Result<Integration, StoreError> {
    let id = Uuid::now_v7();
    let token = WebhookToken::generate();
    let settings = IntegrationSettings {
        public_key: new.public_key,
        secret_key_encrypted: cipher.encrypt(new.secret_key.expose_secret().as_bytes()),
        default_group_id: new.default_group_id.to_string(),
        panel: new.panel.as_str().to_owned(),
        group_mappings: to_proto(&new.group_mappings),
        webhook_token_encrypted: cipher.encrypt(token.expose().as_bytes()),
        webhook_token_sha256: token.sha256(),
        sender_name: new.sender_name.unwrap_or_default(),
        sender_email: new.sender_email.unwrap_or_default(),
    };
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    let event = Event::IntegrationConnected(IntegrationConnected {
        settings: Some(settings),
    });
    append_and_project(&mut tx, event, cause).await?;
    let integration = projected(&mut tx, id).await?;
    tx.commit().await?;
    Ok(integration)
}

/// Applies `patch` to integration `id`: `None` when it is unknown or disconnected, else the
/// integration and whether anything changed (an empty or no-op patch appends nothing).
pub async fn update(
    store: &Store,
    cipher: &Cipher,
    id: Uuid,
    patch: IntegrationPatch,
    cause: &str,
) -> Result<Option<(Integration, bool)>, StoreError> {
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    let Some(current) = integrations::get(tx.connection(), id).await? else {
        return Ok(None);
    };
    let before = settings_of(&current);
    let mut settings = before.clone();
    if let Some(public_key) = patch.public_key {
        settings.public_key = public_key;
    }
    if let Some(secret) = patch.secret_key {
        // Fresh nonces make every ciphertext differ: compare plaintexts, so re-sending the
        // same secret is no change.
        let unchanged = cipher
            .decrypt(&current.secret_key_encrypted)
            .is_ok_and(|old| old == secret.expose_secret().as_bytes());
        if !unchanged {
            settings.secret_key_encrypted = cipher.encrypt(secret.expose_secret().as_bytes());
        }
    }
    if let Some(group) = patch.default_group_id {
        settings.default_group_id = group.to_string();
    }
    if let Some(panel) = patch.panel {
        settings.panel = panel.as_str().to_owned();
    }
    if let Some(mappings) = &patch.group_mappings {
        settings.group_mappings = to_proto(mappings);
    }
    if let Some(name) = patch.sender_name {
        settings.sender_name = name.unwrap_or_default();
    }
    if let Some(email) = patch.sender_email {
        settings.sender_email = email.unwrap_or_default();
    }
    if patch.rotate_webhook_token {
        let token = WebhookToken::generate();
        settings.webhook_token_encrypted = cipher.encrypt(token.expose().as_bytes());
        settings.webhook_token_sha256 = token.sha256();
    }
    if settings == before {
        return Ok(Some((current, false)));
    }
    let event = Event::IntegrationUpdated(IntegrationUpdated {
        settings: Some(settings),
    });
    append_and_project(&mut tx, event, cause).await?;
    let integration = projected(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Some((integration, true)))
}

/// Disconnects integration `id`; `false` when it is unknown or already disconnected.
pub async fn disconnect(store: &Store, id: Uuid, cause: &str) -> Result<bool, StoreError> {
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    if integrations::get(tx.connection(), id).await?.is_none() {
        return Ok(false);
    }
    let event = Event::IntegrationDisconnected(IntegrationDisconnected {});
    append_and_project(&mut tx, event, cause).await?;
    tx.commit().await?;
    Ok(true)
}

/// Records a key check of the settings at `settings_version`; nothing when the integration
/// was disconnected meanwhile. A check of settings that changed since is stored but does
/// not move the status (the read model compares `settings_version`).
pub async fn record_key_check(
    store: &Store,
    id: Uuid,
    settings_version: i64,
    status: KeyStatus,
    detail: Option<String>,
    cause: &str,
) -> Result<(), StoreError> {
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    if integrations::get(tx.connection(), id).await?.is_none() {
        return Ok(());
    }
    let now = chrono::Utc::now();
    let event = Event::IntegrationKeysChecked(IntegrationKeysChecked {
        status: status.as_str().to_owned(),
        checked_at: Some(Timestamp {
            seconds: now.timestamp(),
            nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        settings_version: u64::try_from(settings_version).unwrap_or(0),
        detail,
    });
    append_and_project(&mut tx, event, cause).await?;
    tx.commit().await
}

/// The complete settings an integration's read-model row holds.
fn settings_of(row: &Integration) -> IntegrationSettings {
    IntegrationSettings {
        public_key: row.public_key.clone(),
        secret_key_encrypted: row.secret_key_encrypted.clone(),
        default_group_id: row.default_group_id.to_string(),
        panel: row.panel.clone(),
        group_mappings: to_proto(&row.group_mappings),
        webhook_token_encrypted: row.webhook_token_encrypted.clone(),
        webhook_token_sha256: row.webhook_token_sha256.clone(),
        sender_name: row.sender_name.clone(),
        sender_email: row.sender_email.clone(),
    }
}

fn to_proto(mappings: &[GroupMapping]) -> Vec<ProtoMapping> {
    mappings
        .iter()
        .map(|m| ProtoMapping {
            chatra_group_id: m.chatra_group_id.clone(),
            group_id: m.group_id.to_string(),
        })
        .collect()
}

async fn projected(tx: &mut StreamTx, id: Uuid) -> Result<Integration, StoreError> {
    integrations::get(tx.connection(), id)
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            event_id: Uuid::nil(),
            reason: format!("integration {id} is missing from its read model after its event"),
        })
}
