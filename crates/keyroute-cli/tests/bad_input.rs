//! Bad input to the `keyroute` command: a non-zero exit, one line, no secret.

mod common;

use common::{Project, one_error_line};

/// An unknown subcommand is a usage error: exit 2.
#[test]
fn unknown_subcommand_exits_2() {
    let p = Project::sqlite();
    let output = p.keyroute(&["frobnicate"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// A --config path that does not exist is one line saying so.
#[test]
fn missing_config_file_is_one_line() {
    let p = Project::sqlite();
    let output = p
        .keyroute(&["doctor", "--config", "nowhere.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(one_error_line(&output).contains("nowhere.toml"));
}

/// No configuration at all: says which connection to configure.
#[test]
fn no_connections_configured_is_one_line() {
    let p = Project::with_toml("");
    let output = p.keyroute(&["doctor"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(one_error_line(&output).contains("KEYROUTE_DB_LIVE"));
}

/// An unknown option in keyroute.toml is refused, naming it.
#[test]
fn unknown_config_option_is_refused() {
    let p = Project::with_toml("[connections]\nlive = \"live.db\"\n[pools]\nmax_sise = 3\n");
    let output = p.keyroute(&["doctor"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(one_error_line(&output).contains("max_sise"));
}

/// A malformed key on stdin is rejected offline with the reason, and not echoed.
#[test]
fn malformed_key_on_stdin_is_rejected_offline() {
    let p = Project::sqlite();
    for bad in [
        "sk_test_tooshort",
        "not a key at all",
        "sk_live_Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV43kXq9T",
    ] {
        let output = p.keyroute(&["verify"]).write_stdin(bad).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{bad}");
        let line = one_error_line(&output);
        assert!(line.contains("not a valid key"), "{line}");
        assert!(!line.contains(bad), "the key is not echoed: {line}");
    }
}

/// An unreachable PostgreSQL server: one line with the real cause, never the password.
#[test]
fn unreachable_database_prints_no_password() {
    let p = Project::with_toml(
        "[connections]\nlive = \"postgres://app:hunter2-secret@127.0.0.1:1/live\"\ntest = \"postgres://app:hunter2-secret@127.0.0.1:1/test\"\n[pools]\nconnection_timeout = \"1s\"\n",
    );
    for args in [&["doctor"][..], &["users", "show", "ada"][..]] {
        let output = p.keyroute(args).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stdout.contains("hunter2") && !stderr.contains("hunter2"),
            "{stdout}{stderr}"
        );
        let line = one_error_line(&output);
        assert!(
            line.to_lowercase().contains("refused") || line.contains("unreachable"),
            "{line}"
        );
    }
}

/// A SQLite file that cannot be opened is reported, not created elsewhere.
#[test]
fn unopenable_sqlite_file_is_one_line() {
    let p = Project::with_toml("[connections]\nlive = \"/nonexistent-dir/live.db\"\n");
    let output = p.keyroute(&["users", "show", "ada"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    one_error_line(&output);
}
