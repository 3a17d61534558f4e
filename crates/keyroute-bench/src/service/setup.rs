//! The set-up's helpers: the users and keys every mode's requests carry, and the
//! description of what the modes run on, printed before the rounds.

use std::fmt::Write as _;

use keyroute::keys::Tenant;
use keyroute::store::{Backend, DbPool};
use keyroute::{Config, Keyroute, NewUser};

use super::{CACHED_FOR, tenant_of};

/// What `keyroute` on its defaults means in this build, and the pools of the modes.
pub(super) fn describe<B: Backend>(
    config: &Config,
    keyroute: &Keyroute<B>,
    lookup: &DbPool<B>,
    plain_check: keyroute::store::RecyclingCheck,
) -> String {
    let mut out = String::new();
    let cache = match config.apikey.session_cache_duration {
        Some(ttl) => format!("session_cache_duration {ttl:?} (resolver cache on)"),
        None => "session_cache_duration none (resolver cache off)".to_owned(),
    };
    let _ = write!(
        out,
        "keyroute on its defaults: {cache}; keyroute-uncached: cache off; keyroute-cached: cache on for {CACHED_FOR:?}"
    );
    // What the built resolver itself says, in case a default is decided at build time
    // rather than in the configuration.
    let _ = write!(
        out,
        "\nthe front door's resolver: {:?}",
        keyroute.resolver()
    );
    let routed = keyroute
        .router()
        .pool_named("live")
        .map(|pool| format!("{:?}", pool.settings().recycling_check))
        .unwrap_or_else(|e| format!("unknown ({e})"));
    let _ = write!(
        out,
        "\npools: {} connections each (live, test, keyroute's store, the naive lookup); checkout check: routed {routed}, naive lookup {:?}",
        config.router.pools.settings.max_size,
        lookup.settings().recycling_check,
    );
    let _ = write!(
        out,
        "\nplain pools (open-plain, naive-plain): bb8 + diesel-async, {} connections each (live, test, the naive-plain lookup); checkout check {plain_check:?}{}",
        config.router.pools.settings.max_size,
        if B::NAME == "SQLite" {
            "; SQLite on diesel-async's default executor (spawn_blocking), keyroute's pragmas"
        } else {
            ""
        },
    );
    out
}

/// Registers users until `keys` keys exist (each user gets a live and a test key, and
/// user `n` the tenant [`tenant_of`]`(n)`), eight registrations at a time; returns
/// `(plaintext, user id, environment)` rows.
pub(super) async fn register_users<B: Backend>(
    keyroute: &Keyroute<B>,
    keys: usize,
) -> Result<Vec<(String, String, String)>, String> {
    const WORKERS: usize = 8;
    let users = keys.div_ceil(2);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        let keyroute = keyroute.clone();
        tasks.spawn(async move {
            let mut rows = Vec::new();
            for n in (worker..users).step_by(WORKERS) {
                let tenant = Tenant::new(&tenant_of(n)).map_err(|e| e.to_string())?;
                let registration = keyroute
                    .keys()
                    .register_user(NewUser::named(format!("user{n}")).with_tenant(tenant))
                    .await
                    .map_err(|e| format!("registering user{n}: {e}"))?;
                let user = registration.user.id.to_string();
                for issued in registration.keys {
                    rows.push((
                        issued.plaintext.expose_secret().to_owned(),
                        user.clone(),
                        issued.key.environment.as_str().to_owned(),
                    ));
                }
            }
            Ok::<_, String>(rows)
        });
    }
    let mut rows = Vec::with_capacity(keys);
    while let Some(done) = tasks.join_next().await {
        rows.extend(done.map_err(|e| format!("a registration task failed: {e}"))??);
    }
    rows.truncate(keys);
    Ok(rows)
}
