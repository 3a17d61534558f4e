//! The containers a test binary starts are removed when it exits: a child process
//! starts an app on PostgreSQL and MariaDB, the parent sees its containers running,
//! lets the child end, and sees them gone. Uses the `docker` command, which
//! `bash scripts/test` installs with the engine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use keyroute::store::{Mysql, Postgres};
use keyroute_testing::TestApp;

/// Starts both servers through apps, says so, and waits for the parent's word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by `containers_are_removed_when_the_binary_exits` in a child process"]
async fn child_starts_containers() {
    let _pg = TestApp::<Postgres>::builder().build().await.unwrap();
    let _maria = TestApp::<Mysql>::builder().build().await.unwrap();
    println!("READY");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
}

/// The containers labelled with `pid`, running or not.
fn containers_of(pid: u32) -> Vec<String> {
    let output = Command::new("docker")
        .args([
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=org.keyroute.harness.pid={pid}"),
        ])
        .output()
        .expect("the docker command (bash scripts/test installs it with the engine)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn containers_are_removed_when_the_binary_exits() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_starts_containers",
            "--nocapture",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ready = false;
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if line.contains("READY") {
            ready = true;
            break;
        }
        line.clear();
    }
    assert!(ready, "the child never started its apps");
    assert_eq!(
        containers_of(pid).len(),
        2,
        "the child runs one PostgreSQL and one MariaDB container"
    );
    child.stdin.take().unwrap().write_all(b"done\n").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the child failed: {status}");
    assert_eq!(
        containers_of(pid),
        Vec::<String>::new(),
        "the exit hook removed them"
    );
}
