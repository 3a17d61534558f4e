//! The one configuration: the file and `KEYROUTE_*` variables read into the section
//! structs in one pass, and errors that never carry a secret (syntax errors name the
//! place, not the text; errors from variables name the variable, not its value). The
//! guide's configuration block is checked against the structs.

use std::path::Path;

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
            "[apikey]\ndangerous_accept_plain_http = true\n\n[connections]\nlive = \"postgres://app:hunter2@db/live\ntest = \"test.db\"\n",
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

/// A value that contains a comma is never split: a multi-host URL from a variable, a
/// key file path, and a route table entry naming a connection with a comma in it
/// (which the old text form turned into two malformed pairs).
#[test]
fn a_comma_inside_a_url_or_a_path_is_kept() {
    let url = "postgres://app@db1:5432,db2:5432/live?target_session_attrs=read-write";
    let config = Config::from_env_vars([
        ("KEYROUTE_DB_LIVE", url),
        ("KEYROUTE_STORE_URL", "/var/lib/keys,v2.db"),
        #[cfg(feature = "jwt")]
        ("KEYROUTE_JWT_PRIVATE_KEY_FILE", "/etc/keys/jwt,v2.pem"),
    ])
    .unwrap();
    assert_eq!(config.router.connections["live"].expose_secret(), url);
    assert_eq!(
        config.store.url.as_ref().map(DatabaseUrl::expose_secret),
        Some("/var/lib/keys,v2.db")
    );
    #[cfg(feature = "jwt")]
    assert_eq!(
        config.jwt.private_key_file.as_deref(),
        Some(Path::new("/etc/keys/jwt,v2.pem"))
    );
    let config = Config::from_toml_str(
        "[connections]\n\"eu,live\" = \"x.db\"\n[routing]\ntable = { live = \"eu,live\" }\n",
    )
    .unwrap();
    assert_eq!(config.router.routing.table["live"], "eu,live");
}

