//! The authority rules as a property: random callers (environment, key type, scopes,
//! expiry, admin or not, user and tenant, an API key, an exchanged JWT, a JWT key or a
//! person's session) × random operations (issue, list, show, revoke, roll, regenerate)
//! × random targets, 10 000 cases a run, against a world of four users (two of one
//! tenant) and 32 keys in the memory store.
//!
//! For every case: no key the operation produces exceeds its caller (environment,
//! scopes, expiry, owner, tenant); an operation on a target beyond the caller's
//! authority (by an independent model of the rules written here) never succeeds; every
//! refusal is one of the typed errors, and leaves the store as it was.
//!
//! Past 500 lines on purpose: the independent model of the rules is most of the file,
//! and it is checked against the code only if it is read next to the generator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use keyroute::auth::AuthMethod;
use keyroute::keys::{ADMIN_SCOPE, KeyOptions, KeyQuery, KeyService, Tenant};
use keyroute::store::MemoryStore;
use keyroute::store::{ApiKeyStore, UserStore};
use keyroute::test_util::ManualClock;
use keyroute::{
    ApiKey, Environment, KeyId, KeyRequest, KeyServiceError, KeyType, Principal, Scopes, User,
    UserId,
};
use proptest::prelude::*;

const SCOPES: [&str; 5] = ["orders:read", "orders:*", "users:read", ADMIN_SCOPE, "*"];
const KEY_SCOPES: [&[&str]; 4] = [&["orders:read"], &["orders:*"], &[ADMIN_SCOPE], &[]];

fn t0() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000)
}

fn env(i: u8) -> Environment {
    if i.is_multiple_of(2) {
        Environment::LIVE
    } else {
        Environment::TEST
    }
}

fn scopes(mask: u8) -> Scopes {
    Scopes::parse(
        SCOPES
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, s)| *s),
    )
    .unwrap()
}

/// The world every case starts from: users u0..u3 (u2 and u3 of tenant `acme`), and
/// for each user and environment a key per scope set of [`KEY_SCOPES`] plus a short
/// one expiring in 30 minutes.
struct World {
    service: KeyService<Arc<MemoryStore>>,
    users: Vec<User>,
    keys: Vec<ApiKey>,
}

async fn world() -> World {
    let store = Arc::new(MemoryStore::new());
    let mut options = KeyOptions::default();
    options.key_types = vec![KeyType::SECRET, KeyType::PUBLISHABLE];
    let service = KeyService::new(Arc::clone(&store), options)
        .unwrap()
        .with_clock(Arc::new(ManualClock::new(t0())));
    let acme = Tenant::new("acme").unwrap();
    let mut users = Vec::new();
    for i in 0..4 {
        let mut user = User::new(
            UserId::new(format!("u{i}")).unwrap(),
            format!("user{i}"),
            t0(),
        );
        if i >= 2 {
            user.tenant = Some(acme.clone());
        }
        users.push(user);
    }
    store.import_users(&users).await.unwrap();
    let mut keys = Vec::new();
    for user in &users {
        for e in [Environment::LIVE, Environment::TEST] {
            for (n, scopes) in KEY_SCOPES.iter().enumerate() {
                let mut request = KeyRequest::new(KeyType::SECRET, e.clone())
                    .for_user(user.id.clone())
                    .named(format!("k{n}"))
                    .with_scopes(Scopes::parse(scopes.iter()).unwrap());
                if n == 3 {
                    request = request.expires_in(Duration::from_secs(1800));
                }
                keys.push(service.issue_key(request).await.unwrap().key);
            }
        }
    }
    World {
        service,
        users,
        keys,
    }
}

/// A random caller, as the parts it is made of.
#[derive(Debug, Clone)]
struct CallerSpec {
    method: u8,
    env: u8,
    publishable: bool,
    scope_mask: u8,
    expiry: u8,
    user: Option<u8>,
    foreign_tenant: bool,
}

fn caller_spec() -> impl Strategy<Value = CallerSpec> {
    (
        0u8..4,
        0u8..2,
        prop::bool::weighted(0.1),
        0u8..32,
        0u8..3,
        prop::option::weighted(0.9, 0u8..4),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(method, env, publishable, scope_mask, expiry, user, foreign_tenant)| CallerSpec {
                method,
                env,
                publishable,
                scope_mask,
                expiry,
                user,
                foreign_tenant,
            },
        )
}

