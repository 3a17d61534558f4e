//! Changing a stored key: name, scopes, expiry, notes, reference id, metadata,
//! allowed networks, enabled, rate limits, credits. The same authority rules as for a new key hold (see
//! `authority`): a key caller changes only keys holding no scope beyond its own,
//! grants only scopes it holds, and sets no expiry or network beyond its own.
//!
//! An update is one conditional write ([`ApiKeyStore::update_key`]): it applies only
//! to the revision that was read, so two updates racing each other never undo one
//! another; the loser reads the key again and re-applies its change (the rules are
//! checked again on what it reads). A change that takes authority away (a scope
//! removed, the expiry brought forward, the key disabled, its networks narrowed) is
//! told to listeners before the write, as a revocation is, so a caller that stops
//! waiting after the write cannot leave the old authority in this instance's caches;
//! the write publishes the change to every other instance.

use chrono::{DateTime, Utc};

use super::{Acting, KeyUpdate, KeyUpdated, META_FORMAT};
use crate::audit::AuditAction;
use crate::authority::{Bounds, check_key_texts};
use crate::error::{KeyServiceError, StoreError};
use crate::ids::KeyId;
use crate::model::ApiKey;
use crate::store::{ApiKeyStore, UserStore};

/// How often an update re-reads and re-applies when other updates keep winning.
const ATTEMPTS: usize = 5;

impl<S: ApiKeyStore + UserStore> Acting<'_, S> {
    /// Applies `update` to the key `key_id`. Returns `None` if there is no such key,
    /// or none the actor may see; an update that changes nothing writes nothing.
    ///
    /// # Errors
    /// [`KeyServiceError::Denied`] for a key of another environment, one holding
    /// scopes beyond the caller's, a scope the caller lacks, an expiry after the
    /// caller's (or none, for a caller that expires), a network outside the caller's;
    /// [`KeyServiceError::NotUpdatable`] for a revoked or rolled key, or a change of
    /// the scopes, expiry, networks or state of a key whose secret is a signed token
    /// (a JWT issued as a key: roll it instead); [`KeyServiceError::InvalidRequest`]
    /// for an expiry not in the future or a change of the `format` metadata;
    /// [`KeyServiceError::Text`] for a name, notes or reference that cannot be
    /// stored; store errors (a conflict when other updates kept winning).
    pub async fn update_key(
        &self,
        key_id: &KeyId,
        update: &KeyUpdate,
    ) -> Result<Option<KeyUpdated>, KeyServiceError> {
        let bounds = self.bounds()?;
        if let Some(scopes) = &update.scopes {
            bounds.check_grant(scopes)?;
        }
        let service = self.service;
        for _ in 0..ATTEMPTS {
            let Some(current) = self.visible(&bounds, key_id).await? else {
                return Ok(None);
            };
            let now = service.now();
            let next = updated(&bounds, &current, update, now)?;
            let changed = changed_fields(&current, &next);
            if changed.is_empty() {
                return Ok(Some(KeyUpdated {
                    key: current,
                    changed,
                    narrowed: false,
                }));
            }
            let narrowed = narrows(&current, &next);
            let one = std::slice::from_ref(&next);
            if narrowed {
                // Told first: a narrowing dropped after the write below is not lost.
                service.announce_narrowing(one).await;
            }
            let written = self.write_update(&current, &next, &changed).await?;
            if let Some(stored) = written {
                let updated = KeyUpdated {
                    key: stored,
                    changed,
                    narrowed,
                };
                service
                    .announce_updated(std::slice::from_ref(&updated))
                    .await;
                return Ok(Some(updated));
            }
            // Updated, revoked or rolled by someone else since it was read: read again.
        }
        Err(StoreError::Conflict(format!(
            "the key was changed by others {ATTEMPTS} times while this update was applied; retry it"
        ))
        .into())
    }

    /// Writes `next` over `current`: its settings in one write conditional on the
    /// revision read, and a new balance of credits, if it has one, in a write of its
    /// own (spending does not move the revision, so the settings' write never touches
    /// the balance and cannot undo a spend). Each write keeps its own audit record.
    /// `None` when the key changed (or was cancelled) since it was read.
    async fn write_update(
        &self,
        current: &ApiKey,
        next: &ApiKey,
        changed: &[&'static str],
    ) -> Result<Option<ApiKey>, KeyServiceError> {
        let store = &self.service.store;
        let (credits, settings): (Vec<&str>, Vec<&str>) =
            changed.iter().partition(|field| **field == "credits");
        let record = |fields: &[&str]| {
            self.record(
                AuditAction::KeyUpdated,
                Some(current),
                None,
                serde_json::json!({ "changed": changes(current, next, fields) }),
            )
        };
        let mut stored = None;
        if !settings.is_empty() {
            let record = record(&settings);
            match store.update_key(next, current.revision, &[record]).await? {
                Some(key) => stored = Some(key),
                None => return Ok(None),
            }
        }
        if !credits.is_empty() {
            let record = record(&credits);
            let written = store
                .set_credits(&next.id, next.credits.as_ref(), &[record])
                .await?;
            stored = written.or(stored);
        }
        Ok(stored)
    }
}

