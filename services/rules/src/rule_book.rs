//! The enabled rules of a trigger, validated once per rule version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deskie_config::Cipher;
use deskie_domain::rules::{RuleSpec, Trigger, ValidRule, validate};
use deskie_store::StoreError;
use deskie_store::read_models::rules::{self, StoredRule};
use uuid::Uuid;

/// Reads the rules read model and keeps each rule compiled (regexes, templates, business
/// hours) for as long as its version stands.
#[derive(Debug, Clone)]
pub struct RuleBook {
    cipher: Cipher,
    compiled: Arc<Mutex<Compiled>>,
}

/// Each rule compiled at the version it was compiled from.
type Compiled = HashMap<Uuid, (i64, ValidRule)>;

impl RuleBook {
    /// A book decrypting rule credentials with `cipher`.
    pub fn new(cipher: Cipher) -> Self {
        Self {
            cipher,
            compiled: Arc::default(),
        }
    }

    /// The enabled rules of `trigger`, in evaluation order. A stored rule that no longer
    /// validates (or whose credential cannot be decrypted) is skipped with an error log: one
    /// broken rule must not stop the others.
    pub async fn enabled(
        &self,
        conn: impl sqlx::PgExecutor<'_>,
        trigger: Trigger,
    ) -> Result<Vec<ValidRule>, StoreError> {
        let stored = rules::enabled_for_trigger(conn, trigger.as_str()).await?;
        let mut compiled = self
            .compiled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // A rule of this trigger that is gone (deleted, disabled, moved) leaves the cache.
        compiled.retain(|id, (_, rule)| {
            rule.trigger() != trigger || stored.iter().any(|r| r.id == *id)
        });
        let mut valid = Vec::with_capacity(stored.len());
        for rule in &stored {
            match compiled.get(&rule.id) {
                Some((version, known)) if *version == rule.version => {
                    valid.push(known.clone());
                }
                _ => match self.compile(rule) {
                    Ok(fresh) => {
                        compiled.insert(rule.id, (rule.version, fresh.clone()));
                        valid.push(fresh);
                    }
                    Err(reason) => {
                        tracing::error!(rule_id = %rule.id, %reason, "stored rule skipped");
                    }
                },
            }
        }
        Ok(valid)
    }

    fn compile(&self, rule: &StoredRule) -> Result<ValidRule, String> {
        let spec = rule.spec_with_secrets(|path, encrypted| {
            self.cipher
                .decrypt_string(encrypted)
                .map_err(|e| format!("{path}: {e}"))
        })?;
        let spec: RuleSpec = serde_json::from_value(spec).map_err(|e| e.to_string())?;
        validate(rule.id, &spec).map_err(|e| e.to_string())
    }
}
