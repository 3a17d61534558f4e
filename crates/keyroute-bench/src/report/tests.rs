//! The report's medians, ratios and targets.

use super::*;

/// One sample of `mode` in `round` at `rps`: 1 ms p50, 2 ms p99, no errors, no Valkey
/// or CPU figures. Tests change the fields they are about.
fn sample(mode: Mode, round: u32, rps: f64) -> ModeSample {
    ModeSample {
        mode,
        round,
        requests: 1,
        rps,
        p50: Duration::from_millis(1),
        p99: Duration::from_millis(2),
        non_2xx: 0,
        valkey_commands: None,
        cpu: None,
    }
}

/// Medians of odd and even counts, and none of nothing.
#[test]
fn median_of_rounds() {
    assert_eq!(median(&mut []), None);
    assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
}

/// Ratios divide medians, and a target is met at or above its floor only.
#[test]
fn ratios_and_targets() {
    let mut report = BackendReport::new(BackendKind::Sqlite);
    for (round, open, naive, kr, uncached, cached) in [
        (1, 1000.0, 500.0, 600.0, 250.0, 950.0),
        (2, 1100.0, 400.0, 500.0, 200.0, 900.0),
        (3, 900.0, 450.0, 9000.0, 300.0, 1000.0),
    ] {
        report.samples.push(sample(Mode::Open, round, open));
        report.samples.push(sample(Mode::Naive, round, naive));
        report.samples.push(sample(Mode::Keyroute, round, kr));
        report
            .samples
            .push(sample(Mode::KeyrouteUncached, round, uncached));
        report
            .samples
            .push(sample(Mode::KeyrouteCached, round, cached));
    }
    let ratios = report.ratios();
    // keyroute 600 (median) / naive 450 = 1.33: met.
    assert!((ratios[0].value.unwrap() - 600.0 / 450.0).abs() < 1e-9);
    assert_eq!(ratios[0].met(), Some(true));
    // uncached 250 / naive 450: no target.
    assert_eq!(ratios[1].met(), None);
    // cached 950 / open 1000 = 0.95: met at the floor exactly.
    assert_eq!(ratios[2].met(), Some(true));
    // Each round's own ratio: 600/500, 500/400, 9000/450; the floor of 1.2 met in all
    // three, 1.2 itself included.
    assert_eq!(ratios[0].rounds, vec![1.2, 1.25, 20.0]);
    assert_eq!(ratios[0].spread(), Some((1.2, 20.0)));
    assert_eq!(ratios[0].rounds_met(), Some(3));
    // cached / open: 0.95, 0.82, 1.11 per round; met in two. No target, no count.
    assert_eq!(ratios[2].rounds_met(), Some(2));
    assert_eq!(ratios[1].rounds_met(), None);
    assert_eq!(ratios[1].rounds.len(), 3);
    let mut out = Vec::new();
    report.write_summary(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("keyroute / naive"), "{text}");
    assert!(text.contains("1.33 x"), "{text}");
    assert!(
        text.contains("target >= 0.95 x: met   (rounds 0.82-1.11 x, met in 2 of 3)"),
        "{text}"
    );
    assert!(text.contains("no target   (rounds 0.50-0.67 x)"), "{text}");

    // A round that measured only one of the two modes has no ratio of its own.
    report.samples.push(sample(Mode::Keyroute, 4, 100.0));
    let ratios = report.ratios();
    assert_eq!(ratios[0].rounds.len(), 3);
    // And a ratio no round measured has no spread and prints none.
    assert!(ratios[3].rounds.is_empty());
    assert_eq!(ratios[3].spread(), None);
    assert_eq!(ratios[3].describe_rounds(), "");
}

