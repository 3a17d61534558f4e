//! Where the server and the load generator's process run, and how many threads the
//! server holds.
//!
//! With at least [`MIN_CORES_TO_PIN`] usable cores and `taskset` installed, the
//! benchmark pins itself (the server) to the first half of the cores it may use and
//! starts the client on the other half, so neither takes cycles from the other. On
//! fewer cores pinning would leave each side a single core, so nothing is pinned and
//! the report says so.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The fewest usable cores at which server and client are pinned apart.
pub const MIN_CORES_TO_PIN: usize = 4;

/// Where the server and the client run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Placement {
    /// The cores the server (this process) may use.
    pub server_cores: Vec<usize>,
    /// The cores the client process may use.
    pub client_cores: Vec<usize>,
    /// The client's runtime threads: one per core when pinned, one otherwise.
    pub client_threads: usize,
    /// `taskset`, when the two are pinned apart.
    pub taskset: Option<PathBuf>,
    /// Why they are not pinned apart, when they are not.
    pub unpinned_because: Option<String>,
}

impl Placement {
    /// Nothing pinned: server and client share every core this process may use, and
    /// the client runs on one thread (one core's share at most).
    pub fn shared() -> Self {
        Self::unpinned(allowed_cores(), "not asked to pin (--no-pin, or a test)")
    }

    fn unpinned(cores: Vec<usize>, why: impl Into<String>) -> Self {
        Self {
            server_cores: cores.clone(),
            client_cores: cores,
            client_threads: 1,
            taskset: None,
            unpinned_because: Some(why.into()),
        }
    }

    /// Pins this process to the first half of its cores and keeps the rest for the
    /// client, when the machine allows (see [`split`]); otherwise [`Placement::shared`]
    /// with the reason. Call it before starting the server's runtime: threads started
    /// afterwards inherit the pinning, and the runtime sizes itself to the cores left.
    pub fn pin_apart() -> Self {
        let cores = allowed_cores();
        let Some((server, client)) = split(&cores) else {
            let why = format!(
                "{} usable cores, fewer than {MIN_CORES_TO_PIN}: pinning apart would leave each side too little",
                cores.len()
            );
            return Self::unpinned(cores, why);
        };
        let Some(taskset) = find_program("taskset") else {
            return Self::unpinned(cores, "taskset is not installed");
        };
        let pinned = std::process::Command::new(&taskset)
            .arg("-a")
            .arg("-p")
            .arg("-c")
            .arg(cpu_list(&server))
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        match pinned {
            Ok(output) if output.status.success() => Self {
                client_threads: client.len(),
                server_cores: server,
                client_cores: client,
                taskset: Some(taskset),
                unpinned_because: None,
            },
            Ok(output) => {
                let why = format!(
                    "taskset could not pin the server ({}: {})",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                Self::unpinned(cores, why)
            }
            Err(e) => Self::unpinned(cores, format!("taskset could not run: {e}")),
        }
    }

    /// Whether the server and the client are pinned apart.
    pub fn pinned(&self) -> bool {
        self.taskset.is_some()
    }

    /// One line for the report: how many cores each side had.
    pub fn describe(&self) -> String {
        match &self.unpinned_because {
            None => format!(
                "placement: server on cores {} ({} cores), client process on cores {} ({} cores, {} runtime threads); pinned apart with taskset",
                cpu_list(&self.server_cores),
                self.server_cores.len(),
                cpu_list(&self.client_cores),
                self.client_cores.len(),
                self.client_threads,
            ),
            Some(why) => format!(
                "placement: not pinned ({why}); server and client process share the same {} cores, the client on {} runtime thread(s)",
                self.server_cores.len(),
                self.client_threads,
            ),
        }
    }

    /// The command that starts `program` on the client's cores: through `taskset`
    /// when pinned, directly otherwise.
    pub(crate) fn client_command(&self, program: &Path) -> tokio::process::Command {
        match &self.taskset {
            Some(taskset) => {
                let mut command = tokio::process::Command::new(taskset);
                command
                    .arg("-c")
                    .arg(cpu_list(&self.client_cores))
                    .arg(program);
                command
            }
            None => tokio::process::Command::new(program),
        }
    }
}

/// The server's and the client's halves of `cores`: the first half (rounded down)
/// for the server, the rest for the client; `None` below [`MIN_CORES_TO_PIN`].
pub fn split(cores: &[usize]) -> Option<(Vec<usize>, Vec<usize>)> {
    if cores.len() < MIN_CORES_TO_PIN {
        return None;
    }
    let (server, client) = cores.split_at(cores.len() / 2);
    Some((server.to_vec(), client.to_vec()))
}

/// The cores this process may run on (`Cpus_allowed_list` in `/proc/self/status`);
/// `0..available_parallelism` where that cannot be read.
pub fn allowed_cores() -> Vec<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| status_field(&status, "Cpus_allowed_list:").and_then(parse_cpu_list))
        .filter(|cores| !cores.is_empty())
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, usize::from);
            (0..n).collect()
        })
}

/// The number of threads this process runs (`Threads:` in `/proc/self/status`).
pub fn process_threads() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status_field(&status, "Threads:")?.parse().ok()
}

fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .map(str::trim)
}

/// The most cores a list may name: more is a misread, not a machine.
const MAX_CORES: usize = 1 << 16;

/// A Linux CPU list (`0-3,6,8-9`) as core numbers, in order; `None` when malformed.
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cores = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>().ok()?, b.trim().parse().ok()?),
            None => {
                let core = part.trim().parse().ok()?;
                (core, core)
            }
        };
        if first > last || last >= MAX_CORES {
            return None;
        }
        cores.extend(first..=last);
    }
    cores.sort_unstable();
    cores.dedup();
    Some(cores)
}

/// Core numbers as a list `taskset -c` takes (`0,1,2`).
fn cpu_list(cores: &[usize]) -> String {
    cores
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `name` on the `PATH`, if it is there.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU lists as the kernel writes them, ranges and singles, and malformed ones refused.
    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-3"), Some(vec![0, 1, 2, 3]));
        assert_eq!(parse_cpu_list("0,2,4-5\n"), Some(vec![0, 2, 4, 5]));
        assert_eq!(parse_cpu_list("7"), Some(vec![7]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("a-b"), None);
        assert_eq!(parse_cpu_list("0-99999999"), None);
    }

    /// Four or more cores split in halves, the server first; fewer are not split.
    #[test]
    fn cores_split_in_halves_from_four() {
        assert_eq!(split(&[0, 1, 2]), None);
        assert_eq!(split(&[0, 1]), None);
        assert_eq!(split(&[0, 1, 2, 3]), Some((vec![0, 1], vec![2, 3])));
        assert_eq!(split(&[4, 5, 6, 7, 8]), Some((vec![4, 5], vec![6, 7, 8])));
    }

    /// An unpinned placement says why and gives the client one thread.
    #[test]
    fn unpinned_says_why() {
        let placement = Placement::unpinned(vec![0, 1], "2 usable cores");
        assert!(!placement.pinned());
        assert_eq!(placement.client_threads, 1);
        let line = placement.describe();
        assert!(line.contains("not pinned (2 usable cores)"), "{line}");
        assert!(line.contains("same 2 cores"), "{line}");
    }

    /// This process's thread count is readable (Linux), and at least the test's own thread.
    #[test]
    fn threads_are_counted() {
        assert!(process_threads().is_some_and(|n| n >= 1));
    }
}
