//! Configuration errors never carry a secret: syntax errors name the place, not the
//! text; errors from `KEYROUTE_*` variables name the variable, not its value.

use super::*;

/// Both renderings a caller may print: `Display` and `Debug`.
fn shown(error: &ConfigError) -> String {
    format!("{error}\n{error:?}")
}

/// A broken line holding a database password or a JWT secret is named by file, line,
/// column, section and option, and its text appears nowhere in the error.
#[test]
fn syntax_errors_name_the_place_never_the_text() {
    let cases = [
        (
            "[apikey]\nrequire_secure_connection = false\n\n[connections]\nlive = \"postgres://app:hunter2@db/live\ntest = \"test.db\"\n",
            "hunter2",
            ("connections", "live", 5),
        ),
        (
            "[connections]\nlive = \"live.db\"\n[jwt]\nenabled = true\nsecret = \"jwt-s3cr3t-0123456789abcdef0123456789\n",
            "jwt-s3cr3t",
            ("jwt", "secret", 5),
        ),
    ];
    for (document, secret, (section, option, line)) in cases {
        let error = Config::from_toml_str(document).unwrap_err();
        let text = shown(&error);
        assert!(!text.contains(secret), "{text}");
        assert_eq!(error.kind, keyroute_core::ConfigErrorKind::Syntax);
        assert_eq!(
            (error.section.as_str(), error.option.as_str()),
            (section, option)
        );
        assert!(text.contains(&format!("line {line}, column ")), "{text}");
    }
}

/// A file's syntax error names the file.
#[test]
fn syntax_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyroute.toml");
    std::fs::write(
        &path,
        "[connections]\nlive = \"mysql://app:hunter2@db/live\n",
    )
    .unwrap();
    let error = Config::from_toml_file(&path).unwrap_err();
    let text = shown(&error);
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("line 2, column "), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

/// A 200 000-character broken line gives a short error, not the line back.
#[test]
fn a_huge_broken_line_gives_a_short_error() {
    let document = format!("[connections]\nlive = \"{}\n", "x".repeat(200_000));
    let error = Config::from_toml_str(&document).unwrap_err();
    assert!(
        error.to_string().len() < 400,
        "{} bytes",
        error.to_string().len()
    );
    assert!(format!("{error:?}").len() < 800);
}

/// A syntax error whose line cannot be attributed safely (inside a multi-line string)
/// names no section or option taken from string contents.
#[test]
fn text_inside_a_string_is_never_taken_for_an_option() {
    let document =
        "[connections]\nlive = \"\"\"\nhunter2 = 1\n\"\"\"\nbroken = \"x\ntest = \"t.db\"\n";
    let error = Config::from_toml_str(document).unwrap_err();
    assert!(!shown(&error).contains("hunter2"), "{}", shown(&error));
    let unclosed = "[connections]\nlive = '''\nhunter2 = \"oops\n";
    let error = Config::from_toml_str(unclosed).unwrap_err();
    assert!(!shown(&error).contains("hunter2"), "{}", shown(&error));
}

/// Errors from variables holding secrets (a connection URL, the store URL, the JWT
/// secret) name the variable and never echo its value.
#[test]
fn variable_errors_never_echo_secret_values() {
    let cases: &[&[(&str, &str)]] = &[
        &[
            ("KEYROUTE_DB_LIVE", "postgres://app:hunter2@db/live"),
            ("KEYROUTE_STORE_CONNECTION", "live"),
            ("KEYROUTE_STORE_URL", "postgres://app:hunter2@db/keys"),
        ],
        #[cfg(feature = "jwt")]
        &[
            ("KEYROUTE_JWT_ENABLED", "true"),
            ("KEYROUTE_JWT_SECRET", "hunter2"),
        ],
    ];
    for vars in cases {
        let error = Config::from_env_vars(vars.iter().copied())
            .and_then(|config| {
                #[cfg(feature = "jwt")]
                config.jwt.signing_key()?;
                Ok(config)
            })
            .unwrap_err();
        let text = shown(&error);
        assert!(!text.contains("hunter2"), "{vars:?}: {text}");
    }
}

/// A connection or store URL whose scheme names no database is refused when the
/// configuration is read, naming the option (and variable), never the password.
#[test]
fn unknown_url_schemes_name_the_option() {
    let error =
        Config::from_toml_str("[connections]\nlive = \"postgress://app:hunter2@db/live\"\n")
            .unwrap_err();
    assert_eq!(
        (error.section.as_str(), error.option.as_str()),
        ("connections", "live")
    );
    assert!(error.to_string().contains("`postgress://`"), "{error}");
    assert!(!shown(&error).contains("hunter2"), "{}", shown(&error));
    let error =
        Config::from_env_vars([("KEYROUTE_STORE_URL", "mysq://app:hunter2@db/keys")]).unwrap_err();
    assert_eq!(
        (error.section.as_str(), error.option.as_str()),
        ("store", "url")
    );
    assert!(error.to_string().contains("KEYROUTE_STORE_URL"), "{error}");
    assert!(!shown(&error).contains("hunter2"));
    for url in [
        "keys.db",
        "postgres://db/k",
        "mariadb://db/k",
        "sqlite://k.db",
    ] {
        Config::from_env_vars([("KEYROUTE_DB_LIVE", url)]).unwrap();
    }
}
