//! A database per tenant without a configuration line per tenant:
//! `[routing] url_template = "postgres://app:secret@db/{tenant}_{env}"`.
//!
//! Each principal's connection is named `{tenant}_{env}` (as the route template of that
//! name would name it). A name that `[connections]` holds is that connection; any
//! other is opened at the URL the template gives for the principal, with
//! `[routing] tenant_pool_size` connections, within the router's `max_pools` and
//! `connection_budget` (the least recently used pool is closed to open another). So
//! ten thousand tenants need no line each, and hold at most the budget's connections.

use std::fmt;

use keyroute_core::{ConfigError, Principal};
use keyroute_pool::DatabaseUrl;

use crate::error::RouteError;
use crate::policy::{RoutingPolicy, Template};

/// The name template of connections opened from a URL template.
pub(crate) const NAMES: &str = "{tenant}_{env}";

/// A parsed `[routing] url_template`. `Debug` masks its password.
#[derive(Clone)]
pub(crate) struct UrlTemplate {
    template: Template,
    raw: DatabaseUrl,
    /// Connections per pool opened from the template; `None` is `[pools] max_size`.
    pub(crate) pool_size: Option<u32>,
}

impl UrlTemplate {
    /// Parses `url`, which must hold `{tenant}` and `{env}`.
    ///
    /// # Errors
    /// [`RouteError::Config`] naming `[routing] url_template`, its password masked.
    pub(crate) fn parse(url: &DatabaseUrl, pool_size: Option<u32>) -> Result<Self, RouteError> {
        // Checked on the masked text first, so an error quotes no password (nor a
        // part of one a brace would cut out).
        Template::parse_url(&url.redact(url.expose_secret()))?;
        let template = Template::parse_url(url.expose_secret()).map_err(|_| {
            ConfigError::invalid(
                "routing",
                "url_template",
                "its password holds '{' or '}'; percent-encode them (%7B, %7D)",
            )
        })?;
        if pool_size == Some(0) {
            return Err(ConfigError::invalid(
                "routing",
                "tenant_pool_size",
                "must be at least 1 (connections per tenant's pool)",
            )
            .into());
        }
        Ok(Self {
            template,
            raw: url.clone(),
            pool_size,
        })
    }

    /// The database URL for `principal`'s tenant and environment.
    ///
    /// # Errors
    /// [`RouteError::NoRoute`] when the principal has no tenant.
    pub(crate) fn url(&self, principal: &Principal) -> Result<DatabaseUrl, RouteError> {
        self.template
            .route(principal)
            .map(|url| DatabaseUrl::new(url.into_owned()))
    }

    /// The routing policy that names these connections.
    pub(crate) fn names() -> Template {
        #[allow(clippy::expect_used)] // a constant the tests parse
        Template::parse(NAMES).expect("the name template parses")
    }
}

impl fmt::Debug for UrlTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlTemplate")
            .field("url", &self.raw)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use keyroute_core::{AuthMethod, Environment, Tenant};

    use super::*;

    #[test]
    fn urls_are_built_per_tenant_and_environment() {
        let t = UrlTemplate::parse(
            &DatabaseUrl::new("postgres://app:s3cret@db/{tenant}_{env}"),
            Some(2),
        )
        .unwrap();
        let p = Principal::from_claims(AuthMethod::ApiKey, Environment::new("test").unwrap())
            .with_tenant(Some(Tenant::new("acme").unwrap()));
        assert_eq!(
            t.url(&p).unwrap().expose_secret(),
            "postgres://app:s3cret@db/acme_test"
        );
        assert!(!format!("{t:?}").contains("s3cret"));
        let _ = UrlTemplate::names();
    }

    #[test]
    fn a_template_without_tenant_or_env_is_refused_without_its_password() {
        for bad in [
            "postgres://app:s3cret@db/{env}",
            "postgres://app:s3cret@db/{tenant}",
            "postgres://app:s3cret@db/{tenant}{env}",
            "postgres://app:s3{cret@db/{tenant}_{env}",
        ] {
            let err = UrlTemplate::parse(&DatabaseUrl::new(bad), None).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("url_template"), "{text}");
            assert!(!text.contains("s3") && !text.contains("cret"), "{text}");
        }
    }
}
