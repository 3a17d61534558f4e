//! `keyroute verify`: JSON on rejection too, and what a JWT is and whose.
#![allow(clippy::unwrap_used)] // test code: a failed set-up is a failed test

mod common;

use common::{Project, texts};
use keyroute::jwt::SessionRequest;
use keyroute::store::Sqlite;
use keyroute::{Config, Keyroute, UserId};

const JWT: &str = "[apikey]\ndangerous_accept_plain_http = true\n[jwt]\nenabled = true\nsecret = \"test-only-hmac-secret-0123456789abcdefghij\"\n";

/// A rejected key with `--json` prints one JSON line with `valid: false` and the
/// error's stable code, exits 1, and never prints the key.
#[test]
fn rejection_is_json_with_a_stable_code() {
    let p = Project::sqlite();
    p.json(&["migrate"]);
    let (key_id, plaintext) = p.user_with_test_key("ada");
    p.json(&["keys", "revoke", &key_id]);
    // The last character changed (to one it is not: a key ending in `x` stayed the
    // same key with a fixed `x`, 1 run in 62).
    let last = if plaintext.ends_with('x') { "y" } else { "x" };
    let mistyped = format!("{}{last}", &plaintext[..plaintext.len() - 1]);
    for (input, code) in [(&plaintext, "revoked_key"), (&mistyped, "invalid_key")] {
        let output = p
            .keyroute(&["verify", "--json"])
            .write_stdin(input.clone())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let (stdout, stderr) = texts(&output);
        let tail = &input[input.len() - 20..];
        assert!(!stdout.contains(tail) && !stderr.contains(tail));
        let value: serde_json::Value =
            serde_json::from_str(stdout.lines().last().expect("a JSON line")).unwrap();
        assert_eq!(value["valid"], false, "{value}");
        assert_eq!(value["code"], code, "{value}");
        assert!(value["message"].is_string(), "{value}");
    }
}

/// Mints an exchanged JWT for `plaintext` and a session token for `user`, with the
/// project's own configuration.
fn tokens(p: &Project, plaintext: &str, user: &str) -> (String, String) {
    let config = Config::from_toml_file(p.path().join("keyroute.toml")).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let app = Keyroute::<Sqlite>::from_config(config).await.unwrap();
        let jwt = app.jwt().unwrap();
        let principal = app.resolver().resolve(plaintext).await.unwrap();
        let exchanged = jwt.exchange(&principal).unwrap();
        let session = jwt
            .issue_session(SessionRequest::new(UserId::new(user).unwrap()))
            .unwrap();
        (
            exchanged.token.expose_secret().to_owned(),
            session.token.expose_secret().to_owned(),
        )
    })
}

/// A JWT is described as one, of its kind, with its key and user (id and name from
/// the store), and the token itself is never printed.
#[test]
fn jwts_say_what_they_are_and_whose() {
    let p = Project::sqlite_with(JWT);
    p.json(&["migrate"]);
    let added = p.json(&["users", "add", "ada"]);
    let user_id = added["extra"]["user"]["id"].as_str().unwrap().to_owned();
    let test_key = added["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["environment"] == "test")
        .unwrap();
    let key_id = test_key["id"].as_str().unwrap();
    let (exchanged, session) = tokens(&p, test_key["plaintext"].as_str().unwrap(), &user_id);

    let value = p.json_stdin(&["verify"], &exchanged);
    assert_eq!(value["valid"], true);
    assert_eq!(value["token"], "jwt");
    assert_eq!(value["jwt_kind"], "exchanged");
    assert_eq!(value["key_id"], key_id);
    assert_eq!(value["user_id"], user_id.as_str());
    assert_eq!(value["user"], "ada");
    assert_eq!(value["connection"], "test");

    let output = p
        .keyroute(&["verify"])
        .write_stdin(exchanged.clone())
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.starts_with("valid JWT"), "{stdout}");
    assert!(
        stdout.contains("exchanged") && stdout.contains(key_id),
        "{stdout}"
    );
    assert!(stdout.contains("ada"), "{stdout}");
    let signature = exchanged.rsplit('.').next().unwrap();
    assert!(!stdout.contains(signature) && !stderr.contains(signature));

    let value = p.json_stdin(&["verify"], &session);
    assert_eq!(value["jwt_kind"], "session");
    assert_eq!(value["user"], "ada");
    assert!(value["key_id"].is_null());
}
