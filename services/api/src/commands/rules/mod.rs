//! RuleCreated, RuleUpdated and RuleDeleted.
//!
//! A rule's credentials never reach the event store in clear: each is encrypted on its own
//! under its path, and the spec in the event holds `""` in its place.

mod prepare;

use deskie_config::{Cipher, CipherError};
use deskie_proto::events::{Event, RuleCreated, RuleDeleted, RuleSecret, RuleUpdated};
use deskie_store::read_models::rules::{self, StoredRule};
use deskie_store::{Store, StoreError, StreamKey, StreamTx};
use serde_json::{Map, Value};
use uuid::Uuid;

pub use prepare::PreparedRule;
use prepare::{merge, prepare};

use super::append_and_project;
use crate::rule_secrets::ClearSecret;

/// The stream type of rules.
pub const STREAM_TYPE: &str = "rule";

/// Why a rule command refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RuleCommandError {
    /// No such rule (or it was deleted).
    #[error("no such rule")]
    NotFound,
    /// The rule does not validate; `field` is the path of the offending field.
    #[error("{message}")]
    Invalid {
        /// E.g. `actions[1].text`.
        field: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A stored credential does not decrypt.
    #[error(transparent)]
    Secret(#[from] CipherError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a rule from the admin's `body` (a JSON object); nothing is stored when it does
/// not validate.
pub async fn create_rule(
    store: &Store,
    cipher: &Cipher,
    body: Map<String, Value>,
    cause: &str,
) -> Result<StoredRule, RuleCommandError> {
    let id = Uuid::now_v7();
    let rule = prepare(id, merge(Map::new(), body), &[])?;
    let (spec_json, secrets) = seal(cipher, &rule);
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    let event = Event::RuleCreated(RuleCreated { spec_json, secrets });
    append_and_project(&mut tx, event, cause).await?;
    let stored = projected(&mut tx, id).await?;
    tx.commit().await?;
    Ok(stored)
}

/// Merges `patch`'s top-level keys over rule `id` and stores the result when it validates
/// and differs; credentials sent masked (or not sent) keep their stored value.
pub async fn update_rule(
    store: &Store,
    cipher: &Cipher,
    id: Uuid,
    patch: Map<String, Value>,
    cause: &str,
) -> Result<StoredRule, RuleCommandError> {
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    let current = rules::get(tx.connection(), id)
        .await?
        .ok_or(RuleCommandError::NotFound)?;
    let stored_secrets: Vec<ClearSecret> = current
        .secrets
        .iter()
        .map(|(path, encrypted)| Ok((path.clone(), cipher.decrypt_string(encrypted)?)))
        .collect::<Result<_, CipherError>>()?;
    let Value::Object(full) = current.spec_with_secrets(|path, _| {
        let found = stored_secrets.iter().find(|(p, _)| p == path);
        Ok::<_, CipherError>(found.map(|(_, secret)| secret.clone()).unwrap_or_default())
    })?
    else {
        return Err(StoreError::Corrupt {
            event_id: Uuid::nil(),
            reason: format!("rule {id}'s spec is not a JSON object"),
        }
        .into());
    };
    let rule = prepare(id, merge(full, patch), &stored_secrets)?;
    let unchanged = PreparedRule {
        spec: current.spec.as_object().cloned().unwrap_or_default(),
        secrets: stored_secrets,
    };
    if rule == unchanged {
        return Ok(current);
    }
    let (spec_json, secrets) = seal(cipher, &rule);
    let event = Event::RuleUpdated(RuleUpdated { spec_json, secrets });
    append_and_project(&mut tx, event, cause).await?;
    let stored = projected(&mut tx, id).await?;
    tx.commit().await?;
    Ok(stored)
}

/// Deletes rule `id`: it is never evaluated again.
pub async fn delete_rule(store: &Store, id: Uuid, cause: &str) -> Result<(), RuleCommandError> {
    let mut tx = store.begin_stream(StreamKey::new(STREAM_TYPE, id)).await?;
    if rules::get(tx.connection(), id).await?.is_none() {
        return Err(RuleCommandError::NotFound);
    }
    append_and_project(&mut tx, Event::RuleDeleted(RuleDeleted {}), cause).await?;
    tx.commit().await?;
    Ok(())
}

/// The event's `spec_json` and its credentials, each encrypted on its own.
fn seal(cipher: &Cipher, rule: &PreparedRule) -> (String, Vec<RuleSecret>) {
    let secrets = rule
        .secrets
        .iter()
        .map(|(path, secret)| RuleSecret {
            path: path.clone(),
            encrypted: cipher.encrypt(secret.as_bytes()),
        })
        .collect();
    (Value::Object(rule.spec.clone()).to_string(), secrets)
}

async fn projected(tx: &mut StreamTx, id: Uuid) -> Result<StoredRule, StoreError> {
    rules::get(tx.connection(), id)
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            event_id: Uuid::nil(),
            reason: format!("rule {id} is missing from its read model right after its event"),
        })
}
