//! `keyroute migrate --app DIR` for tenants: the app's migrations in every tenant's
//! schema (`[tenancy] mode = "schema"`) or database (`[routing] url_template`), for each
//! tenant keyroute knows (its users' tenants) and each environment keys are issued for,
//! with progress on standard error and one row per tenant and environment.

use std::collections::BTreeSet;
use std::io::IsTerminal;

use diesel_migrations::FileBasedMigrations;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keyroute::Keyroute;
use keyroute::keys::Tenant;
use keyroute::store::{StoreBackend, UserStore};
use serde_json::json;

use crate::output::{CliError, Out};

/// Every tenant keyroute's users belong to, in order (one indexed page at a time).
pub(crate) async fn tenants(store: &dyn UserStore) -> Result<Vec<Tenant>, CliError> {
    let mut tenants = BTreeSet::new();
    let mut after = None;
    loop {
        let page = store.list_users(after.as_ref(), 5000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        tenants.extend(page.into_iter().filter_map(|user| user.tenant));
    }
    Ok(tenants.into_iter().collect())
}

/// Applies `source` to every tenant's schema or database; `Ok(None)` when no tenancy
/// mode puts tenants in schemas or databases of their own. The JSON value lists each
/// entry; an error is returned when any failed, after all were tried.
pub(crate) async fn migrate_tenants<B: StoreBackend>(
    keyroute: &Keyroute<B>,
    source: FileBasedMigrations,
    per_tenant: bool,
    out: &Out,
) -> Result<Option<(serde_json::Value, bool)>, CliError> {
    if !per_tenant {
        return Ok(None);
    }
    let tenants = tenants(keyroute.store().as_ref()).await?;
    let environments = keyroute.keys().options().environments.clone();
    let bar = ProgressBar::with_draw_target(
        Some((tenants.len() * environments.len()) as u64),
        ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tenant schemas ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let lines = !std::io::stderr().is_terminal();
    let entries = keyroute
        .router()
        .migrate_tenants(source, &tenants, &environments, |entry| {
            bar.inc(1);
            if lines {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "migrate: {}/{} {}",
                    bar.position(),
                    bar.length().unwrap_or(0),
                    entry.connection
                );
            }
        })
        .await;
    bar.finish_and_clear();
    let mut failed = false;
    let mut rows = Vec::new();
    let mut json_entries = Vec::new();
    let (mut migrated, mut current) = (0, 0);
    for entry in &entries {
        let (status, applied) = match &entry.versions {
            Ok(v) if v.is_empty() => {
                current += 1;
                ("current".to_owned(), String::new())
            }
            Ok(v) => {
                migrated += 1;
                ("migrated".to_owned(), v.join(" "))
            }
            Err(e) => {
                failed = true;
                (format!("failed: {e}"), String::new())
            }
        };
        json_entries.push(json!({ "tenant": entry.connection, "status": status, "applied": entry.versions.as_ref().ok() }));
        rows.push(vec![entry.connection.clone(), status, applied]);
    }
    if !out.json {
        out.table(&["tenant", "status", "applied now"], rows, json!(null))?;
        out.line(&format!(
            "tenants: {} schemas or databases, {migrated} migrated, {current} current, {} failed",
            entries.len(),
            entries.len() - migrated - current
        ))?;
    }
    Ok(Some((json!(json_entries), failed)))
}