/// The caller's principal, and the expiry that bounds what it makes (`None`: none).
fn principal(spec: &CallerSpec, users: &[User]) -> (Principal, Option<DateTime<Utc>>) {
    let user = spec.user.map(|i| &users[usize::from(i)]);
    let tenant = if spec.foreign_tenant {
        Some(Tenant::new("globex").unwrap())
    } else {
        user.and_then(|u| u.tenant.clone())
    };
    let key_expiry = match spec.expiry {
        0 => None,
        1 => Some(t0() + TimeDelta::hours(1)),
        _ => Some(t0() + TimeDelta::days(1)),
    };
    let key_type = if spec.publishable {
        KeyType::PUBLISHABLE
    } else {
        KeyType::SECRET
    };
    let scopes = scopes(spec.scope_mask);
    match spec.method {
        0 => {
            let mut key = ApiKey::new(
                KeyId::random(),
                key_type,
                env(spec.env),
                keyroute::keys::KeyHash::of("caller"),
                "sk_…",
                t0(),
            );
            key.user_id = user.map(|u| u.id.clone());
            key.tenant = tenant;
            key.scopes = scopes;
            key.expires_at = key_expiry;
            (Principal::from_api_key(Arc::new(key), None), key_expiry)
        }
        1 | 2 => {
            let (method, own_exp, authority) = if spec.method == 1 {
                // An exchanged JWT: 15 minutes of its own, its key's authority.
                let exp = t0() + TimeDelta::minutes(15);
                let own = key_expiry.map_or(exp, |k| k.min(exp));
                (AuthMethod::KeyJwt, Some(own), Some(key_expiry))
            } else {
                (AuthMethod::ScopedJwt, key_expiry, None)
            };
            let mut p = Principal::from_claims(method, env(spec.env))
                .with_key_id(Some(KeyId::random()))
                .with_key_type(Some(key_type))
                .with_user_id(user.map(|u| u.id.clone()))
                .with_tenant(tenant)
                .with_scopes(scopes)
                .with_expires_at(own_exp);
            if let Some(authority) = authority {
                p = p.with_authority_expires_at(authority);
            }
            (p, key_expiry)
        }
        _ => (
            Principal::from_claims(AuthMethod::UserSession, env(spec.env))
                .with_user_id(user.map(|u| u.id.clone()))
                .with_tenant(tenant)
                .with_expires_at(Some(t0() + TimeDelta::hours(1))),
            None,
        ),
    }
}

/// A random operation.
#[derive(Debug, Clone)]
enum Op {
    Issue {
        user: Option<u8>,
        env: u8,
        publishable: bool,
        scope_mask: u8,
        expires: u8,
    },
    List {
        user: Option<u8>,
        env: Option<u8>,
    },
    Show(u8),
    Revoke(u8),
    Roll(u8, bool),
    Regenerate {
        user: Option<u8>,
        env: u8,
        grace: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            prop::option::of(0u8..4),
            0u8..2,
            prop::bool::weighted(0.2),
            0u8..32,
            0u8..4
        )
            .prop_map(|(user, env, publishable, scope_mask, expires)| Op::Issue {
                user,
                env,
                publishable,
                scope_mask,
                expires
            }),
        (prop::option::of(0u8..4), prop::option::of(0u8..2))
            .prop_map(|(user, env)| Op::List { user, env }),
        (0u8..32).prop_map(Op::Show),
        (0u8..32).prop_map(Op::Revoke),
        (0u8..32, any::<bool>()).prop_map(|(k, g)| Op::Roll(k, g)),
        (prop::option::of(0u8..4), 0u8..2, any::<bool>())
            .prop_map(|(user, env, grace)| Op::Regenerate { user, env, grace }),
    ]
}

/// The model: what the caller may reach, written from the rules' text.
struct Model<'a> {
    spec: &'a CallerSpec,
    principal: &'a Principal,
    limit: Option<DateTime<Utc>>,
}

