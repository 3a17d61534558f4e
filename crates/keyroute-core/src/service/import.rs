//! Importing keys a team already handed out under an earlier scheme, so they keep
//! working: one key at a time (the CLI reads files of them), idempotent by hash, so
//! an interrupted import is resumed by running it again.
//!
//! A plaintext in keyroute's format (its checksum verifies) becomes an ordinary key.
//! Anything else, a plaintext of another format or a bare SHA-256, is a *legacy* key
//! (`meta.format = legacy`), accepted only with `[apikey] legacy_keys`: found by the
//! hash of what is presented, without keyroute's offline checks. Only the hash is
//! stored; a plaintext is never kept. Rolling a legacy key replaces it with a keyroute
//! key, which is how a team moves its users over.

use chrono::{DateTime, Utc};

use super::{Acting, LEGACY_FORMAT, META_FORMAT};
use crate::audit::AuditAction;
use crate::authority::{Denied, check_key_texts};
use crate::error::KeyServiceError;
use crate::ids::{KeyId, UserId};
use crate::model::ApiKey;
use crate::name::{Environment, KeyType};
use crate::scope::Scopes;
use crate::secret::{KeyHash, PlaintextKey};
use crate::store::{ApiKeyStore, UserStore};

/// What is known of an imported key's secret.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ImportedSecret {
    /// The key itself; only its SHA-256 is stored.
    Plaintext(PlaintextKey),
    /// The SHA-256 of the key, as the earlier scheme stored it.
    Hash(KeyHash),
}

/// One key to import.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImportedKey {
    /// The secret, or its hash.
    pub secret: ImportedSecret,
    /// The owner, if any; the user must exist.
    pub user_id: Option<UserId>,
    /// The key's type.
    pub key_type: KeyType,
    /// The key's environment.
    pub environment: Environment,
    /// What the key may do.
    pub scopes: Scopes,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// A name.
    pub name: Option<String>,
}

impl ImportedKey {
    /// A key of `key_type` in `environment` with this secret; no owner, scopes,
    /// expiry or name.
    pub fn new(secret: ImportedSecret, key_type: KeyType, environment: Environment) -> Self {
        Self {
            secret,
            user_id: None,
            key_type,
            environment,
            scopes: Scopes::none(),
            expires_at: None,
            name: None,
        }
    }
}

/// What importing one key did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportOutcome {
    /// Stored, as this record.
    Imported(Box<ApiKey>),
    /// A key with this hash is already stored (imported before): nothing changed.
    AlreadyStored,
}

impl<S: ApiKeyStore + UserStore> Acting<'_, S> {
    /// Imports one key (see the module docs). Only the application and operators
    /// import: a caller is refused (`operators_only`).
    ///
    /// # Errors
    /// [`KeyServiceError::Denied`] for a caller; [`KeyServiceError::EnvironmentNotEnabled`],
    /// [`KeyServiceError::KeyTypeNotEnabled`]; [`KeyServiceError::UnknownUser`];
    /// [`KeyServiceError::InvalidRequest`] for a keyroute key whose environment or type
    /// is not the one given, an expiry already past, or a key of another format (or a
    /// bare hash) while `[apikey] legacy_keys` is off; [`KeyServiceError::Text`] for a
    /// name that cannot be stored; store errors.
    pub async fn import_key(
        &self,
        imported: &ImportedKey,
    ) -> Result<ImportOutcome, KeyServiceError> {
        let bounds = self.bounds()?;
        if bounds.is_caller() {
            return Err(Denied::OperatorsOnly.into());
        }
        let service = self.service;
        let options = &service.options;
        if !options.environments.contains(&imported.environment) {
            return Err(KeyServiceError::EnvironmentNotEnabled(
                imported.environment.clone(),
            ));
        }
        if !options.key_types.contains(&imported.key_type) {
            return Err(KeyServiceError::KeyTypeNotEnabled(
                imported.key_type.clone(),
            ));
        }
        let now = service.now();
        if imported.expires_at.is_some_and(|at| at <= now) {
            return Err(KeyServiceError::InvalidRequest(
                "the key has already expired; leave it out of the import".to_owned(),
            ));
        }
        let (hash, hint, legacy) = match &imported.secret {
            ImportedSecret::Plaintext(plaintext) => {
                match service.format.parse(plaintext.expose_secret()) {
                    Ok(presented) => {
                        if presented.environment != imported.environment
                            || presented.key_type != imported.key_type
                        {
                            return Err(KeyServiceError::InvalidRequest(format!(
                                "the key is a keyroute {} key of environment '{}', not the {} key of '{}' the line says",
                                presented.key_type,
                                presented.environment,
                                imported.key_type,
                                imported.environment
                            )));
                        }
                        (presented.hash, crate::TokenFormat::hint(plaintext), false)
                    }
                    Err(_) => (
                        plaintext.hash(),
                        legacy_hint(plaintext.expose_secret()),
                        true,
                    ),
                }
            }
            ImportedSecret::Hash(hash) => (*hash, "legacy…".to_owned(), true),
        };
        if legacy && !options.legacy_keys {
            return Err(KeyServiceError::InvalidRequest(
                "the key is not in keyroute's format (or only its hash is given); to import such keys, set [apikey] legacy_keys = true, which looks them up by hash without offline checks".to_owned(),
            ));
        }
        let owner = service.owner(imported.user_id.as_ref()).await?;
        if service.store.api_key_exists(&hash).await? {
            return Ok(ImportOutcome::AlreadyStored);
        }
        let mut key = ApiKey::new(
            KeyId::random(),
            imported.key_type.clone(),
            imported.environment.clone(),
            hash,
            hint,
            now,
        );
        key.user_id = owner.as_ref().map(|u| u.id.clone());
        key.tenant = owner.and_then(|u| u.tenant);
        key.scopes = imported.scopes.clone();
        key.expires_at = imported.expires_at;
        key.name.clone_from(&imported.name);
        if legacy {
            key.meta
                .insert(META_FORMAT.to_owned(), LEGACY_FORMAT.to_owned());
        }
        check_key_texts(&key)?;
        let mut details = super::acting::key_summary(&key);
        if let Some(fields) = details.as_object_mut() {
            fields.insert("legacy".to_owned(), serde_json::json!(legacy));
        }
        let record = self.record(AuditAction::KeyImported, Some(&key), None, details);
        match service
            .store
            .store_all(std::slice::from_ref(&key), &[record])
            .await
        {
            Ok(()) => {}
            // Imported meanwhile by a concurrent run: the same outcome as before.
            Err(error) if error.kind() == crate::ErrorKind::Conflict => {
                if service.store.api_key_exists(&key.hash).await? {
                    return Ok(ImportOutcome::AlreadyStored);
                }
                return Err(error.into());
            }
            Err(error) => return Err(error.into()),
        }
        service.announce_issued(std::slice::from_ref(&key)).await;
        Ok(ImportOutcome::Imported(Box::new(key)))
    }
}

/// What a legacy key is shown as: its last four characters, when it has eight or
/// more (fewer would give too much of a short key away).
fn legacy_hint(plaintext: &str) -> String {
    let chars: Vec<char> = plaintext.chars().collect();
    match chars.len() {
        n if n >= 8 => format!(
            "legacy…{}",
            chars.iter().skip(n.saturating_sub(4)).collect::<String>()
        ),
        _ => "legacy…".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_hints_show_little() {
        assert_eq!(legacy_hint("old-key-12345678"), "legacy…5678");
        assert_eq!(legacy_hint("short"), "legacy…");
    }
}
