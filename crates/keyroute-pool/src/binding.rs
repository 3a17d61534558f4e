//! [`Binding`]: what one unit of work's connection is bound to (the request's tenant),
//! as SQL that runs inside the unit's transaction and ends with it.
//!
//! A binding never outlives its request's hold on the connection: behind a
//! transaction pooler it is transaction-local (`set_config(..., true)`, `SET LOCAL`,
//! ending with the unit's transaction, as the server connection is shared with other
//! clients); directly it is set for the session, and every unit of a tenancy pool
//! begins by undoing what the previous user left (`RESET ALL`, `RESET ROLE`) and
//! binding again, in one round trip, before the handler runs a statement, so no
//! earlier handler's binding or session `SET` reaches a later request. The values are checked here before any SQL is written: tenant and
//! environment names hold only characters that need no escaping, and a schema name is
//! a quoted identifier no longer than PostgreSQL keeps (a longer name would be cut to
//! 63 bytes, so two tenants could share a schema).

use std::fmt;

/// The PostgreSQL setting a row-level-security binding puts the tenant in; policies
/// read it with `current_setting('keyroute.tenant', true)`.
pub const TENANT_SETTING: &str = "keyroute.tenant";

/// The PostgreSQL setting a row-level-security binding puts the environment in
/// (`live`, `test`, ...), for policies that also separate environments in one database.
pub const ENV_SETTING: &str = "keyroute.env";

