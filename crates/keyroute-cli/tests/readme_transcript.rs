//! The crate README's session transcript, run for real.

mod common;

use common::Project;

/// Every `$ keyroute ...` command of the crate README's transcript prints the lines the
/// README shows (lines with `<...>` placeholders are not compared).
#[test]
fn readme_transcript_is_reproduced() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- cli-transcript -->")
        .expect("the crate README has the transcript marker");
    let block = &readme[start..];
    let block = &block[block.find("```console\n").unwrap() + 11..];
    let block = &block[..block.find("```").unwrap()];

    let p = Project::with_toml("[connections]\nlive = \"live.db\"\ntest = \"test.db\"\n");
    p.add_migration(
        "2026-01-01-000000_orders",
        "CREATE TABLE orders (id TEXT PRIMARY KEY);",
        "DROP TABLE orders;",
    );
    let mut commands: Vec<(String, Vec<String>)> = Vec::new();
    for line in block.lines() {
        match line.strip_prefix("$ ") {
            Some(command) => commands.push((command.to_owned(), Vec::new())),
            None => commands.last_mut().unwrap().1.push(line.to_owned()),
        }
    }
    let mut test_key = String::new();
    for (command, expected) in commands {
        let Some(args) = command.strip_prefix("keyroute ") else {
            continue;
        };
        let (args, stdin) = match args.split_once(" < ") {
            Some((args, _file)) => (args, test_key.clone()),
            None => (args, String::new()),
        };
        let args: Vec<&str> = args.split_whitespace().collect();
        let output = p.keyroute(&args).write_stdin(stdin).output().unwrap();
        assert!(
            output.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        if let Some(key) = stdout
            .split_whitespace()
            .find(|w| w.starts_with("sk_test_"))
        {
            test_key = key.to_owned();
        }
        let actual: Vec<&str> = stdout.lines().map(str::trim_end).collect();
        for line in expected.iter().filter(|l| !l.contains('<')) {
            assert!(
                actual.contains(&line.trim_end()),
                "{command}: missing line {line:?} in:\n{stdout}"
            );
        }
    }
}
