//! The admin's rules (`RuleCreated`, `RuleUpdated`, `RuleDeleted`; stream type `rule`).
//!
//! A rule's credentials (a Slack webhook URL, a Telegram bot token) are never stored in
//! clear: the spec holds an empty string in their place, and each is kept AES-256-GCM
//! encrypted next to it under its path in the spec (`actions[3].webhook_url`, see
//! [`secret_path`]). The store never decrypts; whoever holds `DESKIE_ENCRYPTION_KEY` does,
//! through [`StoredRule::spec_with_secrets`].

use chrono::{DateTime, Utc};
use deskie_domain::rules::RuleSpec;
use deskie_proto::events::{Envelope, Event, RuleSecret};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use super::{occurred_at, stream_uuid};
use crate::StoreError;

/// A rule as stored: its spec with the credentials blanked, and the credentials encrypted.
#[derive(Clone, PartialEq)]
pub struct StoredRule {
    /// The rule's id (= its stream id).
    pub id: Uuid,
    /// Stream version last applied; changes with every edit.
    pub version: i64,
    /// The name, trimmed.
    pub name: String,
    /// `case_created` or `case_updated`.
    pub trigger: String,
    /// Disabled rules are kept but never evaluated.
    pub enabled: bool,
    /// Evaluation order within the trigger, lowest first (then by id).
    pub position: i64,
    /// When this rule fires, later rules are not evaluated.
    pub stop_processing: bool,
    /// The rule as the admin sent it (a [`RuleSpec`] as JSON, keys this version does not
    /// know included), with every credential replaced by an empty string. It does not pass
    /// `deskie_domain::rules::validate` as it is: fill the credentials in first
    /// ([`StoredRule::spec_with_secrets`]).
    pub spec: Value,
    /// The credentials, `(path in spec, AES-256-GCM ciphertext made with
    /// DESKIE_ENCRYPTION_KEY)`, e.g. `("actions[3].webhook_url", nonce || ciphertext)`.
    /// The ciphertext is exactly what `NotificationRequested.destination_secret` carries:
    /// a rules service copies it there without decrypting ([`StoredRule::secret`]).
    pub secrets: Vec<(String, Vec<u8>)>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Credentials are never printed, not even encrypted.
impl std::fmt::Debug for StoredRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths: Vec<&str> = self.secrets.iter().map(|(p, _)| p.as_str()).collect();
        f.debug_struct("StoredRule")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("name", &self.name)
            .field("trigger", &self.trigger)
            .field("enabled", &self.enabled)
            .field("position", &self.position)
            .field("stop_processing", &self.stop_processing)
            .field("spec", &self.spec)
            .field("secret_paths", &paths)
            .finish_non_exhaustive()
    }
}

impl StoredRule {
    /// The encrypted credential at `path` (e.g. `actions[3].webhook_url`, see
    /// [`secret_path`]): what goes into `NotificationRequested.destination_secret` for the
    /// action at that index.
    pub fn secret(&self, path: &str) -> Option<&[u8]> {
        self.secrets
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, encrypted)| encrypted.as_slice())
    }

    /// The spec with each credential put back as `reveal(path, ciphertext)` returns it: the
    /// plaintext (to validate and evaluate the rule), or a masked form (to show it).
    pub fn spec_with_secrets<E>(
        &self,
        mut reveal: impl FnMut(&str, &[u8]) -> Result<String, E>,
    ) -> Result<Value, E> {
        let mut spec = self.spec.clone();
        for (path, encrypted) in &self.secrets {
            let Some((index, param)) = parse_secret_path(path) else {
                continue;
            };
            let revealed = reveal(path, encrypted)?;
            if let Some(action) = spec
                .get_mut("actions")
                .and_then(|actions| actions.get_mut(index))
                .and_then(Value::as_object_mut)
            {
                action.insert(param.to_owned(), Value::String(revealed));
            }
        }
        Ok(spec)
    }
}

/// Where the credential `param` of the action at `index` lives in a spec:
/// `actions[{index}].{param}`. The path in `RuleSecret` and [`StoredRule::secrets`], and
/// the `RuleError` path of that field.
pub fn secret_path(index: usize, param: &str) -> String {
    format!("actions[{index}].{param}")
}

/// The action index and parameter of a [`secret_path`].
pub fn parse_secret_path(path: &str) -> Option<(usize, &str)> {
    let rest = path.strip_prefix("actions[")?;
    let (index, param) = rest.split_once("].")?;
    Some((index.parse().ok()?, param))
}

