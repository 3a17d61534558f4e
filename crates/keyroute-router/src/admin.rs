//! Administration of a [`ConnectionRouter`]: the names it is configured with and the
//! connection a principal would reach, for tools (the `keyroute` command) that report
//! on connections without handling a request. Kept apart from `router.rs`, the request
//! path.

use keyroute_core::Principal;
use keyroute_pool::Backend;

use crate::error::RouteError;
use crate::router::ConnectionRouter;

impl<B: Backend> ConnectionRouter<B> {
    /// The names of every configured connection, sorted: what administration (schema
    /// migrations, health checks) walks over.
    pub fn connection_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.targets.keys().cloned().collect();
        names.sort();
        names
    }

    /// The name of the connection `principal`'s requests are routed to, by this
    /// router's policy, without opening it.
    ///
    /// # Errors
    /// [`RouteError::NoRoute`] when the policy names no configured connection.
    pub fn route_name(&self, principal: &Principal) -> Result<String, RouteError> {
        let name = self.inner.policy.route(principal)?;
        if self.inner.targets.contains_key(name.as_ref()) {
            Ok(name.into_owned())
        } else {
            Err(RouteError::no_route(
                principal,
                format!("no connection named '{name}' is configured"),
            ))
        }
    }
}