/// A list is the same from a TOML array, a variable's array and a variable's
/// comma-separated text; a table the same from TOML and from `key=value` pairs.
#[test]
fn an_array_and_a_comma_text_give_the_same_list() {
    use keyroute_core::{Environment, KeyType};
    let from_file = Config::from_toml_str(
        "[apikey]\nkey_types = [\"secret\", \"publishable\"]\n\
         type_prefixes = { secret = \"sk\", publishable = \"pk\" }\n\
         [resolver]\naccept_environments = [\"test\"]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n\
         [routing]\ntable = { live = \"LiveDb\", test = \"TestDb\" }\n",
    )
    .unwrap();
    let texts = Config::from_env_vars([
        ("KEYROUTE_APIKEY_KEY_TYPES", "secret, publishable"),
        ("KEYROUTE_APIKEY_TYPE_PREFIXES", "secret=sk,publishable=pk"),
        ("KEYROUTE_RESOLVER_ACCEPT_ENVIRONMENTS", "test"),
        ("KEYROUTE_RESOLVER_TRUSTED_PROXIES", "10.0.0.0/8,::1"),
        ("KEYROUTE_ROUTING_TABLE", "live=LiveDb, test=TestDb"),
    ])
    .unwrap();
    let arrays = Config::from_env_vars([
        ("KEYROUTE_APIKEY_KEY_TYPES", r#"["secret", "publishable"]"#),
        (
            "KEYROUTE_APIKEY_TYPE_PREFIXES",
            r#"{ secret = "sk", publishable = "pk" }"#,
        ),
        ("KEYROUTE_RESOLVER_ACCEPT_ENVIRONMENTS", r#"["test"]"#),
        (
            "KEYROUTE_RESOLVER_TRUSTED_PROXIES",
            r#"["10.0.0.0/8", "::1"]"#,
        ),
        (
            "KEYROUTE_ROUTING_TABLE",
            r#"{ live = "LiveDb", test = "TestDb" }"#,
        ),
    ])
    .unwrap();
    for config in [&from_file, &texts, &arrays] {
        assert_eq!(
            config.apikey.key_types,
            [KeyType::SECRET, KeyType::PUBLISHABLE]
        );
        assert_eq!(config.apikey.type_prefixes.len(), 2);
        assert_eq!(
            config.resolver.accept_environments.as_deref(),
            Some(&[Environment::TEST][..])
        );
        let proxies: Vec<String> = config
            .resolver
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(proxies, ["10.0.0.0/8", "::1/128"]);
        assert_eq!(config.router.routing.table["test"], "TestDb");
    }
}

/// A variable overrides the file's value of its option and nothing else.
#[test]
fn a_variable_overlays_a_file_value() {
    let config = Config::from_sources(
        "[pools]\nmax_size = 4\nmax_pools = 8\n[connections]\nlive = \"file.db\"\ntest = \"test.db\"\n",
        [
            ("KEYROUTE_POOLS_MAX_SIZE", "6"),
            ("KEYROUTE_DB_LIVE", "env.db"),
        ],
    )
    .unwrap();
    assert_eq!(config.router.pools.settings.max_size, 6);
    assert_eq!(config.router.pools.max_pools, 8);
    assert_eq!(config.router.connections["live"].expose_secret(), "env.db");
    assert_eq!(config.router.connections["test"].expose_secret(), "test.db");
}

/// The checkout check and its window, from the file and from variables.
#[test]
fn the_idle_check_and_its_window_are_read() {
    use crate::store::RecyclingCheck;
    let config =
        Config::from_toml_str("[pools]\ncheck = \"idle\"\nidle_check_after = \"250ms\"\n").unwrap();
    assert_eq!(
        config.router.pools.settings.recycling_check,
        RecyclingCheck::Idle
    );
    assert_eq!(
        config.router.pools.settings.idle_check_after,
        std::time::Duration::from_millis(250)
    );
    let config = Config::from_env_vars([
        ("KEYROUTE_POOLS_CHECK", "verified"),
        ("KEYROUTE_POOLS_IDLE_CHECK_AFTER", "0s"),
    ])
    .unwrap();
    assert_eq!(
        config.router.pools.settings.recycling_check,
        RecyclingCheck::Verified
    );
    assert!(config.router.pools.settings.idle_check_after.is_zero());
}

/// A value of the wrong kind is refused naming its section and option, wherever the
/// option is declared (the pool crate's `max_size` beside the router's `max_pools`,
/// JWT options beside the service's).
#[test]
fn a_wrong_type_names_section_and_option() {
    let cases = [
        ("[pools]\nmax_size = \"many\"", "pools", "max_size"),
        ("[pools]\nmax_pools = \"many\"", "pools", "max_pools"),
        ("[pools]\ncheck = 1", "pools", "check"),
        ("[apikey]\ninit_schema = \"yes\"", "apikey", "init_schema"),
        ("[apikey]\nenvironments = 3", "apikey", "environments"),
        (
            "[resolver]\ncache_capacity = true",
            "resolver",
            "cache_capacity",
        ),
        ("[routing]\ntable = 3", "routing", "table"),
        ("[connections]\nlive = 3", "connections", "live"),
        ("[store]\nurl = false", "store", "url"),
        #[cfg(feature = "jwt")]
        ("[jwt]\nleeway = 5", "jwt", "leeway"),
        #[cfg(feature = "jwt")]
        (
            "[jwt]\nexchange_lifetime = true",
            "jwt",
            "exchange_lifetime",
        ),
        #[cfg(feature = "jwt")]
        ("[jwt]\nenabled = \"on\"", "jwt", "enabled"),
        ("apikey = 3", "apikey", ""),
    ];
    for (document, section, option) in cases {
        let error = Config::from_toml_str(document).unwrap_err();
        assert_eq!(
            error.kind,
            keyroute_core::ConfigErrorKind::Invalid,
            "{document}"
        );
        assert_eq!(
            (error.section.as_str(), error.option.as_str()),
            (section, option),
            "{document}: {error}"
        );
    }
}

/// An unknown option or section is refused listing the valid names, whichever
/// crate declares them.
#[test]
fn an_unknown_option_lists_the_valid_ones() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "[pools]\nmax_sise = 4",
            "pools",
            "max_sise",
            &["max_size", "connection_budget", "check"],
        ),
        (
            "[apikey]\nkeysize = 32",
            "apikey",
            "keysize",
            &["key_size_bytes", "environments"],
        ),
        (
            "[routing]\ntemplates = \"{env}\"",
            "routing",
            "templates",
            &["template", "table", "anonymous"],
        ),
        #[cfg(feature = "jwt")]
        (
            "[jwt]\nlifetime = \"1h\"",
            "jwt",
            "lifetime",
            &["exchange_lifetime", "private_key_file", "enabled"],
        ),
        (
            "[pool]\nmax_size = 4",
            "pool",
            "",
            &["apikey", "connections", "pools", "routing", "jwt"],
        ),
    ];
    for (document, section, option, listed) in cases {
        let error = Config::from_toml_str(document).unwrap_err();
        assert_eq!(
            error.kind,
            keyroute_core::ConfigErrorKind::Unknown,
            "{document}"
        );
        assert_eq!(
            (error.section.as_str(), error.option.as_str()),
            (*section, *option)
        );
        for name in *listed {
            assert!(
                error.reason.contains(name),
                "{document}: lists {name}: {error}"
            );
        }
    }
    let error = Config::from_env_vars([("KEYROUTE_POOLS_MAX_SISE", "4")]).unwrap_err();
    assert_eq!(
        (error.section.as_str(), error.option.as_str()),
        ("pools", "max_sise")
    );
    assert!(error.reason.contains("max_size"), "{error}");
    assert!(error.reason.contains("KEYROUTE_POOLS_MAX_SISE"), "{error}");
}

