//! Tenancy inside the database: the request's tenant bound on its connection, so the
//! database itself keeps one customer's rows from another's.
//!
//! With [`Tenancy::RowSecurity`] every tenant's rows share tables with a tenant column,
//! and PostgreSQL's row-level security policies compare it with `keyroute.tenant`,
//! which keyroute sets for the request. With [`Tenancy::Schema`] each tenant has a
//! schema (`tenant_{tenant}`) and the request's connection has it alone on its
//! `search_path`. Either way the connection a handler gets is readied in one round
//! trip that undoes whatever an earlier request left on it and binds the tenant
//! ([`DbPool::bound_unit`](keyroute_pool::DbPool::bound_unit)); behind a transaction
//! pooler the request is one transaction and the binding local to it. A request whose
//! tenant cannot be bound gets no connection.
//!
//! A database per tenant is routing, not binding: a `[routing] url_template` (or a
//! `template` such as `{tenant}_{env}` over `[connections]`) within the `max_pools` /
//! `connection_budget` bounds.

use keyroute_core::{ConfigError, Principal};
use keyroute_pool::{Backend, Binding, BindingError, RowSecurityFinding};
use serde::{Deserialize, Serialize};

use crate::error::RouteError;
use crate::policy::{RoutingPolicy, Template};
use crate::router::ConnectionRouter;

/// How a request's tenant is bound in its database.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Tenancy {
    /// Shared tables guarded by PostgreSQL row-level security on `keyroute.tenant`.
    RowSecurity {
        /// The tenant column, whose tables must have row-level security enabled,
        /// forced and a policy (checked when the router is checked, see
        /// [`ConnectionRouter::check_tenancy`](crate::ConnectionRouter::check_tenancy)).
        column: String,
    },
    /// A schema per tenant, named by a template over `{tenant}` (and `{env}`).
    Schema(Template),
}

/// The default tenant column (`[tenancy] column`).
pub const DEFAULT_TENANT_COLUMN: &str = "tenant_id";

/// The default schema template (`[tenancy] schema`).
pub const DEFAULT_SCHEMA_TEMPLATE: &str = "tenant_{tenant}";

impl Tenancy {
    /// Row-level security with the default tenant column, `tenant_id`.
    pub fn row_security() -> Self {
        Self::RowSecurity {
            column: DEFAULT_TENANT_COLUMN.to_owned(),
        }
    }

    /// A schema per tenant, named by `template` (e.g. `tenant_{tenant}`).
    ///
    /// # Errors
    /// [`RouteError::Config`] naming `[tenancy] schema` for a template without
    /// `{tenant}`, with an unknown placeholder, or with placeholders that could run
    /// together.
    pub fn schema(template: &str) -> Result<Self, RouteError> {
        Template::parse_schema(template).map(Self::Schema)
    }

    /// The binding for `principal`'s request.
    ///
    /// # Errors
    /// [`RouteError::NoRoute`] when the principal has no tenant, or its names cannot
    /// be bound: such a request gets no connection.
    pub(crate) fn binding(&self, principal: &Principal) -> Result<Binding, RouteError> {
        let Some(tenant) = principal.tenant() else {
            return Err(RouteError::no_route(
                principal,
                "tenancy is on ([tenancy] mode) and the key has no tenant; issue keys with a tenant",
            ));
        };
        let bound = match self {
            Self::RowSecurity { .. } => {
                Binding::row_security(tenant.as_str(), principal.environment().as_str())
            }
            Self::Schema(template) => Binding::schema(&template.route(principal)?),
        };
        bound.map_err(|e: BindingError| RouteError::no_route(principal, e.to_string()))
    }

    /// The binding of a request without a tenant (the anonymous route): to no tenant,
    /// so it sees no tenant's rows.
    pub(crate) fn nobody(&self) -> Binding {
        match self {
            Self::RowSecurity { .. } => Binding::row_security_nobody(),
            Self::Schema(_) => Binding::schema_nobody(),
        }
    }

    /// The configuration option that chose this mode, for messages.
    pub(crate) fn mode_name(&self) -> &'static str {
        match self {
            Self::RowSecurity { .. } => "row_security",
            Self::Schema(_) => "schema",
        }
    }
}

