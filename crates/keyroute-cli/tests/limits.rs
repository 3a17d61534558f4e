//! Rate limits and credits from the command line: `keys issue --limit/--credits/--refill`
//! and `keys update --limit/--no-limits/--credits/--unmetered`, shown by `keys show`;
//! a bad value is one error line naming its flag, with nothing applied.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Project, one_error_line};

#[test]
fn limits_and_credits_are_set_shown_and_removed() {
    let p = Project::sqlite();
    p.json(&["users", "add", "ada"]);
    let issued = p.json(&[
        "keys",
        "issue",
        "--user",
        "ada",
        "--env",
        "test",
        "--limit",
        "requests=100/1m,burst=20",
        "--limit",
        "team=1000/1h,per=user",
        "--credits",
        "500",
        "--refill",
        "500/daily",
    ]);
    let key = &issued["keys"][0];
    let id = key["id"].as_str().unwrap().to_owned();
    assert_eq!(
        key["limits"],
        serde_json::json!([
            {"name":"requests","limit":100,"window":"1m","burst":20,"per":"key"},
            {"name":"team","limit":1000,"window":"1h","burst":1000,"per":"user"}
        ])
    );
    assert_eq!(key["credits"]["remaining"], 500);
    assert_eq!(key["credits"]["refill"], "500/daily");
    assert!(key["credits"]["next_refill_at"].is_string(), "{key}");
    let shown = p.json(&["keys", "show", &id]);
    assert_eq!(shown["limits"], key["limits"]);

    let updated = p.json(&[
        "keys",
        "update",
        &id,
        "--limit",
        "requests=10/1s",
        "--credits",
        "7",
    ]);
    assert_eq!(updated["changed"], serde_json::json!(["limits", "credits"]));
    assert_eq!(updated["limits"][0]["limit"], 10);
    assert_eq!(updated["credits"]["remaining"], 7);
    let cleared = p.json(&["keys", "update", &id, "--no-limits", "--unmetered"]);
    assert_eq!(cleared["limits"], serde_json::json!([]));
    assert_eq!(cleared["credits"], serde_json::Value::Null);
}

#[test]
fn bad_limits_are_one_error_naming_the_flag() {
    let p = Project::sqlite();
    let (id, _) = p.user_with_test_key("ada");
    let before = p.json(&["keys", "show", &id]);
    for (args, says) in [
        (vec!["--limit", "requests"], "--limit"),
        (vec!["--limit", "requests=0/1m"], "--limit"),
        (vec!["--limit", "requests=5/1m,per=planet"], "--limit"),
        (vec!["--limit", "Requests=5/1m"], "--limit"),
        (vec!["--credits", "5", "--refill", "5/yearly"], "--refill"),
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
    // A refill needs a balance, and credits cannot be set and removed at once.
    for args in [
        vec!["--refill", "5/daily"],
        vec!["--credits", "5", "--unmetered"],
    ] {
        let mut all = vec!["keys", "update", id.as_str()];
        all.extend(args.iter().copied());
        assert_eq!(
            p.keyroute(&all).output().unwrap().status.code(),
            Some(2),
            "{args:?}"
        );
    }
}
