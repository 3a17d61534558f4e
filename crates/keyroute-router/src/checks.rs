//! Build-time checks of the router: pool bounds it can honour, and routes that lead to
//! configured connections. A bad value is a typed error naming the setting when the
//! router is built, not an overflow, a pool panic or a `NoRoute` on every request.

use std::collections::HashMap;

use keyroute_core::{ConfigError, Environment};
use keyroute_pool::PoolSettings;

use crate::error::RouteError;
use crate::policy::RoutingPolicy;

/// Checks that keys of each of `environments` route, as far as `policy` can tell
/// before a request, to a connection in `targets`.
///
/// # Errors
/// [`RouteError::Config`] naming the `[routing]` option (or the missing connection).
pub(crate) fn check_routes<T>(
    policy: &dyn RoutingPolicy,
    targets: &HashMap<String, T>,
    environments: &[Environment],
) -> Result<(), RouteError> {
    for environment in environments {
        let Some(names) = policy.targets(environment) else {
            continue;
        };
        let option = policy.option_name();
        if names.is_empty() {
            return Err(ConfigError::invalid(
                "routing",
                option,
                format_args!(
                    "keys of environment '{environment}' are accepted but routed nowhere; add a route for it"
                ),
            )
            .into());
        }
        if let Some(name) = names.iter().find(|n| !targets.contains_key(*n)) {
            if option == "connections" {
                return Err(ConfigError::missing(
                    "connections",
                    name,
                    format_args!(
                        "keys of environment '{environment}' are routed by environment to a connection named '{name}'; add it under [connections] or configure [routing]"
                    ),
                )
                .into());
            }
            let mut known: Vec<&str> = targets.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(ConfigError::invalid(
                "routing",
                option,
                format_args!(
                    "keys of environment '{environment}' route to '{name}', which is not a configured connection (configured: {}); add it under [connections] or change the route",
                    known.join(", ")
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// Checks one connection's pool settings against the bounds the router and its pools
/// need, so a bad value is a typed error at build time rather than an overflow or a
/// panic inside the pool on first use.
///
/// # Errors
/// [`RouteError::Config`] naming the option: `max_size` zero or over
/// `connection_budget`, `min_idle` over `max_size`, a zero `connection_timeout`,
/// `idle_timeout`, `max_lifetime`, `connect_timeout` or `retry_backoff`, a
/// `retry_backoff_max` under `retry_backoff`.
pub(crate) fn check_pool_settings(
    name: &str,
    settings: &PoolSettings,
    connection_budget: u32,
) -> Result<(), RouteError> {
    let fail = |option: &str, reason: String| {
        Err(ConfigError::invalid(
            "pools",
            option,
            format_args!("connection '{name}': {reason}"),
        )
        .into())
    };
    if settings.max_size == 0 {
        return fail("max_size", "max_size must be at least 1".into());
    }
    if settings.max_size > connection_budget {
        return fail(
            "max_size",
            format!(
                "max_size {} is more than the whole connection_budget of {connection_budget}; lower max_size or raise connection_budget",
                settings.max_size
            ),
        );
    }
    if settings
        .min_idle
        .is_some_and(|idle| idle > settings.max_size)
    {
        return fail("min_idle", "min_idle must be at most max_size".into());
    }
    if settings.connection_timeout.is_zero() {
        return fail(
            "connection_timeout",
            "connection_timeout must be over zero".into(),
        );
    }
    if settings.connect_timeout.is_zero() {
        return fail(
            "connect_timeout",
            "connect_timeout must be over zero".into(),
        );
    }
    if settings.retry_backoff.is_zero() {
        return fail(
            "retry_backoff",
            "retry_backoff must be over zero (e.g. 250ms)".into(),
        );
    }
    if settings.retry_backoff_max < settings.retry_backoff {
        return fail(
            "retry_backoff_max",
            format!(
                "retry_backoff_max ({:?}) must be at least retry_backoff ({:?})",
                settings.retry_backoff_max, settings.retry_backoff
            ),
        );
    }
    if settings.idle_timeout.is_some_and(|t| t.is_zero()) {
        return fail(
            "idle_timeout",
            "idle_timeout must be over zero, or none".into(),
        );
    }
    if settings.max_lifetime.is_some_and(|t| t.is_zero()) {
        return fail(
            "max_lifetime",
            "max_lifetime must be over zero, or none".into(),
        );
    }
    Ok(())
}