/// A secret given to the wrong variable is never echoed, whatever refuses it (a
/// number, a boolean, a name, an address range, a duration, a choice, a prefix); the
/// error names the variable instead. The old text parsers quoted the value.
#[test]
fn a_secret_in_a_bad_variable_value_is_not_echoed() {
    let secret = "postgres://app:hunter2@db/live";
    let cases = [
        ("KEYROUTE_POOLS_MAX_SIZE", secret.to_owned()),
        ("KEYROUTE_POOLS_CHECK", secret.to_owned()),
        ("KEYROUTE_APIKEY_ENVIRONMENTS", secret.to_owned()),
        ("KEYROUTE_APIKEY_EXPIRE_KEYS_AFTER", secret.to_owned()),
        ("KEYROUTE_APIKEY_TYPE_PREFIXES", format!("secret={secret}")),
        (
            "KEYROUTE_RESOLVER_DANGEROUS_TRUST_ANY_PROXY",
            "hunter2".to_owned(),
        ),
        (
            "KEYROUTE_RESOLVER_TRUSTED_PROXIES",
            "hunter2-secret".to_owned(),
        ),
        ("KEYROUTE_RESOLVER_API_KEY_HEADER", "x hunter2".to_owned()),
        #[cfg(feature = "jwt")]
        ("KEYROUTE_JWT_ALGORITHM", "hunter2".to_owned()),
        #[cfg(feature = "jwt")]
        ("KEYROUTE_JWT_MAX_TOKEN_BYTES", "hunter2".to_owned()),
    ];
    for (variable, value) in cases {
        let error = Config::from_env_vars([(variable, value.as_str())]).unwrap_err();
        let text = shown(&error);
        assert!(!text.contains("hunter2"), "{variable}: {text}");
        assert!(error.reason.contains(variable), "{variable}: {text}");
    }
}

/// The guide's configuration block (`src/guide/configuration.md`) parses, documents
/// every option of every section and no option that does not exist; each option it
/// shows commented out parses too; the `[apikey]` options table in the keys chapter
/// lists the same options.
#[cfg(feature = "jwt")]
#[test]
fn the_guide_documents_every_option() {
    use keyroute_core::config::option_names;
    use std::collections::{BTreeMap, BTreeSet};

    let block = include_str!("guide/configuration.md")
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    Config::from_toml_str(block).unwrap();

    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in block.lines() {
        if let Some(header) = line.strip_prefix('[') {
            current = header.split(']').next().unwrap().to_owned();
            documented.entry(current.clone()).or_default();
            continue;
        }
        let uncommented = line.strip_prefix("# ").unwrap_or(line);
        let Some((name, _)) = uncommented.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            continue;
        }
        documented
            .entry(current.clone())
            .or_default()
            .insert(name.to_owned());
        if uncommented.len() < line.len() {
            let alone = block.replacen(line, uncommented, 1);
            Config::from_toml_str(&alone).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    let defaults = Config::default();
    let sections = option_names(&defaults, &[]);
    assert_eq!(
        documented.keys().collect::<BTreeSet<_>>(),
        sections.iter().collect::<BTreeSet<_>>()
    );
    for section in &sections {
        if section == "connections" || section == "direct" || section == "replicas" {
            continue; // their options are the connections' names
        }
        let options: BTreeSet<String> = option_names(&defaults, &[section]).into_iter().collect();
        assert_eq!(documented[section], options, "[{section}]");
    }

    let keys = include_str!("guide/keys.md");
    let table = &keys[keys.find("## Options").unwrap()..];
    let listed: BTreeSet<String> = table
        .lines()
        .take_while(|line| !line.starts_with("Hooks"))
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect();
    let apikey: BTreeSet<String> = option_names(&defaults.apikey, &[]).into_iter().collect();
    assert_eq!(listed, apikey);
}
