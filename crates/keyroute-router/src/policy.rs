//! Routing policies: which named connection a [`Principal`] gets.
//!
//! The default, [`ByEnvironment`], names the connection after the key's environment: a
//! `test` key gets `test`, a `live` key `live`. [`RouteTable`] maps environments to
//! other names, [`Template`] builds names from the environment and the key's tenant
//! (`{tenant}_{env}` gives `acme_test`), and any type implementing [`RoutingPolicy`] can
//! decide for itself, as overriding `GetDbConnection(req)` does in ServiceStack.
//!
//! Every policy fails closed: a principal it cannot name a connection for is a
//! [`RouteError::NoRoute`], never a fallback to live or to a default.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use keyroute_core::{ConfigError, Environment, Principal};

use crate::error::RouteError;

/// Decides which named connection a principal's requests use.
pub trait RoutingPolicy: Send + Sync + fmt::Debug {
    /// The connection name for `principal`.
    ///
    /// # Errors
    /// [`RouteError::NoRoute`] when the policy has no connection for this principal.
    fn route<'p>(&self, principal: &'p Principal) -> Result<Cow<'p, str>, RouteError>;

    /// Every connection name this policy can give keys of `environment`, when that can
    /// be known before any request (`None` when it depends on more, such as a
    /// tenant). The router checks each is configured when it is built, so a route to a
    /// connection that does not exist is refused at start-up, not on the first request.
    fn targets(&self, environment: &Environment) -> Option<Vec<String>> {
        let _ = environment;
        None
    }

    /// The `[routing]` option this policy comes from, for error messages. Default
    /// `policy`.
    fn option_name(&self) -> &'static str {
        "policy"
    }
}

// A boxed policy is a policy, so builders can hold one chosen at run time.
impl<P: RoutingPolicy + ?Sized> RoutingPolicy for Box<P> {
    fn route<'p>(&self, principal: &'p Principal) -> Result<Cow<'p, str>, RouteError> {
        (**self).route(principal)
    }

    fn targets(&self, environment: &Environment) -> Option<Vec<String>> {
        (**self).targets(environment)
    }

    fn option_name(&self) -> &'static str {
        (**self).option_name()
    }
}

fn template_error(at: At, reason: impl fmt::Display) -> RouteError {
    ConfigError::invalid(at.0, at.1, reason).into()
}

/// The section and option a template was read from, which its errors name.
type At = (&'static str, &'static str);

/// Where route templates are read from.
const ROUTING: At = ("routing", "template");

/// Where schema templates are read from ([`Template::parse_schema`]).
const SCHEMA: At = ("tenancy", "schema");

/// Where database URL templates are read from ([`Template::parse_url`]).
const URL: At = ("routing", "url_template");

/// The connection named after the principal's environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByEnvironment;

impl RoutingPolicy for ByEnvironment {
    fn route<'p>(&self, principal: &'p Principal) -> Result<Cow<'p, str>, RouteError> {
        Ok(Cow::Borrowed(principal.environment().as_str()))
    }

    fn targets(&self, environment: &Environment) -> Option<Vec<String>> {
        Some(vec![environment.as_str().to_owned()])
    }

    fn option_name(&self) -> &'static str {
        "connections"
    }
}

/// A fixed map from environment to connection name; unmapped environments have no route.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    by_environment: HashMap<Environment, String>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `environment` to the connection `name`.
    pub fn environment(mut self, environment: Environment, name: impl Into<String>) -> Self {
        self.by_environment.insert(environment, name.into());
        self
    }
}

impl RoutingPolicy for RouteTable {
    fn route<'p>(&self, principal: &'p Principal) -> Result<Cow<'p, str>, RouteError> {
        self.by_environment
            .get(principal.environment())
            .map(|name| Cow::Owned(name.clone()))
            .ok_or_else(|| RouteError::no_route(principal, "the route table has no entry for it"))
    }

    fn targets(&self, environment: &Environment) -> Option<Vec<String>> {
        Some(
            self.by_environment
                .get(environment)
                .cloned()
                .into_iter()
                .collect(),
        )
    }

    fn option_name(&self) -> &'static str {
        "table"
    }
}