/// The plain-pool ratios: throughput against `naive-plain` and `open-plain` with
/// floors, p99 against `open-plain` with a ceiling met at or below it only.
#[test]
fn plain_pool_ratios_and_p99_ceilings() {
    let mut report = BackendReport::new(BackendKind::Sqlite);
    let sample = |mode, round, rps, p99_ms| ModeSample {
        p99: Duration::from_millis(p99_ms),
        valkey_commands: (mode == Mode::KeyrouteValkey).then_some(ValkeyCommands::new(4.0, 1.0)),
        ..sample(mode, round, rps)
    };
    // (mode, [(rps, p99 ms) per round])
    for (mode, rounds) in [
        (Mode::Keyroute, [(1500.0, 12), (1400.0, 14), (1600.0, 10)]),
        (Mode::NaivePlain, [(1000.0, 9), (900.0, 11), (1100.0, 10)]),
        (Mode::OpenPlain, [(1500.0, 10), (1500.0, 8), (1600.0, 12)]),
        (Mode::Open, [(1400.0, 13), (1500.0, 12), (1450.0, 11)]),
    ] {
        for (round, (rps, p99)) in (1..).zip(rounds) {
            report.samples.push(sample(mode, round, rps, p99));
        }
    }
    let ratios = report.ratios();
    let find = |mode, baseline, figure| {
        ratios
            .iter()
            .find(|r| r.mode == mode && r.baseline == baseline && r.figure == figure)
            .unwrap()
    };
    // keyroute 1500 / naive-plain 1000 = 1.5: met at the floor exactly.
    let r = find(Mode::Keyroute, Mode::NaivePlain, Figure::Throughput);
    assert!((r.value.unwrap() - 1.5).abs() < 1e-9);
    assert_eq!(r.met(), Some(true));
    // keyroute 1500 / open-plain 1500 = 1.0 >= 0.95: met.
    let r = find(Mode::Keyroute, Mode::OpenPlain, Figure::Throughput);
    assert!((r.value.unwrap() - 1.0).abs() < 1e-9);
    assert_eq!(r.met(), Some(true));
    // p99: keyroute median 12 ms / open-plain median 10 ms = 1.2: met at the ceiling.
    let r = find(Mode::Keyroute, Mode::OpenPlain, Figure::P99);
    assert!((r.value.unwrap() - 1.2).abs() < 1e-9);
    assert_eq!(r.met(), Some(true));
    // p99: open median 12 ms / open-plain 10 ms is also 1.2; at 13 ms it is missed.
    let r = find(Mode::Open, Mode::OpenPlain, Figure::P99);
    assert!((r.value.unwrap() - 1.2).abs() < 1e-9);
    report.samples.retain(|s| s.mode != Mode::Open);
    for round in 1..=3 {
        report.samples.push(sample(Mode::Open, round, 1400.0, 13));
    }
    let r = report
        .ratios()
        .into_iter()
        .find(|r| r.mode == Mode::Open && r.figure == Figure::P99)
        .unwrap();
    assert!((r.value.unwrap() - 1.3).abs() < 1e-9);
    assert_eq!(r.met(), Some(false));
    // Modes not measured (naive, the cached ones) leave their ratios without a value.
    assert!(report.ratios().iter().any(|r| r.value.is_none()));
    let mut out = Vec::new();
    report.write_summary(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("open / open-plain"), "{text}");
    assert!(text.contains("1.30 x   target <= 1.20 x: MISSED"), "{text}");
    assert!(text.contains("target >= 1.50 x: met"), "{text}");
    assert!(text.contains("not measured"), "{text}");
}

