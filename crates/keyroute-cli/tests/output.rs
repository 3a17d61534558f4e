//! What the command prints from the store: escaped, complete (with how to see the
//! rest), and quiet when the reader goes away.

mod common;

use std::io::Read;
use std::process::Stdio;

use common::{Project, texts};

/// Names, emails and tenants carrying terminal escapes and newlines (written straight
/// into the store) are printed escaped: no ESC byte, no fake row.
#[test]
fn control_characters_from_the_store_are_escaped() {
    let p = Project::sqlite();
    p.json(&["migrate"]);
    p.json(&["users", "add", "ada", "--email", "ada@example.com"]);
    p.json(&["users", "add", "bob"]);
    p.json(&[
        "keys", "issue", "--user", "ada", "--env", "test", "--name", "ci",
    ]);
    p.sql(
        "UPDATE keyroute_api_keys SET name = 'ci' || char(27) || '[2J' || char(10) || '│ fake │ row' WHERE name = 'ci';
         UPDATE keyroute_users SET email = 'x' || char(27) || ']0;pwned' || char(7) || '@example.com',
                                   user_name = 'ada' || char(13) || 'eve' WHERE user_name = 'ada';
         UPDATE keyroute_users SET user_name = 'bob' || char(10) || 'mallory' WHERE user_name = 'bob';",
    );
    let ada = "ada\reve";
    for args in [
        vec!["keys", "list", "--user", ada],
        vec!["users", "show", ada],
        vec!["users", "list"],
    ] {
        let output = p.keyroute(&args).output().unwrap();
        let (stdout, stderr) = texts(&output);
        assert!(output.status.success(), "{args:?}: {stderr}");
        assert!(
            !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
            "{args:?}: {stdout:?}"
        );
        assert!(!stdout.contains('\r'), "{args:?}: {stdout:?}");
        for line in stdout.lines() {
            assert!(
                !line.contains("fake") || line.contains("\\n"),
                "{args:?}: a row of its own: {stdout}"
            );
            assert!(!line.starts_with("mallory"), "{args:?}: {stdout}");
        }
    }
    let listed = p
        .keyroute(&["keys", "list", "--user", ada])
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains(r"ci\u{1b}[2J\n│ fake │ row"), "{listed}");
}

/// `users list | head`: the reader closing the pipe early ends the command quietly,
/// with no panic and a success status.
#[test]
fn a_closed_pipe_ends_output_quietly() {
    let p = Project::sqlite();
    p.json(&["migrate"]);
    p.import_users(3000);
    for json in [false, true] {
        let mut args = vec!["users", "list", "--limit", "3000"];
        if json {
            args.push("--json");
        }
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("keyroute"))
            .args(&args)
            .current_dir(p.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 64];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout); // `head -c 64`
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(output.status.success(), "{:?}: {stderr}", output.status);
        assert!(stderr.is_empty(), "{stderr}");
    }
}

/// `users list` lists every user, with keys or without, a page at a time: it says
/// how many were shown of how many, and prints the command for the next page, which
/// gives the rest; `--without-keys` lists only users `backfill` would key.
#[test]
fn users_list_pages_through_every_user() {
    let p = Project::sqlite();
    p.json(&["migrate"]);
    p.json(&["users", "add", "ada"]);
    p.json(&["users", "add", "bob"]);
    p.import_users(250);

    let output = p.keyroute(&["users", "list"]).output().unwrap();
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    let footer = stdout.lines().last().unwrap();
    assert!(footer.contains("100 of 252 users shown"), "{footer}");
    let next = footer.split("next page: ").nth(1).unwrap();
    assert!(next.starts_with("keyroute users list "), "{footer}");

    let mut seen = std::collections::BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let mut args = vec!["users", "list", "--limit", "100"];
        if let Some(after) = &after {
            args.extend(["--after", after.as_str()]);
        }
        let page = p.json(&args);
        assert_eq!(page["total"], 252);
        for user in page["users"].as_array().unwrap() {
            assert!(seen.insert(user["user_name"].as_str().unwrap().to_owned()));
        }
        match page["next_after"].as_str() {
            Some(id) => after = Some(id.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 252);
    assert!(
        seen.contains("ada") && seen.contains("bob"),
        "users with keys are listed"
    );

    let all = p.json(&["users", "list", "--all"]);
    assert_eq!(all["users"].as_array().unwrap().len(), 252);
    assert!(all["next_after"].is_null());

    let without = p.json(&["users", "list", "--without-keys", "--all"]);
    let names: Vec<&str> = without["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 250);
    assert!(names.iter().all(|n| n.starts_with("imported-")));

    // Following the printed command gives the next page.
    let args: Vec<&str> = next.split_whitespace().skip(1).collect();
    let second = p.keyroute(&args).output().unwrap();
    let (second, stderr) = texts(&second);
    assert!(
        second.contains("100 of 252 users shown"),
        "{second}{stderr}"
    );
    let last = p
        .keyroute(&["users", "list", "--limit", "1000"])
        .output()
        .unwrap();
    let (last, _) = texts(&last);
    assert!(
        last.lines().last().unwrap().contains("all 252 users shown"),
        "{last}"
    );
}

/// A new key printed into a closed pipe was lost without a word (exit 0): nobody saw
/// its secret. Now the command fails, naming the stored key's id so it can be revoked,
/// and still never prints the secret elsewhere.
#[test]
fn a_new_key_that_could_not_be_shown_is_reported() {
    let p = Project::sqlite();
    p.json(&["migrate"]);
    p.json(&["users", "add", "ada"]);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("keyroute"))
        .args(["keys", "issue", "--user", "ada", "--env", "test"])
        .current_dir(p.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // `| head -c 0`: closed before anything is written
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("could be shown"), "{stderr}");
    assert!(!stderr.contains("sk_test_"), "{stderr}");
    let listed = p.json(&["keys", "list", "--user", "ada", "--env", "test"]);
    let issued = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| stderr.contains(k["id"].as_str().unwrap()))
        .count();
    assert_eq!(issued, 1, "the lost key is named by its id: {stderr}");
}
