//! `keyroute keys update` on SQLite files: each option changes what it names, a
//! disabled key is refused until enabled, and bad input is one typed error line with
//! nothing applied.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Project, one_error_line};

#[test]
fn keys_are_updated_disabled_and_enabled() {
    let p = Project::sqlite();
    let (id, plaintext) = p.user_with_test_key("ada");
    assert!(p.verify(&plaintext).is_ok());

    let updated = p.json(&[
        "keys",
        "update",
        &id,
        "--name",
        "ci",
        "--scope",
        "orders:read",
        "--notes",
        "from ci",
        "--expires-in",
        "30days",
    ]);
    assert_eq!(updated["name"], "ci");
    assert_eq!(updated["scopes"], serde_json::json!(["orders:read"]));
    assert!(updated["expires_at"].is_string());
    assert_eq!(
        updated["changed"],
        serde_json::json!(["name", "scopes", "expires_at", "notes"])
    );
    assert_eq!(p.verify(&plaintext).unwrap()["scopes"][0], "orders:read");

    let disabled = p.json(&["keys", "update", &id, "--disable"]);
    assert_eq!(disabled["enabled"], false);
    let refused = p.verify(&plaintext).unwrap_err();
    assert!(refused.contains("disabled"), "{refused}");
    let enabled = p.json(&["keys", "update", &id, "--enable"]);
    assert_eq!(enabled["enabled"], true);
    assert!(p.verify(&plaintext).is_ok(), "the same secret works again");

    let bound = p.json(&[
        "keys",
        "update",
        &id,
        "--network",
        "10.0.0.0/8",
        "--network",
        "::1/128",
    ]);
    assert_eq!(
        bound["allowed_networks"],
        serde_json::json!(["10.0.0.0/8", "::1/128"])
    );
    let refused = p.verify(&plaintext).unwrap_err();
    assert!(refused.contains("allowed networks"), "{refused}");
    let anywhere = p.json(&[
        "keys",
        "update",
        &id,
        "--any-network",
        "--clear-name",
        "--no-expiry",
    ]);
    assert_eq!(anywhere["allowed_networks"], serde_json::json!([]));
    assert_eq!(anywhere["name"], serde_json::Value::Null);
    assert_eq!(anywhere["expires_at"], serde_json::Value::Null);
    assert!(p.verify(&plaintext).is_ok());

    let tagged = p.json(&[
        "keys",
        "update",
        &id,
        "--ref-id",
        "T-9",
        "--meta",
        "team=payments",
    ]);
    assert_eq!(tagged["changed"], serde_json::json!(["ref_id", "meta"]));
    let output = p
        .keyroute(&["keys", "update", &id, "--meta", "no-equals-sign"])
        .output()
        .unwrap();
    assert!(one_error_line(&output).contains("--meta"));
    // The human form says what changed.
    let output = p
        .keyroute(&["keys", "update", &id, "--name", "ci"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(changed: name)"), "{stdout}");
}

#[test]
fn bad_updates_are_one_error_and_change_nothing() {
    let p = Project::sqlite();
    let (id, plaintext) = p.user_with_test_key("ada");
    let before = p.json(&["keys", "show", &id]);
    for (args, says) in [
        (vec!["--network", "10.0.0.0/33"], "--network"),
        (vec!["--network", "nowhere"], "--network"),
        (vec!["--scope", "orders read"], "--scope"),
        (vec!["--expires-in", "soon"], "expires-in"),
        (vec!["--name", "bad\u{1b}[2Jname"], "control characters"),
        (vec![], "name something to change"),
    ] {
        let mut all = vec!["keys", "update", id.as_str()];
        all.extend(args.iter().copied());
        let output = p.keyroute(&all).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        let line = one_error_line(&output);
        assert!(line.contains(says), "{args:?}: {line}");
        assert_eq!(
            p.json(&["keys", "show", &id]),
            before,
            "{args:?}: nothing applied"
        );
    }
    // Both switches at once is a usage error from the parser.
    let output = p
        .keyroute(&["keys", "update", &id, "--enable", "--disable"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    // An unknown id, and a key where an id belongs (never repeated back).
    let output = p
        .keyroute(&[
            "keys",
            "update",
            "0f3a9c2e4b5d6e7f8a9b0c1d2e3f4a5b",
            "--name",
            "x",
        ])
        .output()
        .unwrap();
    assert!(one_error_line(&output).contains("no key with id"));
    let output = p
        .keyroute(&["keys", "update", &plaintext, "--name", "x"])
        .output()
        .unwrap();
    let line = one_error_line(&output);
    assert!(line.contains("that is an API key"), "{line}");
    assert!(!line.contains(&plaintext));
    // A revoked key is not changed.
    p.json(&["keys", "revoke", &id]);
    let output = p
        .keyroute(&["keys", "update", &id, "--enable"])
        .output()
        .unwrap();
    let line = one_error_line(&output);
    assert!(line.contains("revoked or rolled"), "{line}");
}

#[test]
fn the_audit_trail_names_the_operator_and_each_change() {
    let p = Project::sqlite();
    let (id, plaintext) = p.user_with_test_key("ada");
    p.json(&["keys", "update", &id, "--disable"]);
    p.json(&["keys", "revoke", &id]);
    let trail = p.json(&["audit", "--key", &id]);
    let records = trail["records"].as_array().unwrap();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["key_updated", "key_revoked"]);
    for record in records {
        assert!(
            record["actor"].as_str().unwrap().starts_with("operator:"),
            "{record}"
        );
    }
    assert!(!trail.to_string().contains(&plaintext));
    let all = p.json(&["audit", "--user", "ada"]);
    assert_eq!(all["records"][0]["action"], "user_registered");
    // Pages: --limit, then --after the id the page ended with.
    let first = p.json(&["audit", "--limit", "1"]);
    let next = first["next_after"].as_u64().unwrap().to_string();
    let second = p.json(&["audit", "--limit", "1", "--after", &next]);
    assert_ne!(first["records"][0]["id"], second["records"][0]["id"]);
    // Bad input: one line, nothing else.
    for args in [
        vec!["audit", "--since", "yesterday"],
        vec!["audit", "--limit", "0"],
        vec!["audit", "--user", "nobody"],
    ] {
        let output = p.keyroute(&args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        one_error_line(&output);
    }
    // The human form is a table.
    let output = p.keyroute(&["audit", "--key", &id]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("key_revoked"), "{stdout}");
}
