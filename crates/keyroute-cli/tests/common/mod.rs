//! A scratch directory with a keyroute.toml on two SQLite files, and the command run in it.

// Each test file uses a different part; set-up that fails is a broken test machine, so it
// unwraps as the tests themselves may (clippy.toml allows it inside #[test] only).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A scratch project: `keyroute.toml`, `live.db`, `test.db` and an app migrations dir.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// Two SQLite connections, `live` and `test`; the key store on `live`.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            "[connections]\nlive = \"{0}/live.db\"\ntest = \"{0}/test.db\"\n",
            dir.path().display()
        );
        std::fs::write(dir.path().join("keyroute.toml"), toml).unwrap();
        let project = Self { dir };
        project.add_migration(
            "2026-01-01-000000_orders",
            "CREATE TABLE orders (id TEXT PRIMARY KEY);",
            "DROP TABLE orders;",
        );
        project
    }

    /// A project whose keyroute.toml is `toml`.
    pub fn with_toml(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keyroute.toml"), toml).unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The app's migrations directory.
    pub fn app_dir(&self) -> PathBuf {
        self.path().join("app-migrations")
    }

    /// Adds one diesel migration to the app's directory.
    pub fn add_migration(&self, name: &str, up: &str, down: &str) {
        let dir = self.app_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("up.sql"), up).unwrap();
        std::fs::write(dir.join("down.sql"), down).unwrap();
    }

    /// `keyroute ARGS` run in the project directory, with no KEYROUTE_* variables
    /// from the caller's environment.
    pub fn keyroute(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("keyroute").unwrap();
        for (key, _) in std::env::vars() {
            if key.starts_with("KEYROUTE_") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.path()).args(args);
        cmd
    }

    /// Runs `keyroute ARGS --json`, expects success, and parses its last stdout line.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.keyroute(&all).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "keyroute {args:?} failed: {stderr}"
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
    }
}

impl Project {
    /// Runs `keyroute ARGS --json` with `input` on stdin, expects success, parses stdout.
    pub fn json_stdin(&self, args: &[&str], input: &str) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self
            .keyroute(&all)
            .write_stdin(input.to_owned())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
    }
}

/// stderr of a failed run: exactly one line starting `error: `.
pub fn one_error_line(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_owned()
}

impl Project {
    /// Two SQLite connections as [`Project::sqlite`], with `extra` appended to keyroute.toml.
    pub fn sqlite_with(extra: &str) -> Self {
        let project = Self::sqlite();
        let path = project.path().join("keyroute.toml");
        let mut toml = std::fs::read_to_string(&path).unwrap();
        toml.push_str(extra);
        std::fs::write(path, toml).unwrap();
        project
    }

    /// The live database file, which holds the key store.
    pub fn live_db(&self) -> PathBuf {
        self.path().join("live.db")
    }

    /// Registers `user` and returns the id and plaintext of their test key.
    pub fn user_with_test_key(&self, user: &str) -> (String, String) {
        let added = self.json(&["users", "add", user]);
        let key = added["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["environment"] == "test")
            .unwrap();
        (
            key["id"].as_str().unwrap().to_owned(),
            key["plaintext"].as_str().unwrap().to_owned(),
        )
    }

    /// Imports `n` users without keys, named `imported-00000`...
    pub fn import_users(&self, n: usize) {
        use keyroute::store::SqliteStore;
        use keyroute::store::UserStore;
        use keyroute::{User, UserId};
        let live = self.live_db();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let store = SqliteStore::connect(live.to_string_lossy().as_ref())
                .await
                .unwrap();
            let now = chrono::Utc::now();
            let users: Vec<User> = (0..n)
                .map(|i| User::new(UserId::random(), format!("imported-{i:05}"), now))
                .collect();
            store.import_users(&users).await.unwrap();
        });
    }

    /// Runs SQL on the key store's database, past every check keyroute makes.
    pub fn sql(&self, sql: &str) {
        use diesel_async::SimpleAsyncConnection;
        use keyroute::store::{DbPool, PoolSettings, Sqlite};
        let live = self.live_db();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let pool =
                DbPool::<Sqlite>::connect(live.to_string_lossy().as_ref(), PoolSettings::default())
                    .await
                    .unwrap();
            pool.get().await.unwrap().batch_execute(sql).await.unwrap();
        });
    }
}

/// stdout and stderr of a run, as text.
pub fn texts(output: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

impl Project {
    /// What `keyroute verify --json` says of `secret` (read from stdin): its JSON, or
    /// its stderr.
    pub fn verify(&self, secret: &str) -> Result<serde_json::Value, String> {
        let output = self
            .keyroute(&["verify", "--json"])
            .write_stdin(format!("{secret}\n"))
            .output()
            .unwrap();
        if output.status.success() {
            Ok(serde_json::from_slice(&output.stdout).unwrap())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}
