//! `keyroute keys import`: legacy keys from JSON lines and CSV keep working, bad lines
//! are reported by number without their secrets, and a second run changes nothing.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Project, texts};

const LEGACY: &str = "acme_live_0123456789abcdefXYZ";
const LEGACY_TEST: &str = "acme_test_feedfacecafe0042";

fn sha256_hex(text: &str) -> String {
    keyroute::keys::KeyHash::of(text)
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn legacy_project() -> Project {
    Project::sqlite_with("[apikey]\nlegacy_keys = true\n")
}

#[test]
fn legacy_keys_are_imported_once_and_keep_working() {
    let p = legacy_project();
    p.json(&["users", "add", "ada"]);
    let file = p.path().join("keys.jsonl");
    let lines = [
        format!(
            r#"{{"key":"{LEGACY}","user":"ada","environment":"live","scopes":["orders:read"],"name":"old"}}"#
        ),
        format!(
            r#"{{"hash":"{}","user":"ada","environment":"test"}}"#,
            sha256_hex(LEGACY_TEST)
        ),
        r#"{"key":"acme_live_broken""#.to_owned(),
        format!(r#"{{"key":"{LEGACY}x","user":"nobody","environment":"live"}}"#),
        format!(
            r#"{{"key":"{LEGACY}y","hash":"{}","environment":"live"}}"#,
            sha256_hex("z")
        ),
        format!(
            r#"{{"key":"{LEGACY}z","environment":"live","expires_at":"2001-01-01T00:00:00Z"}}"#
        ),
        r#"{"hash":"abc","environment":"live"}"#.to_owned(),
        String::new(),
        format!(r#"{{"key":"{LEGACY}","user":"ada","environment":"live"}}"#),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let output = p
        .keyroute(&["keys", "import", file.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "bad lines fail the run: {stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["imported"], 2, "{report}");
    assert_eq!(report["already_stored"], 1, "the repeated key: {report}");
    let failed: Vec<u64> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(failed, [3, 4, 5, 6, 7], "{report}");
    for number in [3, 4, 5, 6, 7] {
        assert!(stderr.contains(&format!("line {number}: ")), "{stderr}");
    }
    assert!(stderr.contains("no user"), "{stderr}");
    for secret in [LEGACY, LEGACY_TEST, "acme_live_broken"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} shown"
        );
    }

    // The imported keys resolve: by plaintext, and the one imported by hash alone.
    let live = p.verify(LEGACY).unwrap();
    assert_eq!(live["user"], "ada");
    assert_eq!(live["connection"], "live");
    assert_eq!(live["scopes"][0], "orders:read");
    assert_eq!(p.verify(LEGACY_TEST).unwrap()["connection"], "test");
    let typo = p.verify("acme_live_0123456789abcdefXYy").unwrap_err();
    assert!(typo.contains("not recognised"), "{typo}");

    // Again: nothing new, every good line already stored.
    std::fs::write(
        &file,
        [&lines[0], &lines[1], &lines[8]]
            .map(String::as_str)
            .join("\n"),
    )
    .unwrap();
    let again = p.json(&["keys", "import", file.to_str().unwrap()]);
    assert_eq!(
        (again["imported"].as_u64(), again["already_stored"].as_u64()),
        (Some(0), Some(3))
    );
    // In the audit trail, once each.
    let trail = p.json(&["audit", "--limit", "1000"]);
    let imports = trail["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "key_imported")
        .count();
    assert_eq!(imports, 2);
    assert!(!trail.to_string().contains(LEGACY));
}

#[test]
fn csv_files_import_too() {
    let p = legacy_project();
    p.json(&["users", "add", "bob"]);
    let file = p.path().join("keys.csv");
    std::fs::write(
        &file,
        format!(
            "key,user,environment,scopes,name\n{LEGACY},bob,live,\"orders:read orders:write\",\"from, the old system\"\n"
        ),
    )
    .unwrap();
    let report = p.json(&["keys", "import", file.to_str().unwrap()]);
    assert_eq!(report["imported"], 1, "{report}");
    let live = p.verify(LEGACY).unwrap();
    assert_eq!(
        live["scopes"],
        serde_json::json!(["orders:read", "orders:write"])
    );
    // A row with a column the header does not have.
    std::fs::write(&file, "key,environment\nabc,live,extra\n").unwrap();
    let output = p
        .keyroute(&["keys", "import", file.to_str().unwrap()])
        .output()
        .unwrap();
    let (_, stderr) = texts(&output);
    assert!(stderr.contains("line 2: "), "{stderr}");
}

#[test]
fn without_the_legacy_setting_foreign_keys_are_refused() {
    let p = Project::sqlite();
    let file = p.path().join("keys.jsonl");
    std::fs::write(
        &file,
        format!(r#"{{"key":"{LEGACY}","environment":"live"}}"#),
    )
    .unwrap();
    let output = p
        .keyroute(&["keys", "import", file.to_str().unwrap()])
        .output()
        .unwrap();
    let (_, stderr) = texts(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("legacy_keys = true"), "{stderr}");
    assert!(!stderr.contains(LEGACY));
    // Nor does such a key resolve.
    assert!(p.verify(LEGACY).is_err());
    // A file of unknown format says how to name it.
    let other = p.path().join("keys.txt");
    std::fs::write(&other, "").unwrap();
    let output = p
        .keyroute(&["keys", "import", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("--format"));
}