#[derive(FromRow)]
struct Row {
    id: Uuid,
    version: i64,
    name: String,
    trigger: String,
    enabled: bool,
    position: i64,
    stop_processing: bool,
    spec: Value,
    secret_paths: Vec<String>,
    secrets_encrypted: Vec<Vec<u8>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for StoredRule {
    fn from(row: Row) -> Self {
        Self {
            id: row.id,
            version: row.version,
            name: row.name,
            trigger: row.trigger,
            enabled: row.enabled,
            position: row.position,
            stop_processing: row.stop_processing,
            spec: row.spec,
            secrets: row
                .secret_paths
                .into_iter()
                .zip(row.secrets_encrypted)
                .collect(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const COLUMNS: &str = "id, version, name, trigger, enabled, position, stop_processing, spec,
    secret_paths, secrets_encrypted, created_at, updated_at";

/// The query for rules that are not deleted and meet `condition`, in evaluation order.
fn query(condition: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM rules WHERE deleted_at IS NULL {condition} ORDER BY trigger, position, id"
    ))
}

/// Every rule that is not deleted, by trigger, then position, then id.
pub async fn list(pool: &PgPool) -> Result<Vec<StoredRule>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(query("")).fetch_all(pool).await?;
    Ok(rows.into_iter().map(StoredRule::from).collect())
}

/// One rule; `None` when unknown or deleted.
pub async fn get(
    conn: impl sqlx::PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<StoredRule>, StoreError> {
    let row: Option<Row> = sqlx::query_as(query("AND id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(StoredRule::from))
}

/// The enabled rules of `trigger` (`case_created` or `case_updated`) in evaluation order:
/// by position, then id, as `deskie_domain::rules::evaluate` expects them.
pub async fn enabled_for_trigger(
    conn: impl sqlx::PgExecutor<'_>,
    trigger: &str,
) -> Result<Vec<StoredRule>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(query("AND enabled AND trigger = $1"))
        .bind(trigger)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(StoredRule::from).collect())
}

pub(super) async fn apply(conn: &mut PgConnection, envelope: &Envelope) -> Result<(), StoreError> {
    let id = stream_uuid(envelope)?;
    let at = occurred_at(envelope);
    let version = i64::try_from(envelope.version).unwrap_or(i64::MAX);
    let (spec_json, secrets) = match &envelope.event {
        Some(Event::RuleCreated(e)) => (&e.spec_json, &e.secrets),
        Some(Event::RuleUpdated(e)) => (&e.spec_json, &e.secrets),
        Some(Event::RuleDeleted(_)) => {
            sqlx::query(
                "UPDATE rules SET version = $2, deleted_at = $3, updated_at = $3 WHERE id = $1 AND version < $2",
            )
            .bind(id)
            .bind(version)
            .bind(at)
            .execute(conn)
            .await?;
            return Ok(());
        }
        _ => return Ok(()),
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        event_id: envelope.event_id.parse().unwrap_or_default(),
        reason,
    };
    let spec: Value = serde_json::from_str(spec_json)
        .map_err(|e| corrupt(format!("rule spec is not JSON: {e}")))?;
    let rule: RuleSpec = serde_json::from_value(spec.clone())
        .map_err(|e| corrupt(format!("rule spec has the wrong shape: {e}")))?;
    let (paths, encrypted): (Vec<String>, Vec<Vec<u8>>) = secrets
        .iter()
        .map(|RuleSecret { path, encrypted }| (path.clone(), encrypted.clone()))
        .unzip();
    sqlx::query(
        "INSERT INTO rules (id, version, name, trigger, enabled, position, stop_processing, spec,
                            secret_paths, secrets_encrypted, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
         ON CONFLICT (id) DO UPDATE SET
             version = EXCLUDED.version, name = EXCLUDED.name, trigger = EXCLUDED.trigger,
             enabled = EXCLUDED.enabled, position = EXCLUDED.position,
             stop_processing = EXCLUDED.stop_processing, spec = EXCLUDED.spec,
             secret_paths = EXCLUDED.secret_paths, secrets_encrypted = EXCLUDED.secrets_encrypted,
             updated_at = EXCLUDED.updated_at
         WHERE rules.version < EXCLUDED.version",
    )
    .bind(id)
    .bind(version)
    .bind(rule.name.trim())
    .bind(&rule.trigger)
    .bind(rule.enabled)
    .bind(rule.position)
    .bind(rule.stop_processing)
    .bind(&spec)
    .bind(&paths)
    .bind(&encrypted)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_paths_round_trip() {
        let path = secret_path(3, "webhook_url");
        assert_eq!(path, "actions[3].webhook_url");
        assert_eq!(parse_secret_path(&path), Some((3, "webhook_url")));
        for bad in ["", "actions[x].a", "conditions[0].a", "actions[1]"] {
            assert_eq!(parse_secret_path(bad), None, "{bad}");
        }
    }
}