impl Model<'_> {
    fn is_key(&self) -> bool {
        self.principal.method().is_key()
    }
    fn admin(&self) -> bool {
        self.is_key() && self.principal.scopes().grants(ADMIN_SCOPE)
    }
    fn may_act_at_all(&self) -> bool {
        let publishable = self.is_key() && self.spec.publishable;
        !publishable && (self.admin() || self.spec.user.is_some())
    }
    fn grants(&self, scope: &str) -> bool {
        if self.is_key() {
            self.principal.scopes().grants(scope)
        } else {
            scope != ADMIN_SCOPE && scope != "*"
        }
    }
    fn grants_all(&self, scopes: &Scopes) -> bool {
        scopes.iter().all(|s| self.grants(s.as_str()))
    }
    fn reaches_user(&self, user: &User) -> bool {
        let own = self.principal.user_id() == Some(&user.id);
        (own || self.admin()) && self.reaches_tenant(user.tenant.as_ref())
    }
    fn reaches_tenant(&self, tenant: Option<&Tenant>) -> bool {
        self.principal.tenant().is_none_or(|t| tenant == Some(t))
    }
    fn reaches_key(&self, key: &ApiKey) -> bool {
        let own = key.user_id.as_ref() == self.principal.user_id() && key.user_id.is_some();
        (own || self.admin())
            && self.reaches_tenant(key.tenant.as_ref())
            && &key.environment == self.principal.environment()
    }
    /// Whether a key this caller produced stays within it.
    fn within(&self, key: &ApiKey) -> Result<(), String> {
        if &key.environment != self.principal.environment() {
            return Err(format!("environment {}", key.environment));
        }
        if let Some(bad) = key.scopes.iter().find(|s| !self.grants(s.as_str())) {
            return Err(format!("scope {bad}"));
        }
        if self.is_key()
            && let Some(limit) = self.limit
            && key.expires_at.is_none_or(|at| at > limit)
        {
            return Err(format!("expiry {:?} past {limit}", key.expires_at));
        }
        if !self.admin() && key.user_id.as_ref() != self.principal.user_id() {
            return Err("owner".to_owned());
        }
        if !self.reaches_tenant(key.tenant.as_ref()) {
            return Err("tenant".to_owned());
        }
        Ok(())
    }
}

/// Every key in the world's store, sorted by id.
async fn snapshot(world: &World) -> Vec<ApiKey> {
    let mut all = Vec::new();
    for user in &world.users {
        all.extend(
            world
                .service
                .store()
                .get_user_api_keys(&user.id, &KeyQuery::all())
                .await
                .unwrap(),
        );
    }
    all.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    all
}

fn typed_refusal(error: &KeyServiceError) -> bool {
    matches!(
        error,
        KeyServiceError::Denied(_)
            | KeyServiceError::UserRequired
            | KeyServiceError::NotRollable
            | KeyServiceError::UnknownUser(_)
            | KeyServiceError::EnvironmentNotEnabled(_)
            | KeyServiceError::KeyTypeNotEnabled(_)
            | KeyServiceError::Text(_)
    )
}

