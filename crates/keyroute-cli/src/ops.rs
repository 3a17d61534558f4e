//! `migrate`, `doctor` and `backfill`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use diesel_migrations::FileBasedMigrations;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keyroute::keys::KeyListener;
use keyroute::store::{StoreBackend, keyroute_migration_versions};
use keyroute::{ApiKey, BuildError, Config, UserId};
use serde_json::json;

use crate::app::handle;
use crate::output::{CliError, Out};

/// `keyroute migrate [--app DIR]`.
pub(crate) async fn migrate<B: StoreBackend>(
    mut config: Config,
    app: Option<&Path>,
    out: Out,
) -> Result<(), CliError> {
    // Reads the directory first: a wrong path is reported before anything changes.
    let source = app
        .map(|dir| {
            FileBasedMigrations::from_path(dir).map_err(|e| {
                CliError::failed(format!(
                    "--app {}: {e}; give a diesel migrations directory",
                    dir.display()
                ))
            })
        })
        .transpose()?;
    config.apikey.init_schema = true;
    let per_tenant = config.router.tenancy.mode == keyroute::sections::TenancyMode::Schema
        || config.router.routing.url_template.is_some();
    let keyroute = handle::<B>(config, None).await?;
    out.line("key store: keyroute's migrations applied")?;
    let Some(source) = source else {
        if out.json {
            out.json(&json!({ "keyroute": "current", "connections": [] }))?;
        }
        return Ok(());
    };
    let report = keyroute.router().migrate_each(source).await;
    // The same directory again for the tenants (a source is used up by one run).
    let tenant_source = app
        .map(FileBasedMigrations::from_path)
        .transpose()
        .map_err(|e| CliError::failed(format!("--app: {e}")))?;
    let tenants = match tenant_source {
        Some(source) => {
            crate::tenants::migrate_tenants(&keyroute, source, per_tenant, &out).await?
        }
        None => None,
    };
    let mut failed = false;
    let mut rows = Vec::new();
    let mut entries = Vec::new();
    for c in &report.connections {
        let (status, applied) = match &c.versions {
            Ok(v) if v.is_empty() => ("current".to_owned(), String::new()),
            Ok(v) => ("migrated".to_owned(), v.join(" ")),
            Err(e) => {
                failed = true;
                (format!("failed: {e}"), String::new())
            }
        };
        entries.push(json!({ "connection": c.connection, "status": status, "applied": c.versions.as_ref().ok() }));
        rows.push(vec![c.connection.clone(), status, applied]);
    }
    let (tenant_entries, tenants_failed) = tenants.unwrap_or((json!([]), false));
    out.table(
        &["connection", "status", "applied now"],
        rows,
        json!({ "keyroute": "current", "connections": entries, "tenants": tenant_entries }),
    )?;
    if tenants_failed {
        return Err(CliError::failed(
            "the app's migrations failed in some tenants' schemas or databases (above); fix the cause and run migrate again: applied ones are skipped",
        ));
    }
    if failed {
        return Err(CliError::failed(
            "the app's migrations failed on some connections (above); fix the cause and run migrate again",
        ));
    }
    Ok(())
}