/// Connection names built from a template over `{env}`, `{tenant}` and `{key_type}`.
///
/// A principal without a value the template needs (no tenant for `{tenant}_{env}`) has
/// no route.
///
/// # Names are unambiguous
///
/// Environments, tenants and key types may hold `a-z`, `0-9` and `-`, so `{tenant}-{env}`
/// would give tenant `acme-eu` in `live` and tenant `acme` in `eu-live` the same
/// connection, `acme-eu-live`. A template is therefore accepted only when
///
/// - it holds `{env}`, so a test key and a live key never share a connection, and
/// - between any two placeholders stands a character no name may hold (anything but
///   `a-z`, `0-9` and `-`): `{tenant}_{env}`, `{tenant}.{env}`, `{env}/{tenant}`.
///
/// Then two principals that differ in any value the template uses always get
/// different connection names: the first such character after a placeholder marks
/// where its value ends. `_` is the natural separator: it is a bare TOML key character
/// and no name may contain it.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Environment,
    Tenant,
    KeyType,
}

impl Template {
    /// Parses a template such as `{tenant}_{env}`.
    ///
    /// # Errors
    /// [`RouteError::Config`] naming the `template` option for an unknown placeholder,
    /// an unclosed brace, a template without `{env}`, or two placeholders separated
    /// only by characters names may hold (`{tenant}-{env}`, `{tenant}{env}`).
    pub fn parse(template: &str) -> Result<Self, RouteError> {
        Self::parse_at(template, ROUTING)
    }

    /// Parses a schema-name template such as `tenant_{tenant}` (`[tenancy] schema`):
    /// as a route template, but it must hold `{tenant}` rather than `{env}`, so each
    /// tenant gets a schema of its own.
    ///
    /// # Errors
    /// As [`parse`](Self::parse), naming `[tenancy] schema`, and for a template
    /// without `{tenant}`.
    pub(crate) fn parse_schema(template: &str) -> Result<Self, RouteError> {
        Self::parse_at(template, SCHEMA)
    }

    /// Parses a database URL template such as `postgres://app@db/{tenant}_{env}`
    /// (`[routing] url_template`): it must hold `{tenant}` and `{env}`, so each tenant
    /// and environment gets a database of its own. Errors quote the template: the
    /// caller redacts its password.
    pub(crate) fn parse_url(template: &str) -> Result<Self, RouteError> {
        Self::parse_at(template, URL)
    }

    fn parse_at(template: &str, at: At) -> Result<Self, RouteError> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| {
                template_error(at, format_args!("{template:?} has an unclosed '{{'"))
            })?;
            parts.push(match &after[..close] {
                "env" => Part::Environment,
                "tenant" => Part::Tenant,
                "key_type" => Part::KeyType,
                other => {
                    return Err(template_error(at, format_args!(
                        "{template:?} has an unknown placeholder {{{other}}}; use {{env}}, {{tenant}} or {{key_type}}"
                    )));
                }
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        if parts.is_empty() {
            return Err(template_error(
                at,
                "it is empty; use e.g. \"{tenant}_{env}\"",
            ));
        }
        check_unambiguous(template, &parts, at)?;
        Ok(Self { parts })
    }
}

/// Whether `c` may appear in an environment, tenant or key type (core's name rules).
fn may_appear_in_names(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

impl Part {
    fn placeholder(&self) -> Option<&'static str> {
        match self {
            Part::Text(_) => None,
            Part::Environment => Some("{env}"),
            Part::Tenant => Some("{tenant}"),
            Part::KeyType => Some("{key_type}"),
        }
    }
}