/// `current` with `update` applied, checked against `bounds`.
fn updated(
    bounds: &Bounds,
    current: &ApiKey,
    update: &KeyUpdate,
    now: DateTime<Utc>,
) -> Result<ApiKey, KeyServiceError> {
    if current.cancelled_at.is_some() {
        return Err(KeyServiceError::NotUpdatable(
            "the key is revoked or rolled, so it cannot be changed; issue a new key instead",
        ));
    }
    // A key caller may change only keys it could have made.
    bounds.check_may_cancel(current)?;
    let mut next = current.clone();
    if let Some(name) = &update.name {
        next.name.clone_from(name);
    }
    if let Some(scopes) = &update.scopes {
        next.scopes = scopes.clone();
    }
    if let Some(expires_at) = update.expires_at {
        if expires_at.is_some_and(|at| at <= now) {
            return Err(KeyServiceError::InvalidRequest(
                "the new expiry is not in the future; revoke the key to end it now".to_owned(),
            ));
        }
        bounds.check_expiry(expires_at)?;
        next.expires_at = expires_at;
    }
    if let Some(notes) = &update.notes {
        next.notes.clone_from(notes);
    }
    if let Some(ref_id) = &update.ref_id {
        next.ref_id.clone_from(ref_id);
    }
    if let Some(meta) = &update.meta {
        if meta.get(META_FORMAT) != current.meta.get(META_FORMAT) {
            return Err(KeyServiceError::InvalidRequest(format!(
                "the `{META_FORMAT}` metadata says what kind of secret the key has and cannot be changed; leave it as it is"
            )));
        }
        next.meta = meta.clone();
    }
    if let Some(networks) = &update.allowed_networks {
        bounds.check_networks(networks)?;
        next.allowed_networks = canonical(networks);
    }
    if let Some(enabled) = update.enabled {
        next.enabled = enabled;
    }
    if let Some(limits) = &update.limits {
        crate::limits::check_limits(limits)
            .map_err(|e| KeyServiceError::InvalidRequest(e.to_string()))?;
        bounds.check_limits(limits)?;
        next.limits.clone_from(limits);
    }
    if let Some(credits) = update.credits {
        let credits = credits.map(|c| super::acting::metered_from(c, now));
        bounds.check_credits(credits.as_ref())?;
        next.credits = credits;
    }
    check_key_texts(&next)?;
    let authority_changed = next.scopes != current.scopes
        || next.expires_at != current.expires_at
        || next.allowed_networks != current.allowed_networks
        || next.enabled != current.enabled;
    let signed = current
        .meta
        .get(META_FORMAT)
        .is_some_and(|format| format != super::LEGACY_FORMAT);
    if authority_changed && signed {
        return Err(KeyServiceError::NotUpdatable(
            "this key's secret is a signed token carrying its scopes and expiry, so they cannot be changed in place; roll or revoke it, or issue a new key",
        ));
    }
    next.revision = current
        .revision
        .checked_add(1)
        .ok_or(KeyServiceError::NotUpdatable(
            "the key has been updated too many times; issue a new key",
        ))?;
    Ok(next)
}

/// Networks in a stable form: each range's address masked to its prefix, sorted,
/// without repeats, so the same ranges always compare and store alike.
fn canonical(networks: &[ipnet::IpNet]) -> Vec<ipnet::IpNet> {
    let mut networks: Vec<ipnet::IpNet> = networks.iter().map(ipnet::IpNet::trunc).collect();
    networks.sort_unstable();
    networks.dedup();
    networks
}

/// The fields `next` changes, by their names in [`KeyUpdated::changed`].
pub(crate) fn changed_fields(current: &ApiKey, next: &ApiKey) -> Vec<&'static str> {
    [
        ("name", current.name != next.name),
        ("scopes", current.scopes != next.scopes),
        ("expires_at", current.expires_at != next.expires_at),
        ("notes", current.notes != next.notes),
        ("ref_id", current.ref_id != next.ref_id),
        ("meta", current.meta != next.meta),
        (
            "allowed_networks",
            current.allowed_networks != next.allowed_networks,
        ),
        ("enabled", current.enabled != next.enabled),
        ("limits", current.limits != next.limits),
        ("credits", current.credits != next.credits),
    ]
    .into_iter()
    .filter_map(|(field, changed)| changed.then_some(field))
    .collect()
}