impl<B: Backend> ConnectionRouter<B> {
    /// What would let requests escape row-level security, per configured connection
    /// (name order), when tenancy is [`Tenancy::RowSecurity`]; empty otherwise. The
    /// front door refuses to start on any finding, and `keyroute doctor` reports them.
    ///
    /// # Errors
    /// [`RouteError::Unavailable`] when a connection cannot be reached or read.
    pub async fn check_tenancy(&self) -> Result<Vec<(String, RowSecurityFinding)>, RouteError> {
        let Some(Tenancy::RowSecurity { column }) = &self.inner.tenancy else {
            return Ok(Vec::new());
        };
        let mut names: Vec<&String> = self.inner.targets.keys().collect();
        names.sort();
        let mut all = Vec::new();
        for name in names {
            let (name, pool) = self.named(name)?;
            let findings = pool.row_security_findings(column).await.map_err(|source| {
                RouteError::Unavailable {
                    connection: name.to_string(),
                    source,
                }
            })?;
            all.extend(findings.into_iter().map(|f| (name.to_string(), f)));
        }
        Ok(all)
    }
}

/// `[tenancy]`: whether and how requests' tenants are bound in the database.
///
/// ```toml
/// [tenancy]
/// mode = "row_security"   # or "schema"; default "none"
/// column = "tenant_id"    # row_security: the tenant column the check looks for
/// schema = "tenant_{tenant}"  # schema: each tenant's schema
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TenancyConfig {
    /// `none` (the default), `row_security` or `schema`.
    pub mode: TenancyMode,
    /// The tenant column of row-level-security tables. Default `tenant_id`.
    pub column: String,
    /// The schema-name template of schema mode. Default `tenant_{tenant}`.
    pub schema: String,
}

/// `[tenancy] mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TenancyMode {
    /// No binding in the database (a database per tenant is a `[routing] template`).
    #[default]
    None,
    /// [`Tenancy::RowSecurity`].
    RowSecurity,
    /// [`Tenancy::Schema`].
    Schema,
}

impl Default for TenancyConfig {
    fn default() -> Self {
        Self {
            mode: TenancyMode::None,
            column: DEFAULT_TENANT_COLUMN.to_owned(),
            schema: DEFAULT_SCHEMA_TEMPLATE.to_owned(),
        }
    }
}

impl TenancyConfig {
    /// The tenancy this section describes, `None` for mode `none`.
    ///
    /// # Errors
    /// [`RouteError::Config`] naming `[tenancy] column` or `[tenancy] schema`.
    pub fn tenancy(&self) -> Result<Option<Tenancy>, RouteError> {
        match self.mode {
            TenancyMode::None => Ok(None),
            TenancyMode::RowSecurity => {
                if self.column.is_empty() || self.column.contains('\0') {
                    return Err(ConfigError::invalid(
                        "tenancy",
                        "column",
                        "must name the tenant column (e.g. \"tenant_id\")",
                    )
                    .into());
                }
                Ok(Some(Tenancy::RowSecurity {
                    column: self.column.clone(),
                }))
            }
            TenancyMode::Schema => Tenancy::schema(&self.schema).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tests::principal;

    #[test]
    fn a_principal_without_a_tenant_is_not_bound() {
        for tenancy in [
            Tenancy::row_security(),
            Tenancy::schema("t_{tenant}").unwrap(),
        ] {
            let err = tenancy.binding(&principal("live", None)).unwrap_err();
            assert_eq!(err.code(), "no_route", "{tenancy:?}");
        }
    }

    #[test]
    fn each_mode_binds_the_principals_tenant() {
        let p = principal("test", Some("acme-eu"));
        assert!(
            Tenancy::row_security()
                .binding(&p)
                .unwrap()
                .sql()
                .contains("SET LOCAL keyroute.tenant = 'acme-eu'")
        );
        assert!(
            Tenancy::schema("t_{tenant}_{env}")
                .unwrap()
                .binding(&p)
                .unwrap()
                .sql()
                .ends_with("SET LOCAL search_path TO \"t_acme-eu_test\"")
        );
    }

    #[test]
    fn a_schema_name_postgres_would_cut_is_no_route() {
        let long = "a".repeat(60);
        let p = principal("live", Some(&long));
        let err = Tenancy::schema("tenant_{tenant}")
            .unwrap()
            .binding(&p)
            .unwrap_err();
        assert_eq!(err.code(), "no_route");
    }

    #[test]
    fn schema_templates_need_a_tenant() {
        for bad in ["tenant", "t_{env}", "{tenant}{env}", "t_{nope}"] {
            let err = Tenancy::schema(bad).unwrap_err();
            assert!(
                err.to_string().contains("[tenancy] option `schema`"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_section_reads() {
        let config: TenancyConfig =
            toml::from_str("mode = \"schema\"\nschema = \"s_{tenant}\"").unwrap();
        assert!(matches!(
            config.tenancy().unwrap(),
            Some(Tenancy::Schema(_))
        ));
        assert!(TenancyConfig::default().tenancy().unwrap().is_none());
    }
}
