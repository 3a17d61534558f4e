//! [`Bounds`]: what one actor may reach, computed once per operation from its
//! [`Actor`], and the checks every operation applies with it.

use chrono::{DateTime, Utc};
use ipnet::IpNet;

use super::{Actor, Denied};
use crate::ids::UserId;
use crate::limits::{Credits, RateLimit};
use crate::model::{ApiKey, User};
use crate::name::{Environment, KeyType, Tenant};
use crate::scope::{ADMIN_SCOPE, Scope, Scopes};

/// Which users a caller acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Users {
    /// Any user (operators, the application, admin keys); the caller's own user when
    /// none is named, if it has one.
    Any(Option<UserId>),
    /// Only this one.
    Own(UserId),
}

/// Which scopes a caller may give or act on.
#[derive(Debug, Clone)]
enum Grant {
    /// Every scope.
    All,
    /// What these scopes grant (a key's).
    Scopes(Scopes),
    /// Everything but the all-granting scopes (a person's session).
    AllButAdmin,
}

impl Grant {
    fn allows(&self, scope: &Scope) -> bool {
        match self {
            Grant::All => true,
            Grant::Scopes(held) => held.grants(scope.as_str()),
            Grant::AllButAdmin => !matches!(scope.as_str(), ADMIN_SCOPE | "*"),
        }
    }
}

/// What one actor may do: computed once per operation from the [`Actor`].
#[derive(Debug, Clone)]
pub(crate) struct Bounds {
    environment: Option<Environment>,
    users: Users,
    tenant: Option<Tenant>,
    grant: Grant,
    /// Whether the actor is a key (bound by the scope rule when acting on keys).
    is_key: bool,
    expires_at: Option<DateTime<Utc>>,
    /// The networks the caller's own key is bound to; empty for none.
    networks: Vec<IpNet>,
    /// The caller's own key's rate limits: keys it makes or changes keep within them.
    limits: Vec<RateLimit>,
    /// The caller's own key's credits, as of its request.
    credits: Option<Credits>,
}

impl Bounds {
    /// No bounds: the application's own code and operators.
    pub(crate) fn application() -> Self {
        Self {
            environment: None,
            users: Users::Any(None),
            tenant: None,
            grant: Grant::All,
            is_key: false,
            expires_at: None,
            networks: Vec::new(),
            limits: Vec::new(),
            credits: None,
        }
    }

    /// Whether these are a caller's bounds (not the application's or an operator's).
    pub(crate) fn is_caller(&self) -> bool {
        self.environment.is_some()
    }

    /// Whether the caller is bound to a tenant.
    pub(crate) fn has_tenant(&self) -> bool {
        self.tenant.is_some()
    }

    /// The bounds of `actor`.
    pub(crate) fn of(actor: &Actor) -> Result<Self, Denied> {
        let Actor::Caller(caller) = actor else {
            return Ok(Self::application());
        };
        if caller.key_type() == Some(&KeyType::PUBLISHABLE) {
            return Err(Denied::PublishableKey);
        }
        let is_key = caller.method().is_key();
        let admin = is_key && caller.has_scope(ADMIN_SCOPE);
        let users = match (admin, caller.user_id()) {
            (true, own) => Users::Any(own.cloned()),
            (false, Some(own)) => Users::Own(own.clone()),
            (false, None) => return Err(Denied::NoUser),
        };
        Ok(Self {
            environment: Some(caller.environment().clone()),
            users,
            tenant: caller.tenant().cloned(),
            grant: if is_key {
                Grant::Scopes(caller.scopes().clone())
            } else {
                Grant::AllButAdmin
            },
            is_key,
            expires_at: if is_key {
                caller.authority_expires_at()
            } else {
                None
            },
            networks: caller
                .api_key()
                .map(|key| key.allowed_networks.clone())
                .unwrap_or_default(),
            limits: caller
                .api_key()
                .map(|key| key.limits.clone())
                .unwrap_or_default(),
            credits: caller.api_key().and_then(|key| key.credits),
        })
    }