/// `keyroute doctor`: connections, keyroute's migrations, schema parity, the change
/// feed, and (with `[tenancy] mode = "row_security"`) whether the policies hold.
pub(crate) async fn doctor<B: StoreBackend>(config: Config, out: Out) -> Result<(), CliError> {
    // The router alone: the doctor reads, it does not migrate or need the key store.
    let router = config
        .router
        .builder::<B>()
        .and_then(|b| {
            b.keyroute_versions(keyroute_migration_versions::<B>())
                .build()
        })
        .map_err(|e| CliError::failed(format!("configuration: {e}")))?;
    let mut report = router.applied_migrations().await;
    // Every tenant's schema or database too, when they have their own: drift across
    // tenants is reported as across live and test.
    if config.router.tenancy.mode == keyroute::sections::TenancyMode::Schema
        || config.router.routing.url_template.is_some()
    {
        match config.connect_store::<B>().await {
            Ok(store) => {
                let tenants = crate::tenants::tenants(&store).await?;
                let environments = config.apikey.environments.clone();
                report.connections.extend(
                    router
                        .applied_tenant_migrations(&tenants, &environments)
                        .await,
                );
            }
            Err(e) => {
                return Err(CliError::failed(format!(
                    "the key store (for the tenants to check): {e}"
                )));
            }
        }
    }
    let keyroute_versions = keyroute_migration_versions::<B>();
    let store_connection = config.store_connection();
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    let mut entries = Vec::new();
    for c in &report.connections {
        let (reachable, app) = match &c.versions {
            Ok(_) => (
                "yes".to_owned(),
                report.app_versions(&c.connection).unwrap_or_default(),
            ),
            Err(e) => {
                problems.push(format!("connection '{}' is unreachable: {e}", c.connection));
                (format!("no: {e}"), Vec::new())
            }
        };
        let mut keyroute_state = "-".to_owned();
        if store_connection == Some(c.connection.as_str())
            && let Ok(applied) = &c.versions
        {
            let pending: Vec<&String> = keyroute_versions
                .iter()
                .filter(|v| !applied.contains(v))
                .collect();
            keyroute_state = if pending.is_empty() {
                "current".to_owned()
            } else {
                let pending = pending
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                problems.push(format!(
                    "keyroute's migrations {pending} are not applied on '{}'; run `keyroute migrate`",
                    c.connection
                ));
                format!("pending: {pending}")
            };
        }
        entries.push(json!({
            "connection": c.connection,
            "reachable": c.versions.is_ok(),
            "error": c.versions.as_ref().err().map(ToString::to_string),
            "app_migrations": app,
            "keyroute_migrations": keyroute_state,
        }));
        rows.push(vec![
            c.connection.clone(),
            reachable,
            keyroute_state,
            app.join(" "),
        ]);
    }
    let drift = report.drift();
    for d in &drift {
        problems.push(format!("schema drift: {d}"));
    }
    let feed = feed_check::<B>(&config).await;
    if let Err(problem) = &feed {
        problems.push(format!("the change feed: {problem}"));
    }
    // `[tenancy] mode = "row_security"`: what build() would refuse, reported.
    let row_security: Vec<String> = match router.check_tenancy().await {
        Ok(findings) => findings
            .iter()
            .map(|(connection, finding)| format!("row-level security on '{connection}': {finding}"))
            .collect(),
        Err(e) => vec![format!("row-level security could not be checked: {e}")],
    };
    problems.extend(row_security.iter().cloned());
    out.table(
        &[
            "connection",
            "reachable",
            "keyroute migrations",
            "app migrations",
        ],
        rows,
        json!({
            "ok": problems.is_empty(),
            "connections": entries,
            "drift": drift.iter().map(|d| json!({
                "reference": d.reference, "connection": d.connection,
                "missing": d.missing, "extra": d.extra,
            })).collect::<Vec<_>>(),
            "row_security": row_security,
            "feed": match &feed {
                Ok(state) => json!({ "ok": true, "state": state }),
                Err(problem) => json!({ "ok": false, "problem": problem }),
            },
            "problems": problems,
        }),
    )?;
    if let Ok(state) = &feed {
        out.line(&format!("change feed: {state}"))?;
    }
    match problems.len() {
        0 => {
            out.line("ok: every connection answers and their schemas match")?;
            Ok(())
        }
        1 => Err(CliError::failed(problems.remove(0))),
        n => Err(CliError::failed(format!(
            "{n} problems: {}",
            problems.join("; ")
        ))),
    }
}

/// Whether the store's change feed delivers what is committed, as `build()` checks it
/// when caches follow the feed: a `LISTEN` behind a pooler in transaction mode (with
/// no `[store] direct_url`) receives nothing, so instances would serve uncached.
async fn feed_check<B: StoreBackend>(config: &Config) -> Result<&'static str, String> {
    if config.apikey.session_cache_duration.is_none() {
        return Ok("not needed (session_cache_duration = \"none\": nothing is cached)");
    }
    let store = config
        .connect_store::<B>()
        .await
        // The store's own message, without the build error's "could not be opened".
        .map_err(|e| match e {
            BuildError::Store(e) => e.to_string(),
            e => e.to_string(),
        })?;
    store.verify_feed().await.map_err(|e| e.to_string())?;
    Ok("ok (on PostgreSQL a probe notification came back; other backends poll theirs)")
}

/// Counts the users keyed by each stored backfill batch, for the progress display.
#[derive(Debug)]
struct Progress {
    bar: ProgressBar,
    /// Lines on stderr when it is not a terminal (the bar hides itself there).
    lines: bool,
}

#[async_trait::async_trait]
impl KeyListener for Progress {
    async fn keys_retired(&self, _keys: &[ApiKey]) {}

    async fn keys_issued(&self, keys: &[ApiKey]) {
        let users: std::collections::HashSet<&UserId> =
            keys.iter().filter_map(|k| k.user_id.as_ref()).collect();
        self.bar.inc(users.len() as u64);
        if self.lines {
            eprintln_progress(self.bar.position(), self.bar.length().unwrap_or(0));
        }
    }
}

fn eprintln_progress(done: u64, total: u64) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "backfill: {done}/{total} users");
}

/// `keyroute backfill [--batch N]`.
pub(crate) async fn backfill<B: StoreBackend>(
    config: Config,
    batch: usize,
    out: Out,
) -> Result<(), CliError> {
    let batch = batch.max(1);
    let is_terminal = std::io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} users ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = Arc::new(Progress {
        bar: bar.clone(),
        lines: !is_terminal,
    });
    let keyroute = handle::<B>(config, Some(progress as Arc<dyn KeyListener>)).await?;
    // The total: users without keys now (paged as the backfill pages them).
    let mut total = 0u64;
    let mut after: Option<UserId> = None;
    loop {
        let page = keyroute
            .store()
            .users_missing_keys(after.as_ref(), 5000)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        total += page.len() as u64;
    }
    bar.set_length(total);
    let started = std::time::Instant::now();
    let report = keyroute.keys().backfill(batch).await?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    out.line(&format!(
        "backfill: {} users got {} keys in {seconds:.1}s ({} had none when it started)",
        report.users, report.keys, total
    ))?;
    if out.json {
        out.json(&json!({ "users": report.users, "keys": report.keys, "seconds": seconds, "had_none": total }))?;
    }
    Ok(())
}
