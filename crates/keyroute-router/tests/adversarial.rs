//! Defect tests: each is named after a defect found in review and failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use keyroute_core::{AuthMethod, Environment, KeyType, Principal, Tenant};
use keyroute_router::{RouteError, RoutingPolicy, Template};
use proptest::prelude::*;

fn principal(tenant: &str, env: &str) -> Principal {
    Principal::from_claims(AuthMethod::ApiKey, Environment::new(env).unwrap())
        .with_tenant(Some(Tenant::new(tenant).unwrap()))
}

/// `{tenant}-{env}` sent tenant `acme-eu` in `live` and tenant `acme` in `eu-live` to one connection.
#[test]
fn template_names_collide_across_tenants_and_environments() {
    match Template::parse("{tenant}-{env}") {
        Err(RouteError::Config(reason)) => {
            assert!(reason.contains("`template`"), "names the option: {reason}");
        }
        Ok(template) => {
            let a = template
                .route(&principal("acme-eu", "live"))
                .unwrap()
                .into_owned();
            let b = template
                .route(&principal("acme", "eu-live"))
                .unwrap()
                .into_owned();
            assert_ne!(a, b, "two tenants share the connection {a}");
            panic!("an ambiguous template was accepted");
        }
        Err(other) => panic!("wrong error: {other}"),
    }
    let template = Template::parse("{tenant}_{env}").unwrap();
    assert_ne!(
        template.route(&principal("acme-eu", "live")).unwrap(),
        template.route(&principal("acme", "eu-live")).unwrap()
    );
}

/// One piece of a generated template.
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Placeholder(&'static str),
}

fn template_strategy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => prop::sample::select(vec!["{env}", "{tenant}", "{key_type}"]).prop_map(Piece::Placeholder),
        2 => "[a-c0-9_./-]{1,3}".prop_map(Piece::Text),
    ];
    prop::collection::vec(piece, 1..6).prop_map(|pieces| {
        pieces
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => t,
                Piece::Placeholder(p) => p.to_owned(),
            })
            .collect()
    })
}

/// A principal built from generated names, `-` included.
fn named(tenant: &str, env: &str, key_type: &str) -> Principal {
    Principal::from_claims(AuthMethod::ApiKey, Environment::new(env).unwrap())
        .with_tenant(Some(Tenant::new(tenant).unwrap()))
        .with_key_type(Some(KeyType::new(key_type).unwrap()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Under any accepted template, principals that differ in a value it uses get different names.
    #[test]
    fn accepted_templates_are_injective(
        template in template_strategy(),
        a in ("[a-z0-9][a-z0-9-]{0,6}", "[a-z][a-z0-9-]{0,6}", "[a-z][a-z0-9-]{0,4}"),
        b in ("[a-z0-9][a-z0-9-]{0,6}", "[a-z][a-z0-9-]{0,6}", "[a-z][a-z0-9-]{0,4}"),
        splits in any::<prop::sample::Index>(),
        resplit_b in any::<bool>(),
    ) {
        let Ok(policy) = Template::parse(&template) else {
            return Ok(());
        };
        // Half the time, b is a re-split of a's tenant and environment (acme-eu + live
        // against acme + eu-live), the collision the separator rule exists for.
        let joined = format!("{}-{}", a.0, a.1);
        let cut = splits.index(joined.len());
        let resplit = (joined[..cut].trim_end_matches('-'), joined[cut..].trim_start_matches('-'));
        let b = match resplit {
            (t, e) if resplit_b && !t.is_empty() && e.starts_with(|c: char| c.is_ascii_lowercase())
                && Tenant::new(t).is_ok() && Environment::new(e).is_ok() =>
            {
                (t.to_owned(), e.to_owned(), b.2)
            }
            _ => b,
        };
        let (pa, pb) = (named(&a.0, &a.1, &a.2), named(&b.0, &b.1, &b.2));
        let (na, nb) = (policy.route(&pa).unwrap(), policy.route(&pb).unwrap());
        let differs = (template.contains("{tenant}") && a.0 != b.0)
            || (template.contains("{env}") && a.1 != b.1)
            || (template.contains("{key_type}") && a.2 != b.2);
        prop_assert!(template.contains("{env}"), "accepted without {{env}}: {template}");
        if differs {
            prop_assert_ne!(na, nb, "template {} maps {:?} and {:?} to one name", template, a, b);
        }
    }
}
