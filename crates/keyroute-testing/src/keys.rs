//! Users and keys for a test: `app.user("ada")`, then
//! `app.key(&ada).test().scopes(["orders:read"]).await?`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use keyroute::keys::Tenant;
use keyroute::{Environment, IssuedKey, KeyRequest, KeyType, NewUser, Scopes, User};

use crate::{TestApp, TestAppError, TestBackend};

impl<B: TestBackend> TestApp<B> {
    /// Registers a user named `name` (and the keys registration makes, which the test
    /// can ignore; make the keys it needs with [`key`](Self::key)).
    ///
    /// # Errors
    /// [`TestAppError::Keys`] when the name is taken or invalid.
    pub async fn user(&self, name: &str) -> Result<User, TestAppError> {
        Ok(self
            .keyroute()
            .keys()
            .register_user(NewUser::named(name))
            .await?
            .user)
    }

    /// Registers a user named `name` in `tenant`; the user's keys belong to the tenant
    /// and route to its databases.
    ///
    /// # Errors
    /// [`TestAppError::Name`] for an invalid tenant; otherwise as [`user`](Self::user).
    pub async fn user_in(&self, name: &str, tenant: &str) -> Result<User, TestAppError> {
        let tenant = Tenant::new(tenant).map_err(|e| name_error("tenant", tenant, e))?;
        Ok(self
            .keyroute()
            .keys()
            .register_user(NewUser::named(name).with_tenant(tenant))
            .await?
            .user)
    }

    /// A key for `user`: a live secret key with no scopes unless the builder says
    /// otherwise. Await it (or call [`KeyBuilder::issue`]) to issue it through the key
    /// service, as the application (no caller's limits apply).
    pub fn key(&self, user: &User) -> KeyBuilder<'_, B> {
        KeyBuilder {
            app: self,
            request: Ok(
                KeyRequest::new(KeyType::SECRET, Environment::LIVE).for_user(user.id.clone())
            ),
        }
    }
}

/// A key being described for [`TestApp::key`]. The first invalid name given is
/// reported when the key is issued.
#[derive(Debug)]
#[must_use = "a key is issued only when awaited"]
pub struct KeyBuilder<'a, B: TestBackend> {
    app: &'a TestApp<B>,
    request: Result<KeyRequest, TestAppError>,
}

fn name_error(what: &'static str, value: &str, reason: impl ToString) -> TestAppError {
    TestAppError::Name {
        what,
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

impl<B: TestBackend> KeyBuilder<'_, B> {
    fn map(mut self, f: impl FnOnce(KeyRequest) -> Result<KeyRequest, TestAppError>) -> Self {
        self.request = self.request.and_then(f);
        self
    }

    /// A `live` key (the default).
    pub fn live(self) -> Self {
        self.environment("live")
    }

    /// A `test` key.
    pub fn test(self) -> Self {
        self.environment("test")
    }

    /// A key for environment `env`.
    pub fn environment(self, env: &str) -> Self {
        self.map(|mut r| {
            r.environment = Environment::new(env).map_err(|e| name_error("environment", env, e))?;
            Ok(r)
        })
    }

    /// A `publishable` key.
    pub fn publishable(self) -> Self {
        self.key_type("publishable")
    }

    /// A key of type `key_type` (`secret` is the default).
    pub fn key_type(self, key_type: &str) -> Self {
        self.map(|mut r| {
            r.key_type = KeyType::new(key_type).map_err(|e| name_error("key type", key_type, e))?;
            Ok(r)
        })
    }

    /// The key's scopes (`["orders:read", "orders:write"]`).
    pub fn scopes<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        self.map(|r| {
            let parsed =
                Scopes::parse(&scopes).map_err(|e| name_error("scope", &scopes.join(" "), e))?;
            Ok(r.with_scopes(parsed))
        })
    }

    /// The key's tenant (by default its user's).
    pub fn tenant(self, tenant: &str) -> Self {
        self.map(|r| {
            let tenant = Tenant::new(tenant).map_err(|e| name_error("tenant", tenant, e))?;
            Ok(r.with_tenant(tenant))
        })
    }

    /// The key's lifetime (by default the configuration's `expire_keys_after`).
    pub fn expires_in(self, lifetime: Duration) -> Self {
        self.map(|r| Ok(r.expires_in(lifetime)))
    }

    /// The key's name.
    pub fn named(self, name: &str) -> Self {
        self.map(|r| Ok(r.named(name)))
    }

    /// Issues the key; the plaintext is in [`IssuedKey::plaintext`].
    ///
    /// # Errors
    /// The first invalid name given to the builder; [`TestAppError::Keys`] when the
    /// key service refuses the request.
    pub async fn issue(self) -> Result<IssuedKey, TestAppError> {
        let request = self.request?;
        Ok(self.app.keyroute().keys().issue_key(request).await?)
    }
}

impl<'a, B: TestBackend> IntoFuture for KeyBuilder<'a, B> {
    type Output = Result<IssuedKey, TestAppError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.issue())
    }
}