/// Refuses templates that could give two different principals one connection name.
fn check_unambiguous(template: &str, parts: &[Part], at: At) -> Result<(), RouteError> {
    if at == URL && !parts.contains(&Part::Tenant) {
        return Err(template_error(
            at,
            format_args!(
                "{template:?} has no {{tenant}}, so tenants would share a database; include {{tenant}}, e.g. \"postgres://app@db/{{tenant}}_{{env}}\""
            ),
        ));
    }
    if at == SCHEMA && !parts.contains(&Part::Tenant) {
        return Err(template_error(
            at,
            format_args!(
                "{template:?} has no {{tenant}}, so every tenant would share one schema; include {{tenant}}, e.g. \"tenant_{{tenant}}\""
            ),
        ));
    }
    if (at == ROUTING || at == URL) && !parts.contains(&Part::Environment) {
        return Err(template_error(
            at,
            format_args!(
                "{template:?} has no {{env}}, so test and live keys would share a connection; include {{env}}, e.g. \"{{tenant}}_{{env}}\""
            ),
        ));
    }
    // The previous placeholder, and whether a character no name holds has followed it.
    let mut previous: Option<(&str, bool)> = None;
    for part in parts {
        match (part, part.placeholder()) {
            (Part::Text(text), _) => {
                if let Some((_, separated)) = previous.as_mut() {
                    *separated |= !text.chars().all(may_appear_in_names);
                }
            }
            (_, Some(current)) => {
                if let Some((earlier, false)) = previous {
                    return Err(template_error(
                        at,
                        format_args!(
                            "{template:?}: {earlier} and {current} are separated only by characters names may contain (a-z, 0-9, '-'), so different tenants or environments could share a connection (tenant acme-eu in live and acme in eu-live both give acme-eu-live); put a character names cannot contain between them, e.g. \"{{tenant}}_{{env}}\""
                        ),
                    ));
                }
                previous = Some((current, false));
            }
            (_, None) => {}
        }
    }
    Ok(())
}

impl RoutingPolicy for Template {
    fn route<'p>(&self, principal: &'p Principal) -> Result<Cow<'p, str>, RouteError> {
        let mut name = String::with_capacity(32);
        for part in &self.parts {
            match part {
                Part::Text(text) => name.push_str(text),
                Part::Environment => name.push_str(principal.environment().as_str()),
                Part::Tenant => match principal.tenant() {
                    Some(tenant) => name.push_str(tenant.as_str()),
                    None => {
                        return Err(RouteError::no_route(
                            principal,
                            "the route template needs a tenant and it has none",
                        ));
                    }
                },
                Part::KeyType => match principal.key_type() {
                    Some(key_type) => name.push_str(key_type.as_str()),
                    None => {
                        return Err(RouteError::no_route(
                            principal,
                            "the route template needs a key type and it has none",
                        ));
                    }
                },
            }
        }
        Ok(Cow::Owned(name))
    }

    fn targets(&self, environment: &Environment) -> Option<Vec<String>> {
        let mut name = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => name.push_str(text),
                Part::Environment => name.push_str(environment.as_str()),
                Part::Tenant | Part::KeyType => return None,
            }
        }
        Some(vec![name])
    }

    fn option_name(&self) -> &'static str {
        "template"
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use keyroute_core::{AuthMethod, Tenant};

    /// A principal in `env` with `tenant`, for this crate's tests.
    pub(crate) fn principal(env: &str, tenant: Option<&str>) -> Principal {
        Principal::from_claims(AuthMethod::ApiKey, Environment::new(env).unwrap())
            .with_tenant(tenant.map(|t| Tenant::new(t).unwrap()))
    }

    /// The default names the environment; a table maps it; a template builds it.
    #[test]
    fn policies_name_connections() {
        let p = principal("test", Some("acme"));
        assert_eq!(ByEnvironment.route(&p).unwrap(), "test");
        let table = RouteTable::new().environment(Environment::TEST, "TestDb");
        assert_eq!(table.route(&p).unwrap(), "TestDb");
        assert!(matches!(
            table.route(&principal("live", None)),
            Err(RouteError::NoRoute { .. })
        ));
        let template = Template::parse("{tenant}_{env}").unwrap();
        assert_eq!(template.route(&p).unwrap(), "acme_test");
    }

    /// A template that needs a tenant gives no route to a principal without one.
    #[test]
    fn templates_fail_closed() {
        let template = Template::parse("{tenant}_{env}").unwrap();
        assert!(matches!(
            template.route(&principal("live", None)),
            Err(RouteError::NoRoute { .. })
        ));
    }

    /// Bad templates are configuration errors.
    #[test]
    fn bad_templates() {
        for bad in [
            "",
            "{tenant",
            "{region}_{env}",
            "{tenant}",
            "{tenant}-{env}",
            "{env}{tenant}",
            "{tenant}-x-{env}",
        ] {
            assert!(
                matches!(Template::parse(bad), Err(RouteError::Config(e)) if e.option == "template"),
                "{bad:?}"
            );
        }
        for good in [
            "db-{env}",
            "{tenant}_{env}",
            "{env}.{tenant}-db",
            "{tenant}/x-{env}",
        ] {
            assert!(Template::parse(good).is_ok(), "{good:?}");
        }
    }
}
