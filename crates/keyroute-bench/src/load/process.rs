//! The load generator as a process of its own: the server's side starts it
//! (`run_child`) and the child's side runs it ([`client_main`]).
//!
//! The child is the benchmark binary itself with the hidden `client` subcommand and
//! [`ClientArgs`] on its command line. The keys are secrets, so they never go on the
//! command line (which `ps` shows to every user) or in the environment: the parent
//! writes them to the child's stdin, one per line, and closes it. The child answers
//! with its [`LoadResult`] as one line of JSON on stdout; failures go to its stderr,
//! which the parent puts in its error. Neither ever prints a key.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use tokio::io::AsyncWriteExt;

use super::{LoadPlan, LoadResult, generate};
use crate::{BenchError, Mode, Placement};

/// How long past its warm-up and measured window a client may take to answer
/// (connecting, closing, writing its result) before it is killed.
const GRACE: Duration = Duration::from_secs(60);

/// What the client process is told on its command line: everything but the keys.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[non_exhaustive]
pub struct ClientArgs {
    /// The server's address.
    #[arg(long)]
    pub addr: SocketAddr,
    /// The mode whose path every request takes.
    #[arg(long, value_parser = parse_mode)]
    pub mode: Mode,
    /// Orders 1..=N exist; each request reads one at random.
    #[arg(long)]
    pub orders: u64,
    /// Keep-alive connections, one task each.
    #[arg(long)]
    pub connections: usize,
    /// Unmeasured load first.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Then the measured window.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// The client's runtime threads (1: a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// The server's process id: its CPU time over the measured window is read from
    /// `/proc` (see [`crate::cpu`]); without it no CPU figures are measured.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// A priming run: each key once, then stop (see [`LoadPlan::priming`]).
    #[arg(long)]
    pub prime: bool,
}

fn parse_mode(name: &str) -> Result<Mode, String> {
    Mode::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Mode::ALL.iter().map(|m| m.name()).collect();
        format!("no mode {name:?}; one of {}", names.join(", "))
    })
}

impl ClientArgs {
    /// The arguments of `plan`, for its client, started by the server's process (this
    /// one, whose CPU time the client then measures).
    pub fn of(plan: &LoadPlan) -> Self {
        Self {
            addr: plan.addr,
            mode: plan.mode,
            orders: plan.orders,
            connections: plan.connections,
            warmup: plan.warmup,
            duration: plan.duration,
            threads: plan.placement.client_threads.max(1),
            server_pid: Some(std::process::id()),
            prime: plan.prime,
        }
    }

    /// The command line after `client`, as the child parses it back.
    pub fn to_argv(&self) -> Vec<String> {
        let mut argv = vec![
            "--addr".into(),
            self.addr.to_string(),
            "--mode".into(),
            self.mode.name().into(),
            "--orders".into(),
            self.orders.to_string(),
            "--connections".into(),
            self.connections.to_string(),
            "--warmup".into(),
            humantime::format_duration(self.warmup).to_string(),
            "--duration".into(),
            humantime::format_duration(self.duration).to_string(),
            "--threads".into(),
            self.threads.to_string(),
        ];
        if let Some(pid) = self.server_pid {
            argv.extend(["--server-pid".into(), pid.to_string()]);
        }
        if self.prime {
            argv.push("--prime".into());
        }
        argv
    }
}

/// The client process's whole life: reads the keys from `keys` (one per line, until
/// its end), runs the load `args` describe on a runtime of `args.threads` threads, and
/// writes the [`LoadResult`] to `out` as one line of JSON.
///
/// # Errors
/// [`BenchError::Load`] when the keys cannot be read or are not header values (the
/// line is named, never its content), the runtime cannot start, or the load run
/// fails; [`BenchError::Output`] when `out` cannot be written.
pub fn client_main(
    args: &ClientArgs,
    keys: impl BufRead,
    mut out: impl Write,
) -> Result<(), BenchError> {
    let keys = read_keys(keys)?;
    let plan = LoadPlan {
        addr: args.addr,
        mode: args.mode,
        keys: Arc::new(keys),
        orders: args.orders,
        connections: args.connections,
        warmup: args.warmup,
        duration: args.duration,
        program: None,
        placement: Placement::shared(),
        prime: args.prime,
    };
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| BenchError::Load(format!("cannot start the client runtime: {e}")))?;
    let result = runtime.block_on(generate(plan, args.server_pid))?;
    let line = serde_json::to_string(&result)
        .map_err(|e| BenchError::Load(format!("cannot write the result as JSON: {e}")))?;
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// The keys on the client's stdin, one per line, each marked sensitive.
fn read_keys(input: impl BufRead) -> Result<Vec<HeaderValue>, BenchError> {
    let mut keys = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let line = line.map_err(|e| BenchError::Load(format!("reading keys from stdin: {e}")))?;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let mut key = HeaderValue::from_str(line).map_err(|_| {
            BenchError::Load(format!(
                "line {} of stdin is not a valid X-Api-Key header value",
                index.saturating_add(1)
            ))
        })?;
        key.set_sensitive(true);
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(BenchError::Load(
            "no keys on stdin: the client reads one key per line".into(),
        ));
    }
    Ok(keys)
}

