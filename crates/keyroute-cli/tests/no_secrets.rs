//! Nothing secret is printed: not a configuration line holding a password, not a key
//! or token presented where an id was expected, not a database URL's password.

mod common;

use common::{Project, one_error_line, texts};

/// A TOML syntax error on the line holding a database password or a JWT secret names
/// the file, line and option on stderr, never the line's text; a 200 000-character
/// broken line gives a short error.
#[test]
fn config_syntax_errors_print_no_secret() {
    let cases = [
        (
            "[connections]\nlive = \"postgres://app:hunter2@db/live\ntest = \"test.db\"\n",
            "hunter2",
        ),
        (
            "[connections]\nlive = \"live.db\"\n[jwt]\nenabled = true\nsecret = \"jwt-s3cr3t-0123456789abcdef0123456789abcdef\n",
            "jwt-s3cr3t",
        ),
    ];
    for (toml, secret) in cases {
        let p = Project::with_toml(toml);
        let output = p.keyroute(&["doctor"]).output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        let (stdout, stderr) = texts(&output);
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{stdout}{stderr}"
        );
        let line = one_error_line(&output);
        assert!(
            line.contains("keyroute.toml") && line.contains("line "),
            "{line}"
        );
    }
    let huge = format!("[connections]\nlive = \"{}\n", "y".repeat(200_000));
    let output = Project::with_toml(&huge)
        .keyroute(&["doctor"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stderr.len() < 600, "{} bytes", output.stderr.len());
}

/// A key where an id, a user or nothing is expected is refused without being
/// repeated, with the right form to use instead; so is a mistyped (bad checksum) key.
#[test]
fn presented_keys_are_never_echoed() {
    let p = Project::sqlite();
    p.json(&["migrate"]);
    let (key_id, plaintext) = p.user_with_test_key("ada");
    let mistyped = format!("{}x", &plaintext[..plaintext.len() - 1]);
    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (vec!["keys", "show", &plaintext], &plaintext, 1),
        (vec!["keys", "revoke", &plaintext], &plaintext, 1),
        (vec!["keys", "show", &mistyped], &mistyped, 1),
        (vec!["keys", "list", "--user", &plaintext], &plaintext, 1),
        (vec!["users", "show", &plaintext], &plaintext, 1),
        (vec!["verify", &plaintext], &plaintext, 2),
        (vec!["keys", "show", &key_id, &plaintext], &plaintext, 2),
        (
            vec!["keys", "list", "--user", "ada", "--env", &plaintext],
            &plaintext,
            1,
        ),
    ];
    for (args, secret, code) in cases {
        let output = p.keyroute(&args).output().unwrap();
        let (stdout, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        // The secret part alone is never printed either.
        let tail = &secret[secret.len() - 20..];
        assert!(
            !stdout.contains(tail) && !stderr.contains(tail),
            "{args:?} echoed the key: {stdout}{stderr}"
        );
        assert!(!stderr.is_empty(), "{args:?}: says why");
    }
    for command in ["show", "revoke"] {
        let output = p.keyroute(&["keys", command, &plaintext]).output().unwrap();
        let line = one_error_line(&output);
        assert!(
            line.contains("API key") && line.contains("keyroute verify"),
            "{line}"
        );
    }
    let output = p.keyroute(&["verify", &plaintext]).output().unwrap();
    let line = one_error_line(&output);
    assert!(line.contains("standard input"), "{line}");
    // The key was not revoked by `keys revoke <plaintext>`.
    let verified = p.json_stdin(&["verify"], &plaintext);
    assert_eq!(verified["valid"], true);
}

/// A `scheme://` keyroute does not know (`postgress://`) is refused naming the option
/// or variable, never opened as a SQLite path, and its password is not printed.
#[test]
fn unknown_url_schemes_are_refused_naming_the_option() {
    let p = Project::with_toml(
        "[connections]\nlive = \"postgress://app:hunter2@db/live\"\ntest = \"test.db\"\n",
    );
    for args in [&["doctor"][..], &["users", "list"][..]] {
        let output = p.keyroute(args).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let (stdout, stderr) = texts(&output);
        assert!(!format!("{stdout}{stderr}").contains("hunter2"), "{stderr}");
        let line = one_error_line(&output);
        assert!(
            line.contains("[connections]") && line.contains("live") && line.contains("postgress"),
            "{line}"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(p.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "keyroute.toml")
        .collect();
    assert!(leftovers.is_empty(), "nothing is created: {leftovers:?}");

    let store = Project::with_toml(
        "[connections]\nlive = \"live.db\"\n[store]\nurl = \"mysq://app:hunter2@db/keys\"\n",
    );
    let line = one_error_line(&store.keyroute(&["users", "list"]).output().unwrap());
    assert!(
        line.contains("[store]") && line.contains("url") && !line.contains("hunter2"),
        "{line}"
    );

    let env = Project::with_toml("");
    let output = env
        .keyroute(&["doctor"])
        .env("KEYROUTE_DB_LIVE", "postgress://app:hunter2@db/live")
        .output()
        .unwrap();
    let line = one_error_line(&output);
    assert!(
        line.contains("KEYROUTE_DB_LIVE") && !line.contains("hunter2"),
        "{line}"
    );
}
