//! Whether PostgreSQL's row-level security would hold for a connection's role: the
//! role may not bypass it, and every table with a tenant column must have it enabled,
//! forced and guarded by a policy ([`RowSecurityFinding`]). The router refuses to build
//! and `keyroute doctor` reports when a finding is there.

use std::fmt;

/// One way row-level security would not hold on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowSecurityFinding {
    /// The connection's role is a superuser: it bypasses every policy.
    Superuser {
        /// The role.
        role: String,
    },
    /// The connection's role has `BYPASSRLS`.
    BypassRls {
        /// The role.
        role: String,
    },
    /// A table with the tenant column has row-level security disabled.
    NotEnabled {
        /// `schema.table`.
        table: String,
    },
    /// A table with the tenant column has no policy (with row-level security on, it
    /// lets nothing through, which hides the mistake until the first request).
    NoPolicy {
        /// `schema.table`.
        table: String,
    },
    /// The connection's role owns a table with the tenant column that does not force
    /// row-level security: owners bypass the policies unless it is forced.
    OwnerNotForced {
        /// `schema.table`.
        table: String,
        /// The role.
        role: String,
    },
}

impl fmt::Display for RowSecurityFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Superuser { role } => write!(
                f,
                "role {role} is a superuser and bypasses row-level security; connect as a role without SUPERUSER"
            ),
            Self::BypassRls { role } => write!(
                f,
                "role {role} has BYPASSRLS; connect as a role without it (ALTER ROLE {role} NOBYPASSRLS)"
            ),
            Self::NotEnabled { table } => write!(
                f,
                "table {table} has the tenant column but row-level security is off; run keyroute's row-security SQL for it (ENABLE and FORCE ROW LEVEL SECURITY, and a policy)"
            ),
            Self::NoPolicy { table } => write!(
                f,
                "table {table} has the tenant column but no policy; create one (keyroute's row-security SQL does)"
            ),
            Self::OwnerNotForced { table, role } => write!(
                f,
                "role {role} owns table {table}, which does not force row-level security, so the owner bypasses it; ALTER TABLE {table} FORCE ROW LEVEL SECURITY"
            ),
        }
    }
}

/// The SQL that guards `table` (an unqualified name, quoted here, which PostgreSQL
/// resolves through the `search_path`) with
/// row-level security on its `column`: enabled, forced (so the table's owner is bound
/// too) and a policy `keyroute_tenant` that lets a request see and write only rows of
/// the tenant it is bound to (`keyroute.tenant`). Run it in a migration. An unbound
/// connection, or one bound to no tenant, sees no row.
pub fn row_security_sql(table: &str, column: &str) -> String {
    let table = crate::quote_identifier(table);
    let column = crate::quote_identifier(column);
    let setting = crate::TENANT_SETTING;
    format!(
        "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n\
         ALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n\
         CREATE POLICY keyroute_tenant ON {table}\n    \
         USING ({column} = current_setting('{setting}', true))\n    \
         WITH CHECK ({column} = current_setting('{setting}', true));\n"
    )
}

#[cfg(feature = "postgres")]
pub(crate) mod postgres {
    use diesel::sql_types::{Bool, Text};
    use diesel_async::RunQueryDsl;

    use super::RowSecurityFinding;

    #[derive(diesel::QueryableByName)]
    struct Role {
        #[diesel(sql_type = Text)]
        role: String,
        #[diesel(sql_type = Bool)]
        superuser: bool,
        #[diesel(sql_type = Bool)]
        bypass: bool,
    }

    #[derive(diesel::QueryableByName)]
    struct Table {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Bool)]
        enabled: bool,
        #[diesel(sql_type = Bool)]
        forced: bool,
        #[diesel(sql_type = Bool)]
        owned: bool,
        #[diesel(sql_type = Bool)]
        has_policy: bool,
    }

    /// The findings for the connection's role and every ordinary or partitioned table
    /// outside the system schemas that has `column`.
    pub(crate) async fn findings(
        conn: &mut diesel_async::AsyncPgConnection,
        column: &str,
    ) -> diesel::QueryResult<Vec<RowSecurityFinding>> {
        let role: Role = diesel::sql_query(
            "SELECT current_user::text AS role, rolsuper AS superuser, rolbypassrls AS bypass \
             FROM pg_roles WHERE rolname = current_user",
        )
        .get_result(conn)
        .await?;
        let tables: Vec<Table> = diesel::sql_query(
            "SELECT format('%I.%I', n.nspname, c.relname) AS name, \
                    c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced, \
                    pg_has_role(current_user, c.relowner, 'USAGE') AS owned, \
                    EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid) AS has_policy \
             FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $1 AND NOT a.attisdropped \
             WHERE c.relkind IN ('r', 'p') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%' \
             ORDER BY 1",
        )
        .bind::<Text, _>(column)
        .load(conn)
        .await?;
        let mut findings = Vec::new();
        // A superuser has BYPASSRLS too: one finding says it.
        if role.superuser {
            findings.push(RowSecurityFinding::Superuser {
                role: role.role.clone(),
            });
        } else if role.bypass {
            findings.push(RowSecurityFinding::BypassRls {
                role: role.role.clone(),
            });
        }
        for table in tables {
            if !table.enabled {
                findings.push(RowSecurityFinding::NotEnabled { table: table.name });
            } else if !table.has_policy {
                findings.push(RowSecurityFinding::NoPolicy { table: table.name });
            } else if table.owned && !table.forced {
                findings.push(RowSecurityFinding::OwnerNotForced {
                    table: table.name,
                    role: role.role.clone(),
                });
            }
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_quotes_names_and_forces() {
        let sql = row_security_sql("orders", "tenant_id");
        assert!(sql.contains("ALTER TABLE \"orders\" ENABLE ROW LEVEL SECURITY;"));
        assert!(sql.contains("ALTER TABLE \"orders\" FORCE ROW LEVEL SECURITY;"));
        assert!(sql.contains("USING (\"tenant_id\" = current_setting('keyroute.tenant', true))"));
        assert!(sql.contains("WITH CHECK"));
        let hostile = row_security_sql("a\"; DROP TABLE x; --", "c");
        assert!(hostile.contains("\"a\"\"; DROP TABLE x; --\""));
    }
}