/// Starts `plan`'s client process, hands it the keys on stdin and reads its result.
pub(super) async fn run_child(plan: &LoadPlan) -> Result<LoadResult, BenchError> {
    let fail = |what: String| BenchError::Load(what);
    let program = match &plan.program {
        Some(program) => program.clone(),
        None => std::env::current_exe()
            .map_err(|e| fail(format!("cannot find this program to start the client: {e}")))?,
    };
    let mut command = plan.placement.client_command(&program);
    command
        .arg("client")
        .args(ClientArgs::of(plan).to_argv())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| {
        fail(format!(
            "cannot start the client process {}: {e}",
            program.display()
        ))
    })?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| fail("the client process has no stdin".into()))?;
    let mut lines = Vec::with_capacity(plan.keys.len().saturating_mul(64));
    for key in plan.keys.iter() {
        lines.extend_from_slice(key.as_bytes());
        lines.push(b'\n');
    }
    let written = stdin.write_all(&lines).await;
    drop(stdin); // end of the keys
    drop(lines);
    let limit = plan
        .warmup
        .saturating_add(plan.duration)
        .saturating_add(GRACE);
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .map_err(|_| {
            fail(format!(
                "the client process did not answer within {limit:?}; it was stopped"
            ))
        })?
        .map_err(|e| fail(format!("waiting for the client process: {e}")))?;
    if !output.status.success() {
        return Err(fail(format!(
            "the client process failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    written.map_err(|e| fail(format!("writing the keys to the client's stdin: {e}")))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.trim();
    serde_json::from_str(line).map_err(|e| {
        let start: String = line.chars().take(200).collect();
        fail(format!(
            "the client process's answer is not its JSON result ({e}): {start:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ClientArgs {
        ClientArgs {
            addr: "127.0.0.1:8080".parse().unwrap(),
            mode: Mode::NaivePlain,
            orders: 100,
            connections: 16,
            warmup: Duration::from_millis(1500),
            duration: Duration::from_secs(2),
            threads: 2,
            server_pid: Some(4242),
            prime: false,
        }
    }

    /// The command line the parent writes is the one the child parses back.
    #[test]
    fn argv_round_trips() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ClientArgs,
        }
        let argv = std::iter::once("client".to_owned()).chain(args().to_argv());
        let parsed = <Cli as clap::Parser>::try_parse_from(argv).unwrap();
        assert_eq!(parsed.args, args());
        let without = ClientArgs {
            server_pid: None,
            prime: true,
            ..args()
        };
        let argv = std::iter::once("client".to_owned()).chain(without.to_argv());
        let parsed = <Cli as clap::Parser>::try_parse_from(argv).unwrap();
        assert_eq!(parsed.args, without);
    }

    /// Keys are read one per line (blank lines and CRs ignored) and marked sensitive.
    #[test]
    fn keys_are_read_per_line() {
        let keys = read_keys("sk_live_a\r\n\nsk_test_b\n".as_bytes()).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].as_bytes(), b"sk_test_b");
        assert!(keys.iter().all(HeaderValue::is_sensitive));
    }

    /// A line that is not a header value is refused by number, its content never
    /// repeated; no keys at all is refused too.
    #[test]
    fn bad_keys_are_named_by_line_only() {
        let error = read_keys("sk_live_ok\nsk_live_\u{1}secret\n".as_bytes()).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("line 2 of stdin"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert!(read_keys("\n".as_bytes()).is_err());
    }
}
