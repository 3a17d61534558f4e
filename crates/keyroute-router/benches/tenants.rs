//! A database per tenant at scale: 10 000 tenants behind one `[routing] url_template`
//! (SQLite files, no configuration line each) against 10 tenants, each serving a
//! steady working set of tenants, in interleaved rounds.
//!
//! Each request takes the caller's routed connection (`ConnectionRouter::connection`)
//! and runs `SELECT 1` on it. The 10-tenant side cycles over 10 tenants; the 10 000
//! side first opens every tenant's database once (so the router has met 10 000
//! tenants and closed all but `max_pools` pools), then cycles over a working set of
//! 10 of them spread across the range (the same working set size: what 10 000 tenants
//! in all cost; target: at least 0.9 x), and, for information, over a working set of 50
//! (what a larger working set costs). Printed per round and as median ratios, with the
//! most pools open at once against `max_pools` and `connection_budget`.
//!
//! Run with `bash scripts/bench tenants` (or `cargo bench -p keyroute-router --features
//! sqlite --bench tenants`).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss
)]

use std::time::Instant;

use diesel_async::RunQueryDsl;
use keyroute_core::{AuthMethod, Environment, Principal, Tenant};
use keyroute_router::{ConnectionRouter, RouterConfig};
use keyroute_store::Sqlite;

const TENANTS: usize = 10_000;
const WORKING_SET: usize = 10;
const LARGER_SET: usize = 50;
const MAX_POOLS: usize = 64;
const BUDGET: u32 = 64;
const REQUESTS: usize = 20_000;
const ROUNDS: usize = 5;

fn principal(i: usize) -> Principal {
    Principal::from_claims(AuthMethod::ApiKey, Environment::LIVE)
        .with_tenant(Some(Tenant::new(&format!("tenant-{i}")).unwrap()))
}

fn router(dir: &std::path::Path) -> ConnectionRouter<Sqlite> {
    let template = format!("{}/{{tenant}}_{{env}}.db", dir.display());
    let config: RouterConfig = toml::from_str(&format!(
        "[routing]\nurl_template = {template:?}\ntenant_pool_size = 1\n\
         [pools]\nmax_pools = {MAX_POOLS}\nconnection_budget = {BUDGET}\n"
    ))
    .unwrap();
    config.router::<Sqlite>().unwrap()
}

/// `REQUESTS` requests cycling over `callers`; returns requests per second and the
/// most pools open at any point.
async fn run(router: &ConnectionRouter<Sqlite>, callers: &[Principal]) -> (f64, usize) {
    let mut most_open = 0;
    let start = Instant::now();
    for i in 0..REQUESTS {
        let mut conn = router
            .connection(&callers[i % callers.len()])
            .await
            .unwrap();
        diesel::sql_query("SELECT 1")
            .execute(&mut *conn)
            .await
            .unwrap();
        if i % 1000 == 0 {
            most_open = most_open.max(router.open_pools().len());
        }
    }
    (REQUESTS as f64 / start.elapsed().as_secs_f64(), most_open)
}

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (few_dir, many_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (few, many) = (router(few_dir.path()), router(many_dir.path()));
        let few_callers: Vec<Principal> = (0..10).map(principal).collect();
        // Spread over the range: tenant-0, tenant-1001, tenant-2002, ...
        let spread = |n: usize| -> Vec<Principal> {
            (0..n).map(|i| principal(i * (TENANTS / n) + (i % 7))).collect()
        };
        let many_callers = spread(WORKING_SET);
        let larger_callers = spread(LARGER_SET);

        let opening = Instant::now();
        let mut most_open = 0;
        for i in 0..TENANTS {
            let mut conn = many.connection(&principal(i)).await.unwrap();
            diesel::sql_query("SELECT 1")
                .execute(&mut *conn)
                .await
                .unwrap();
            most_open = most_open.max(many.open_pools().len());
        }
        println!(
            "opened {TENANTS} tenant databases from the URL template in {:.1?} ({:.0} per second), at most {most_open} pools open (max_pools {MAX_POOLS})",
            opening.elapsed(),
            TENANTS as f64 / opening.elapsed().as_secs_f64()
        );
        // Warm the working sets.
        run(&few, &few_callers).await;
        run(&many, &many_callers).await;
        run(&many, &larger_callers).await;

        let (mut ratios, mut larger_ratios) = (Vec::new(), Vec::new());
        let (mut few_rates, mut many_rates, mut larger_rates) = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            // Interleaved, alternating which goes first.
            let ((f, fo), (m, mo), (l, lo)) = if round % 2 == 1 {
                let f = run(&few, &few_callers).await;
                let m = run(&many, &many_callers).await;
                (f, m, run(&many, &larger_callers).await)
            } else {
                let l = run(&many, &larger_callers).await;
                let m = run(&many, &many_callers).await;
                (run(&few, &few_callers).await, m, l)
            };
            most_open = most_open.max(fo).max(mo).max(lo);
            println!(
                "round {round}/{ROUNDS}: 10 tenants {f:.0} req/s; 10 000 tenants, working set {WORKING_SET}: {m:.0} req/s ({:.2} x), working set {LARGER_SET}: {l:.0} req/s ({:.2} x)",
                m / f,
                l / f
            );
            ratios.push(m / f);
            larger_ratios.push(l / f);
            few_rates.push(f);
            many_rates.push(m);
            larger_rates.push(l);
        }
        println!(
            "\n10 000 tenants vs 10, working set {WORKING_SET} (median of {ROUNDS} interleaved rounds of {REQUESTS} requests): {:.0} / {:.0} req/s = {:.2} x (target: at least 0.9 x)",
            median(&many_rates),
            median(&few_rates),
            median(&ratios),
        );
        println!(
            "10 000 tenants, working set {LARGER_SET}, vs 10 tenants: {:.0} / {:.0} req/s = {:.2} x (a larger working set; for information)",
            median(&larger_rates),
            median(&few_rates),
            median(&larger_ratios),
        );
        println!(
            "most pools open at once: {most_open} (max_pools {MAX_POOLS}, connection_budget {BUDGET}, 1 connection each)"
        );
    });
}