    /// The user an operation acts on: the one named, or the caller's own.
    ///
    /// `Ok(None)` only for actors that may act on keys of no user (the application,
    /// operators) when none is named.
    pub(crate) fn user(
        &self,
        named: Option<&UserId>,
    ) -> Result<Option<UserId>, crate::KeyServiceError> {
        match (&self.users, named) {
            (Users::Any(_), Some(named)) => Ok(Some(named.clone())),
            (Users::Any(own), None) => Ok(own.clone()),
            (Users::Own(own), None) => Ok(Some(own.clone())),
            (Users::Own(own), Some(named)) if named == own => Ok(Some(named.clone())),
            (Users::Own(_), Some(_)) => Err(Denied::NotYourKeys.into()),
        }
    }

    /// Whether this caller must name a user (an admin key of no user).
    pub(crate) fn needs_user(&self) -> bool {
        self.is_caller() && matches!(self.users, Users::Any(None))
    }

    /// Refuses `user` unless the caller may act on it.
    pub(crate) fn check_user(&self, user: &User) -> Result<(), Denied> {
        if let Users::Own(own) = &self.users
            && own != &user.id
        {
            return Err(Denied::NotYourKeys);
        }
        self.check_tenant(user.tenant.as_ref())
    }

    /// Refuses a target of another tenant than a caller bound to one.
    pub(crate) fn check_tenant(&self, tenant: Option<&Tenant>) -> Result<(), Denied> {
        match &self.tenant {
            Some(own) if tenant != Some(own) => Err(Denied::TenantMismatch),
            _ => Ok(()),
        }
    }