/// CPU per request served: the medians of server + rest (the client's own left out),
/// their ratio with each round's, the parts in the medians' lines, and `n/a` for a
/// pair whose baseline has no CPU figures.
#[test]
fn cpu_ratios_leave_the_client_out() {
    let mut report = BackendReport::new(BackendKind::Sqlite);
    let cpu = |server_us, rest_us| CpuPerRequest {
        server_us,
        client_us: 100.0,
        rest_us,
        idle: 0.02,
        steal: 0.01,
    };
    let sample = |mode, round, rps, cpu| ModeSample {
        cpu,
        ..sample(mode, round, rps)
    };
    for (round, keyroute, plain) in [
        (1, cpu(40.0, 10.0), cpu(40.0, 5.0)),
        (2, cpu(42.0, 10.0), cpu(38.0, 2.0)),
        (3, cpu(60.0, 20.0), cpu(45.0, 5.0)),
    ] {
        for (mode, figures) in [(Mode::Keyroute, keyroute), (Mode::OpenPlain, plain)] {
            report
                .samples
                .push(sample(mode, round, 1000.0, Some(figures)));
        }
    }
    // A naive-plain measured without CPU figures.
    report
        .samples
        .push(sample(Mode::NaivePlain, 1, 500.0, None));
    let ratios = report.ratios();
    let find = |mode, baseline| {
        ratios
            .iter()
            .find(|r| r.mode == mode && r.baseline == baseline && r.figure == Figure::Cpu)
            .unwrap()
    };
    // keyroute: 50, 52, 80 (median 52); open-plain: 45, 40, 50 (median 45).
    let r = find(Mode::Keyroute, Mode::OpenPlain);
    assert!((r.value.unwrap() - 52.0 / 45.0).abs() < 1e-9);
    assert_eq!(r.rounds, vec![50.0 / 45.0, 52.0 / 40.0, 80.0 / 50.0]);
    assert_eq!(r.met(), None);
    assert_eq!(find(Mode::Keyroute, Mode::NaivePlain).value, None);
    let mut out = Vec::new();
    report.write_summary(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for line in [
        "cpu/req 52.0 us (server 42.0, rest 10.0; client 100.0), idle 2 %, steal 1 %",
        "keyroute / open-plain          cpu     1.16 x   no target   (rounds 1.11-1.60 x)",
        "keyroute / naive-plain         cpu        n/a   no target",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

/// The limits' ratios against `keyroute`, a skipped mode's reason, and
/// `keyroute-valkey`'s commands per request (the median of its rounds).
#[test]
fn limits_ratios_skips_and_valkey_commands() {
    let mut report = BackendReport::new(BackendKind::Sqlite);
    for (round, commands) in [(1, 1.0), (2, 1.5), (3, 1.02)] {
        for (mode, rps) in [(Mode::Keyroute, 1000.0), (Mode::KeyrouteValkey, 690.0)] {
            report.samples.push(ModeSample {
                valkey_commands: (mode == Mode::KeyrouteValkey)
                    .then_some(ValkeyCommands::new(commands + 3.0, commands)),
                ..sample(mode, round, rps)
            });
        }
    }
    report.skipped = vec![(Mode::KeyrouteLimited, "no reason".to_owned())];
    let mut out = Vec::new();
    report.write_summary(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for line in [
        "keyroute-limited   skipped: no reason",
        "keyroute-limited / keyroute    req/s      n/a   target >= 0.95 x: not measured",
        "keyroute-valkey / keyroute     req/s   0.69 x   target >= 0.70 x: MISSED",
        "keyroute-valkey / keyroute     p99     1.00 x   no target",
        "keyroute-valkey per request (medians): 1.02 (rounds 1.00, 1.50, 1.02) EVALSHA/EVAL sent",
        "4.02 (rounds 4.00, 4.50, 4.02) Valkey commands in all",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

/// The tenancy ratios against `keyroute` (throughput with a 0.9 floor, p99 without a
/// target), and the round trips per request, awaited ones apart from the commit.
#[test]
fn tenancy_ratios_and_round_trips() {
    let mut report = BackendReport::new(BackendKind::Postgres);
    for round in 1..=3 {
        for (mode, rps, p99) in [
            (Mode::Keyroute, 1000.0, 10),
            (Mode::KeyrouteRls, 920.0, 11),
            (Mode::KeyrouteSchema, 850.0, 12),
        ] {
            report.samples.push(ModeSample {
                p99: Duration::from_millis(p99),
                ..sample(mode, round, rps)
            });
        }
    }
    let tally = |trips: &[(&str, u64)], statements: &[(&str, u64)]| {
        let mut tally = crate::service::Tally::default();
        for (label, n) in trips {
            tally.round_trips.insert((*label).to_owned(), *n);
            tally.sent += n;
        }
        for (tag, n) in statements {
            tally.statements.insert((*tag).to_owned(), *n);
        }
        tally
    };
    let plain = RoundTrips::new(
        100,
        tally(
            &[
                ("prepared statement: SELECT $1", 100),
                ("prepared statement: SELECT item FROM orders", 100),
            ],
            &[("SELECT", 200)],
        ),
    );
    let bound = RoundTrips::new(
        100,
        tally(
            &[
                ("simple query: SET; BEGIN; RESET; RESET; SELECT", 100),
                ("prepared statement: SELECT item FROM orders", 100),
                ("simple query: COMMIT", 100),
            ],
            &[
                ("SET", 100),
                ("BEGIN", 100),
                ("RESET", 200),
                ("SELECT", 200),
                ("COMMIT", 100),
            ],
        ),
    );
    assert!((plain.per_request() - 2.0).abs() < 1e-9);
    assert!((plain.awaited_per_request() - 2.0).abs() < 1e-9);
    assert!((bound.per_request() - 3.0).abs() < 1e-9);
    assert!((bound.awaited_per_request() - 2.0).abs() < 1e-9);
    assert!((bound.statements_per_request() - 7.0).abs() < 1e-9);
    report.round_trips = vec![(Mode::Keyroute, plain), (Mode::KeyrouteRls, bound)];
    let mut out = Vec::new();
    report.write_summary(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for line in [
        "keyroute-rls / keyroute        req/s   0.92 x   target >= 0.90 x: met",
        "keyroute-schema / keyroute     req/s   0.85 x   target >= 0.90 x: MISSED",
        "keyroute-rls / keyroute        p99     1.10 x   no target",
        "keyroute-schema / keyroute     p99     1.20 x   no target",
        "postgres: round trips per request on the routed connection",
        "keyroute           per request: 2.00 round trips, 2.00 awaited by the request (statements 2.00: SELECT 2.00)",
        "1.00 x prepared statement: SELECT $1 (the pool's checkout check)",
        "keyroute-rls       per request: 3.00 round trips, 2.00 awaited by the request (statements 7.00: BEGIN 1.00, COMMIT 1.00, RESET 2.00, SELECT 2.00, SET 1.00)",
        "1.00 x simple query: SET; BEGIN; RESET; RESET; SELECT (the unit's begin",
        "1.00 x simple query: COMMIT (the unit's end",
        "100 requests; 300 round trips sent, 300 answered; 0 errors; 0 connections opened",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}