/// Each changed field's old and new value, for the audit trail.
fn changes(current: &ApiKey, next: &ApiKey, changed: &[&str]) -> serde_json::Value {
    let value = |key: &ApiKey, field: &str| match field {
        "name" => serde_json::json!(key.name),
        "scopes" => serde_json::json!(key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
        "expires_at" => serde_json::json!(key.expires_at),
        "notes" => serde_json::json!(key.notes),
        "ref_id" => serde_json::json!(key.ref_id),
        "meta" => serde_json::json!(key.meta),
        "allowed_networks" => serde_json::json!(
            key.allowed_networks
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        ),
        "enabled" => serde_json::json!(key.enabled),
        "limits" => serde_json::json!(key.limits),
        "credits" => serde_json::json!(key.credits),
        _ => serde_json::Value::Null,
    };
    changed
        .iter()
        .map(|field| {
            let pair =
                serde_json::json!({ "from": value(current, field), "to": value(next, field) });
            ((*field).to_owned(), pair)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Whether `next` takes authority away from `current`: a scope `current` held that
/// `next` does not grant, an earlier expiry (or one where there was none), the key
/// disabled, or an address `current` allowed that `next` does not.
pub(crate) fn narrows(current: &ApiKey, next: &ApiKey) -> bool {
    let scope_removed = current
        .scopes
        .iter()
        .any(|scope| !next.scopes.grants(scope.as_str()));
    let expiry_earlier = match (current.expires_at, next.expires_at) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(was), Some(now)) => now < was,
    };
    let disabled = current.enabled && !next.enabled;
    let networks_narrowed = !next.allowed_networks.is_empty()
        && (current.allowed_networks.is_empty()
            || !current
                .allowed_networks
                .iter()
                .all(|was| next.allowed_networks.iter().any(|now| now.contains(was))));
    // A limit that no limit of the key already met (new, or stricter), or credits on
    // a key that had none: the cached key must not keep serving without them.
    let limits_narrowed = next
        .limits
        .iter()
        .any(|n| !current.limits.iter().any(|c| c.is_within(n)));
    let metered = current.credits.is_none() && next.credits.is_some();
    scope_removed || expiry_earlier || disabled || networks_narrowed || limits_narrowed || metered
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::name::{Environment, KeyType};
    use crate::scope::Scopes;
    use crate::secret::KeyHash;

    fn key() -> ApiKey {
        let mut key = ApiKey::new(
            KeyId::random(),
            KeyType::SECRET,
            Environment::LIVE,
            KeyHash::of("k"),
            "sk_…",
            DateTime::<Utc>::UNIX_EPOCH,
        );
        key.scopes = Scopes::parse(["orders:*"]).unwrap();
        key
    }

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    /// Each way of taking authority away is a narrowing; widening and renaming are not.
    #[test]
    fn what_narrows() {
        let was = key();
        let with = |change: &dyn Fn(&mut ApiKey)| {
            let mut next = was.clone();
            change(&mut next);
            narrows(&was, &next)
        };
        assert!(!with(&|k| k.name = Some("renamed".into())));
        assert!(!with(
            &|k| k.scopes = Scopes::parse(["orders:*", "x"]).unwrap()
        ));
        assert!(with(&|k| k.scopes = Scopes::parse(["orders:read"]).unwrap()));
        assert!(with(&|k| k.expires_at = Some(DateTime::<Utc>::UNIX_EPOCH)));
        assert!(with(&|k| k.enabled = false));
        assert!(with(&|k| k.allowed_networks = nets(&["10.0.0.0/8"])));
        let mut bound = was.clone();
        bound.allowed_networks = nets(&["10.0.0.0/8"]);
        let mut wider = bound.clone();
        wider.allowed_networks = nets(&["10.0.0.0/7"]);
        assert!(!narrows(&bound, &wider));
        assert!(narrows(&wider, &bound));
        let mut anywhere = bound.clone();
        anywhere.allowed_networks.clear();
        assert!(!narrows(&bound, &anywhere));
        let mut later = bound.clone();
        later.expires_at = Some(DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(1));
        let mut sooner = later.clone();
        sooner.expires_at = Some(DateTime::<Utc>::UNIX_EPOCH);
        assert!(narrows(&later, &sooner));
        assert!(!narrows(&sooner, &later));
    }

    /// Ranges are stored masked, sorted and without repeats.
    #[test]
    fn networks_are_canonical() {
        assert_eq!(
            canonical(&nets(&["10.1.2.3/8", "192.0.2.0/24", "10.0.0.0/8"])),
            nets(&["10.0.0.0/8", "192.0.2.0/24"])
        );
    }
}