    /// Refuses an environment other than the caller's.
    pub(crate) fn check_environment(&self, target: &Environment) -> Result<(), Denied> {
        match &self.environment {
            Some(own) if own != target => Err(Denied::EnvironmentMismatch {
                caller: own.clone(),
                target: target.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// The caller's environment, if it is bound to one.
    pub(crate) fn environment(&self) -> Option<&Environment> {
        self.environment.as_ref()
    }

    /// Whether the caller may see `key` at all: its user's (or any user's, for an
    /// admin) and of its tenant. A key it may not see is, to it, no key.
    pub(crate) fn may_see(&self, key: &ApiKey) -> bool {
        let user_ok = match &self.users {
            Users::Any(_) => true,
            Users::Own(own) => key.user_id.as_ref() == Some(own),
        };
        user_ok && self.check_tenant(key.tenant.as_ref()).is_ok()
    }

    /// Refuses to list users unless the actor may act on any user (an admin key, the
    /// application, an operator). A caller bound to a tenant sees only its tenant's
    /// users ([`may_see_user`](Self::may_see_user)).
    pub(crate) fn check_may_list_users(&self) -> Result<(), Denied> {
        match self.users {
            Users::Any(_) => Ok(()),
            Users::Own(_) => Err(Denied::NotYourKeys),
        }
    }

    /// Whether the caller may see `user` in a listing: of its tenant, if it has one.
    pub(crate) fn may_see_user(&self, user: &User) -> bool {
        self.check_tenant(user.tenant.as_ref()).is_ok()
    }

    /// Refuses scopes the caller may not give.
    pub(crate) fn check_grant(&self, scopes: &Scopes) -> Result<(), Denied> {
        match scopes.iter().find(|s| !self.grant.allows(s)) {
            Some(scope) => Err(Denied::ScopeExceedsCaller {
                scope: scope.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Refuses to cancel `key` (revoke) when a key caller would act on a key holding
    /// scopes beyond its own. A session may cancel any key of its user.
    pub(crate) fn check_may_cancel(&self, key: &ApiKey) -> Result<(), Denied> {
        if self.is_key {
            self.check_grant(&key.scopes)
        } else {
            Ok(())
        }
    }

    /// Refuses to replace `key` (roll, regenerate): the replacement's plaintext goes
    /// to the caller, so its scopes must be ones the caller may give.
    pub(crate) fn check_may_replace(&self, key: &ApiKey) -> Result<(), Denied> {
        self.check_grant(&key.scopes)
    }

    /// Bounds a new key's expiry by the caller's: none becomes the caller's; a later
    /// one is refused when `asked` (the caller chose it) and capped otherwise.
    pub(crate) fn bound_expiry(&self, key: &mut ApiKey, asked: bool) -> Result<(), Denied> {
        let Some(limit) = self.expires_at else {
            return Ok(());
        };
        match key.expires_at {
            Some(at) if at <= limit => {}
            Some(_) if asked => return Err(Denied::ExpiryExceedsCaller { limit }),
            _ => key.expires_at = Some(limit),
        }
        Ok(())
    }

    /// Refuses an expiry set by an update that a key caller may not give: none when
    /// the caller itself expires, or one after the caller's.
    pub(crate) fn check_expiry(&self, expires_at: Option<DateTime<Utc>>) -> Result<(), Denied> {
        match (self.expires_at, expires_at) {
            (Some(limit), None) => Err(Denied::ExpiryExceedsCaller { limit }),
            (Some(limit), Some(at)) if at > limit => Err(Denied::ExpiryExceedsCaller { limit }),
            _ => Ok(()),
        }
    }

    /// Refuses networks a caller bound to networks may not give: none (anywhere), or a
    /// range not inside one of its own.
    pub(crate) fn check_networks(&self, networks: &[IpNet]) -> Result<(), Denied> {
        if self.networks.is_empty() {
            return Ok(());
        }
        let within = |net: &IpNet| self.networks.iter().any(|own| own.contains(net));
        if networks.is_empty() || !networks.iter().all(within) {
            return Err(Denied::NetworkExceedsCaller);
        }
        Ok(())
    }

    /// Refuses limits that lift one of the caller's: each of its limits must be there,
    /// as strict or stricter.
    pub(crate) fn check_limits(&self, limits: &[RateLimit]) -> Result<(), Denied> {
        for own in &self.limits {
            if !limits.iter().any(|l| l.is_within(own)) {
                return Err(Denied::LimitExceedsCaller {
                    limit: own.name().to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Refuses credits beyond a metered caller's own (none at all included).
    pub(crate) fn check_credits(&self, credits: Option<&Credits>) -> Result<(), Denied> {
        match (&self.credits, credits) {
            (None, _) => Ok(()),
            (Some(own), Some(asked)) if asked.is_within(own) => Ok(()),
            (Some(_), _) => Err(Denied::CreditsExceedCaller),
        }
    }

    /// Gives a new key the caller's limits it does not name itself, then checks
    /// limits and credits.
    fn bound_limits(&self, key: &mut ApiKey) -> Result<(), Denied> {
        for own in &self.limits {
            if !key.limits.iter().any(|l| l.name() == own.name()) {
                key.limits.push(own.clone());
            }
        }
        self.check_limits(&key.limits)?;
        self.check_credits(key.credits.as_ref())
    }

    /// Every rule a finished new key must meet: environment, tenant, scopes, expiry,
    /// networks (a key of a caller bound to networks gets the caller's when it asks
    /// for none).
    pub(crate) fn check_new_key(&self, key: &mut ApiKey, asked_expiry: bool) -> Result<(), Denied> {
        self.check_environment(&key.environment)?;
        self.check_tenant(key.tenant.as_ref())?;
        self.check_grant(&key.scopes)?;
        if key.allowed_networks.is_empty() {
            key.allowed_networks.clone_from(&self.networks);
        }
        self.check_networks(&key.allowed_networks)?;
        self.bound_limits(key)?;
        self.bound_expiry(key, asked_expiry)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeDelta;

    use super::*;
    use crate::authority::Operator;
    use crate::ids::KeyId;
    use crate::principal::AuthMethod;
    use crate::principal::Principal;
    use crate::secret::KeyHash;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000)
    }

    fn key(env: Environment, scopes: &[&str], user: &str) -> ApiKey {
        let mut key = ApiKey::new(
            KeyId::random(),
            KeyType::SECRET,
            env,
            KeyHash::of("k"),
            "sk_…",
            t0(),
        );
        key.scopes = Scopes::parse(scopes).unwrap();
        key.user_id = Some(UserId::new(user).unwrap());
        key
    }

    fn caller(env: Environment, scopes: &[&str], user: &str) -> Actor {
        Principal::from_api_key(Arc::new(key(env, scopes, user)), None).into()
    }

    /// A test key is bound to the test environment, even holding the admin scope.
    #[test]
    fn environment_binds_admins_too() {
        let admin = Bounds::of(&caller(Environment::TEST, &["admin"], "u1")).unwrap();
        assert!(admin.check_environment(&Environment::TEST).is_ok());
        assert_eq!(
            admin
                .check_environment(&Environment::LIVE)
                .unwrap_err()
                .code(),
            "environment_mismatch"
        );
        let operator = Bounds::of(&Actor::Operator(Operator::new("cli").unwrap())).unwrap();
        assert!(operator.check_environment(&Environment::LIVE).is_ok());
    }

    /// A narrow key may not replace a broader key of its own user; it may give only
    /// what it holds; an admin may give anything.
    #[test]
    fn scopes_bound_what_a_key_gives_and_replaces() {
        let narrow = Bounds::of(&caller(Environment::LIVE, &["orders:read"], "u1")).unwrap();
        let broad = key(Environment::LIVE, &["admin"], "u1");
        assert!(narrow.may_see(&broad));
        assert_eq!(
            narrow.check_may_replace(&broad).unwrap_err().code(),
            "scope_exceeds_caller"
        );
        assert_eq!(
            narrow.check_may_cancel(&broad).unwrap_err().code(),
            "scope_exceeds_caller"
        );
        let same = key(Environment::LIVE, &["orders:read"], "u1");
        assert!(narrow.check_may_replace(&same).is_ok());
        let admin = Bounds::of(&caller(Environment::LIVE, &["admin"], "u2")).unwrap();
        assert!(admin.check_may_replace(&broad).is_ok());
        assert!(admin.may_see(&broad));
    }

    /// A session may give any scope but `admin` and `*`, and may revoke any key of
    /// its user, but not replace one holding `admin`.
    #[test]
    fn sessions_never_obtain_admin() {
        let session = Actor::Caller(
            Principal::from_claims(AuthMethod::UserSession, Environment::LIVE)
                .with_user_id(Some(UserId::new("u1").unwrap())),
        );
        let bounds = Bounds::of(&session).unwrap();
        for all in ["admin", "*"] {
            let scopes = Scopes::parse([all]).unwrap();
            assert!(bounds.check_grant(&scopes).is_err(), "{all}");
        }
        assert!(
            bounds
                .check_grant(&Scopes::parse(["orders:*"]).unwrap())
                .is_ok()
        );
        let admin_key = key(Environment::LIVE, &["admin"], "u1");
        assert!(bounds.check_may_cancel(&admin_key).is_ok());
        assert!(bounds.check_may_replace(&admin_key).is_err());
    }

    /// A key caller's new keys get its expiry when none is asked, keep an earlier one,
    /// and are refused a later one they asked for.
    #[test]
    fn expiry_is_bounded_by_the_caller() {
        let mut parent = key(Environment::LIVE, &["orders:read"], "u1");
        let limit = t0() + TimeDelta::hours(1);
        parent.expires_at = Some(limit);
        let bounds = Bounds::of(&Principal::from_api_key(Arc::new(parent), None).into()).unwrap();
        let mut child = key(Environment::LIVE, &[], "u1");
        bounds.bound_expiry(&mut child, false).unwrap();
        assert_eq!(child.expires_at, Some(limit));
        child.expires_at = Some(limit - TimeDelta::minutes(1));
        bounds.bound_expiry(&mut child, true).unwrap();
        assert_eq!(child.expires_at, Some(limit - TimeDelta::minutes(1)));
        child.expires_at = Some(limit + TimeDelta::days(1));
        assert_eq!(
            bounds.bound_expiry(&mut child, true).unwrap_err().code(),
            "expiry_exceeds_caller"
        );
        bounds.bound_expiry(&mut child, false).unwrap();
        assert_eq!(child.expires_at, Some(limit));
    }

    /// Publishable keys manage nothing; keys of no user manage nothing unless admin.
    #[test]
    fn publishable_and_userless_callers() {
        let mut pk = key(Environment::LIVE, &["admin"], "u1");
        pk.key_type = KeyType::PUBLISHABLE;
        let pk = Actor::from(Principal::from_api_key(Arc::new(pk), None));
        assert_eq!(Bounds::of(&pk).unwrap_err(), Denied::PublishableKey);
        let mut orphan = key(Environment::LIVE, &["orders:*"], "u1");
        orphan.user_id = None;
        let orphan = Actor::from(Principal::from_api_key(Arc::new(orphan.clone()), None));
        assert_eq!(Bounds::of(&orphan).unwrap_err(), Denied::NoUser);
    }
}