/// Runs one case; `Err` describes a broken property.
async fn case(spec: CallerSpec, op: Op) -> Result<&'static str, String> {
    let world = world().await;
    let (principal, limit) = principal(&spec, &world.users);
    let model = Model {
        spec: &spec,
        principal: &principal,
        limit,
    };
    let acting = world.service.acting_as(&principal);
    let before = snapshot(&world).await;
    let user = |i: Option<u8>| i.map(|i| world.users[usize::from(i)].id.clone());
    let user_rec = |id: &UserId| world.users.iter().find(|u| &u.id == id).unwrap().clone();
    let grace = |g: bool| g.then(|| Duration::from_secs(3600));

    // Ok(true): succeeded; Ok(false): "no such key"; Err: refused.
    let (outcome, allowed): (Result<bool, KeyServiceError>, bool) = match &op {
        Op::Issue {
            user: named,
            env: e,
            publishable,
            scope_mask,
            expires,
        } => {
            let key_type = if *publishable {
                KeyType::PUBLISHABLE
            } else {
                KeyType::SECRET
            };
            let asked = scopes(*scope_mask);
            let mut request = KeyRequest::new(key_type, env(*e)).with_scopes(asked.clone());
            if let Some(id) = user(*named) {
                request = request.for_user(id);
            }
            let lifetime = [None, Some(600), Some(7200), Some(2_592_000)][usize::from(*expires)]
                .map(Duration::from_secs);
            if let Some(lifetime) = lifetime {
                request = request.expires_in(lifetime);
            }
            let target = user(*named).or_else(|| principal.user_id().cloned());
            let expiry_ok = match (model.is_key(), limit, lifetime) {
                (true, Some(limit), Some(l)) => t0() + TimeDelta::from_std(l).unwrap() <= limit,
                _ => true,
            };
            let allowed = model.may_act_at_all()
                && &env(*e) == principal.environment()
                && model.grants_all(&asked)
                && expiry_ok
                && target.is_some_and(|t| model.reaches_user(&user_rec(&t)));
            (acting.issue_key(request).await.map(|_| true), allowed)
        }
        Op::List {
            user: named,
            env: e,
        } => {
            let result = match acting.user_for(user(*named).as_ref()) {
                Ok(id) => {
                    let mut query = KeyQuery::all();
                    if let Some(e) = e {
                        query = query.in_environment(env(*e));
                    }
                    acting.list_keys(&id, &query).await.map(|keys| {
                        for key in &keys {
                            assert!(model.reaches_key(key), "listed a key beyond reach: {key:?}");
                        }
                        true
                    })
                }
                Err(e) => Err(e),
            };
            let target = user(*named).or_else(|| principal.user_id().cloned());
            let allowed = model.may_act_at_all()
                && e.is_none_or(|e| &env(e) == principal.environment())
                && target.is_some_and(|t| model.reaches_user(&user_rec(&t)));
            (result, allowed)
        }
        Op::Show(k) | Op::Revoke(k) | Op::Roll(k, _) => {
            let target = &world.keys[usize::from(*k)];
            let allowed = model.may_act_at_all()
                && model.reaches_key(target)
                && match &op {
                    Op::Show(_) => true,
                    Op::Revoke(_) => !model.is_key() || model.grants_all(&target.scopes),
                    _ => model.grants_all(&target.scopes),
                };
            let result = match &op {
                Op::Show(_) => acting.key(&target.id).await.map(|k| k.is_some()),
                Op::Revoke(_) => acting.revoke(&target.id).await.map(|k| k.is_some()),
                Op::Roll(_, g) => acting
                    .roll(&target.id, grace(*g))
                    .await
                    .map(|k| k.is_some()),
                _ => unreachable!(),
            };
            (result, allowed)
        }
        Op::Regenerate {
            user: named,
            env: e,
            grace: g,
        } => {
            let result = match acting.user_for(user(*named).as_ref()) {
                Ok(id) => acting
                    .regenerate(&id, &env(*e), grace(*g))
                    .await
                    .map(|_| true),
                Err(e) => Err(e),
            };
            let target = user(*named).or_else(|| principal.user_id().cloned());
            let allowed = model.may_act_at_all()
                && &env(*e) == principal.environment()
                && target.is_some_and(|t| {
                    model.reaches_user(&user_rec(&t))
                        && world
                            .keys
                            .iter()
                            .filter(|k| k.user_id.as_ref() == Some(&t) && k.environment == env(*e))
                            .all(|k| model.grants_all(&k.scopes))
                });
            (result, allowed)
        }
    };

    let after = snapshot(&world).await;
    match outcome {
        Ok(true) => {
            if !allowed {
                return Err(format!("succeeded beyond the caller's authority: {op:?}"));
            }
            for key in after
                .iter()
                .filter(|k| !before.iter().any(|b| b.id == k.id))
            {
                model
                    .within(key)
                    .map_err(|why| format!("produced a key beyond its caller ({why}): {op:?}"))?;
            }
            Ok("allowed")
        }
        Ok(false) | Err(_) => {
            if let Err(error) = &outcome
                && !typed_refusal(error)
            {
                return Err(format!("untyped refusal {error:?} for {op:?}"));
            }
            if before != after {
                return Err(format!("a refused operation changed the store: {op:?}"));
            }
            Ok("refused")
        }
    }
}

/// The rules hold for 10 000 random callers, operations and targets.
#[test]
fn no_key_makes_a_key_stronger_than_itself() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let counts = std::cell::RefCell::new((0u32, 0u32));
    let config = ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(spec in caller_spec(), op in op())| {
        match runtime.block_on(case(spec, op)) {
            Ok(kind) => {
                let mut counts = counts.borrow_mut();
                if kind == "allowed" { counts.0 += 1 } else { counts.1 += 1 }
            }
            Err(broken) => prop_assert!(false, "{}", broken),
        }
    });
    let (allowed, refused) = counts.into_inner();
    // Both sides of every rule were exercised, not only refusals.
    assert!(
        allowed > 1_000 && refused > 1_000,
        "allowed {allowed}, refused {refused}"
    );
}