/// Empties the session's `search_path` (see [`Binding::schema`]).
const NO_SCHEMA: &str = "SET search_path TO ''";

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1` bytes); longer ones are
/// silently truncated.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// What a unit of work's connection is bound to, for exactly that unit
/// ([`DbPool::bound_unit`](crate::DbPool::bound_unit)). Built from checked values
/// only; `Debug` shows the SQL, which holds no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Binding {
    /// Bound for the unit's transaction (behind a transaction pooler).
    sql: String,
    /// Bound for the session, until the next unit binds again (directly).
    session: String,
}

/// A value a [`Binding`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// A tenant or environment name holds a character other than `a-z`, `A-Z`,
    /// `0-9`, `-`, `_` and `.`, or is empty.
    #[error(
        "cannot bind {what} {value:?}: only a-z, A-Z, 0-9, '-', '_' and '.' may appear, and it may not be empty"
    )]
    Value {
        /// What the value is (`tenant`, `environment`).
        what: &'static str,
        /// The value, which is a name, never a secret.
        value: String,
    },
    /// A schema name is empty, holds a NUL, or is longer than PostgreSQL keeps.
    #[error(
        "cannot bind schema {schema:?}: a schema name must be 1 to {MAX_IDENTIFIER_BYTES} bytes without NUL \
         (PostgreSQL cuts longer names, so two tenants could share a schema); shorten [tenancy] schema"
    )]
    Schema {
        /// The schema name.
        schema: String,
    },
}

impl Binding {
    /// Binds `keyroute.tenant` and `keyroute.env` for the unit (row-level security:
    /// policies compare a tenant column with `current_setting('keyroute.tenant', true)`).
    ///
    /// # Errors
    /// [`BindingError::Value`] for a name with a character that would need escaping.
    pub fn row_security(tenant: &str, env: &str) -> Result<Self, BindingError> {
        let tenant = plain("tenant", tenant)?;
        let env = plain("environment", env)?;
        Ok(Self {
            sql: set_settings("SET LOCAL", tenant, env),
            session: set_settings("SET", tenant, env),
        })
    }

    /// Binds the unit to no tenant (row-level security): `keyroute.tenant` is empty, so
    /// policies that compare with it let no row through. For connections a request
    /// without a tenant gets (the anonymous route).
    pub fn row_security_nobody() -> Self {
        Self {
            sql: set_settings("SET LOCAL", "", ""),
            session: set_settings("SET", "", ""),
        }
    }

    /// Sets the unit's `search_path` to `schema` alone (schema per tenant): unqualified
    /// table names then resolve in the tenant's schema (and `pg_catalog`), nowhere else.
    /// The session's own `search_path` is emptied first, so a handler that ends the
    /// unit's transaction itself (a raw `COMMIT`) goes on with no schema rather than
    /// the role's default one.
    ///
    /// # Errors
    /// [`BindingError::Schema`] for an empty name, one with a NUL, or one longer than
    /// [`MAX_IDENTIFIER_BYTES`].
    pub fn schema(schema: &str) -> Result<Self, BindingError> {
        if schema.is_empty() || schema.len() > MAX_IDENTIFIER_BYTES || schema.contains('\0') {
            return Err(BindingError::Schema {
                schema: schema.to_owned(),
            });
        }
        let schema = quote_identifier(schema);
        Ok(Self {
            sql: format!("{NO_SCHEMA}; SET LOCAL search_path TO {schema}"),
            session: format!("SET search_path TO {schema}"),
        })
    }

    /// Binds the unit to no schema (schema per tenant): an empty `search_path`, so an
    /// unqualified table name resolves nowhere but `pg_catalog`.
    pub fn schema_nobody() -> Self {
        Self {
            sql: NO_SCHEMA.to_owned(),
            session: NO_SCHEMA.to_owned(),
        }
    }

    /// The statements that bind for the unit's transaction alone (behind a
    /// transaction pooler, where the server connection is shared between clients).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The statements that bind for the session, until the next unit on the
    /// connection binds again (directly, where keyroute's pool owns the connection and
    /// every unit of a tenancy pool begins by binding).
    pub fn session_sql(&self) -> &str {
        &self.session
    }
}

impl fmt::Debug for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Binding").field(&self.sql).finish()
    }
}

/// `keyroute.tenant` and `keyroute.env` set by `set` (`SET` for the session, `SET LOCAL`
/// for the transaction) to values that need no escaping. Plain `SET`s rather than
/// `SELECT set_config(...)`: a utility statement runs no planner or executor and
/// returns no row, which halves what PostgreSQL spends on the binding
/// (`BENCHMARKS.md`, "Tenancy in PostgreSQL").
fn set_settings(set: &str, tenant: &str, env: &str) -> String {
    format!("{set} {TENANT_SETTING} = '{tenant}'; {set} {ENV_SETTING} = '{env}'")
}

/// `value` if it holds only characters that need no escaping in a SQL literal.
fn plain<'v>(what: &'static str, value: &'v str) -> Result<&'v str, BindingError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(value)
    } else {
        Err(BindingError::Value {
            what,
            value: value.to_owned(),
        })
    }
}

/// `name` as a PostgreSQL quoted identifier: in double quotes, each double quote
/// doubled. Quoted, the name is taken exactly (no case folding, no keyword meaning).
pub fn quote_identifier(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for c in name.chars() {
        if c == '"' {
            quoted.push('"');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_security_binds_both_settings_locally() {
        let binding = Binding::row_security("acme-eu", "test").unwrap();
        assert_eq!(
            binding.sql(),
            "SET LOCAL keyroute.tenant = 'acme-eu'; SET LOCAL keyroute.env = 'test'"
        );
        assert_eq!(
            binding.session_sql(),
            "SET keyroute.tenant = 'acme-eu'; SET keyroute.env = 'test'"
        );
        assert_eq!(
            Binding::row_security_nobody().session_sql(),
            "SET keyroute.tenant = ''; SET keyroute.env = ''"
        );
    }

    #[test]
    fn names_that_would_need_escaping_are_refused() {
        for bad in ["", "a'b", "a\\b", "a b", "x';DROP TABLE t;--", "é", "a\0"] {
            assert!(
                matches!(
                    Binding::row_security(bad, "live"),
                    Err(BindingError::Value { what: "tenant", .. })
                ),
                "{bad:?}"
            );
            assert!(
                matches!(
                    Binding::row_security("acme", bad),
                    Err(BindingError::Value {
                        what: "environment",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn schema_names_are_quoted_and_bounded() {
        assert_eq!(
            Binding::schema("tenant_acme").unwrap().sql(),
            "SET search_path TO ''; SET LOCAL search_path TO \"tenant_acme\""
        );
        assert_eq!(
            Binding::schema("a\"; RESET ALL; --").unwrap().sql(),
            "SET search_path TO ''; SET LOCAL search_path TO \"a\"\"; RESET ALL; --\""
        );
        let longest = "t".repeat(MAX_IDENTIFIER_BYTES);
        assert!(Binding::schema(&longest).is_ok());
        for bad in [String::new(), format!("{longest}x"), "a\0b".to_owned()] {
            assert!(
                matches!(Binding::schema(&bad), Err(BindingError::Schema { .. })),
                "{bad:?}"
            );
        }
    }
}
