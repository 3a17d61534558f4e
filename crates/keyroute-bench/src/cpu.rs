//! CPU time over a mode's measured window, from `/proc`: the server process's, the
//! client process's, and the whole machine's (busy, idle, and stolen by the
//! hypervisor), so each mode's cost per request can be read beside its throughput.
//!
//! Why: a throughput ratio says that one mode served fewer requests than another,
//! not where its time went or whether the host took it. These figures split each
//! request's cost between the server, the rest of the machine (the database) and the
//! load generator, and show the cores' time stolen by the hypervisor and left idle:
//! when a mode keeps every core busy its throughput is the machine's CPU divided by
//! that cost, and a mode that leaves cores idle is waiting on something else.
//!
//! The client samples at the start and at the end of its measured window
//! ([`Clock::now`]), so the figures cover the same window as the requests counted.
//! "Rest" is the machine's busy time less the server's and the client's: the
//! database (PostgreSQL's and MariaDB's processes in their containers), the kernel's
//! network work not charged to a process (soft interrupts), and anything else the
//! machine ran. Outside Linux (no `/proc`) nothing is measured and every figure is
//! `None`.

use serde::{Deserialize, Serialize};

/// CPU counters at one moment, in clock ticks (`USER_HZ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The server process's user + system time, all threads.
    server: u64,
    /// The client process's (this process's) user + system time.
    client: u64,
    /// The machine's counters from `/proc/stat`.
    machine: Machine,
}

/// The machine-wide counters of `/proc/stat`'s `cpu` line, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Machine {
    /// user + nice + system + irq + softirq (guest time is already in user).
    busy: u64,
    /// idle + iowait.
    idle: u64,
    /// Time the hypervisor ran something else while this machine wanted the CPU.
    steal: u64,
}

/// Reads the counters of this moment for the server process `server` (a pid) and this
/// process.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    server: u32,
}

impl Clock {
    /// A clock for the server process `server`.
    pub fn new(server: u32) -> Self {
        Self { server }
    }

    /// The counters now; `None` where `/proc` cannot be read.
    pub fn now(self) -> Option<Snapshot> {
        let server = process_ticks(&read(&format!("/proc/{}/stat", self.server))?)?;
        let client = process_ticks(&read("/proc/self/stat")?)?;
        let machine = machine_ticks(&read("/proc/stat")?)?;
        Some(Snapshot {
            server,
            client,
            machine,
        })
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// What the machine spent between two snapshots, in microseconds: what the client
/// sends back with its result, divided per request by the report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CpuWindow {
    /// The server process's CPU time.
    pub server_us: f64,
    /// The client process's CPU time.
    pub client_us: f64,
    /// Every other busy CPU time on the machine (see the module docs).
    pub rest_us: f64,
    /// Idle time, summed over the cores.
    pub idle_us: f64,
    /// Time stolen by the hypervisor, summed over the cores.
    pub steal_us: f64,
}

impl CpuWindow {
    /// The time between `start` and `end`; `None` when a counter went backwards (a
    /// process that is not the one sampled first).
    pub fn between(start: Snapshot, end: Snapshot) -> Option<Self> {
        let micros = |ticks: u64| ticks as f64 * 1e6 / ticks_per_second();
        let server = end.server.checked_sub(start.server)?;
        let client = end.client.checked_sub(start.client)?;
        let busy = end.machine.busy.checked_sub(start.machine.busy)?;
        Some(Self {
            server_us: micros(server),
            client_us: micros(client),
            // A process's ticks are rounded on their own, so the rest can come out a
            // tick or two below zero on an otherwise idle machine.
            rest_us: micros(busy.saturating_sub(server.saturating_add(client))),
            idle_us: micros(end.machine.idle.checked_sub(start.machine.idle)?),
            steal_us: micros(end.machine.steal.checked_sub(start.machine.steal)?),
        })
    }

    /// This window's figures per request, for `requests` served in it; `None` for none.
    pub fn per_request(&self, requests: u64) -> Option<CpuPerRequest> {
        if requests == 0 {
            return None;
        }
        let n = requests as f64;
        let all = self.server_us + self.client_us + self.rest_us + self.idle_us + self.steal_us;
        let share = |us: f64| if all > 0.0 { us / all } else { 0.0 };
        Some(CpuPerRequest {
            server_us: self.server_us / n,
            client_us: self.client_us / n,
            rest_us: self.rest_us / n,
            idle: share(self.idle_us),
            steal: share(self.steal_us),
        })
    }
}

/// A mode's CPU cost per request in one window.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CpuPerRequest {
    /// The server process's microseconds per request.
    pub server_us: f64,
    /// The client process's microseconds per request.
    pub client_us: f64,
    /// The rest of the machine's busy microseconds per request (the database, the
    /// kernel's network work).
    pub rest_us: f64,
    /// The share of the cores' time left idle in the window (0-1).
    pub idle: f64,
    /// The share stolen by the hypervisor (0-1).
    pub steal: f64,
}

impl CpuPerRequest {
    /// What serving one request cost the machine: the server's time and the rest's,
    /// without the load generator's own.
    pub fn serving_us(&self) -> f64 {
        self.server_us + self.rest_us
    }

    /// `cpu/req 52.1 us (server 40.3, rest 11.8; client 12.0), idle 2 %, steal 1 %`.
    pub fn describe(&self) -> String {
        self.describe_serving(self.serving_us())
    }

    /// As [`describe`](Self::describe), with `serving_us` as the first figure: for
    /// medians taken part by part, whose parts need not add up to the median served.
    pub(crate) fn describe_serving(&self, serving_us: f64) -> String {
        format!(
            "cpu/req {:.1} us (server {:.1}, rest {:.1}; client {:.1}), idle {:.0} %, steal {:.0} %",
            serving_us,
            self.server_us,
            self.rest_us,
            self.client_us,
            self.idle * 100.0,
            self.steal * 100.0
        )
    }
}

/// Clock ticks per second, the unit of `/proc`'s CPU times.
fn ticks_per_second() -> f64 {
    #[cfg(target_os = "linux")]
    {
        rustix::param::clock_ticks_per_second() as f64
    }
    #[cfg(not(target_os = "linux"))]
    {
        100.0
    }
}

/// utime + stime of a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces and parentheses itself, so fields are counted
/// after its last `)`: utime and stime are fields 14 and 15, the 12th and 13th there.
fn process_ticks(stat: &str) -> Option<u64> {
    let (_, after) = stat.rsplit_once(')')?;
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

/// The machine's counters from `/proc/stat`'s first (`cpu`) line:
/// `cpu user nice system idle iowait irq softirq steal guest guest_nice`.
fn machine_ticks(stat: &str) -> Option<Machine> {
    let line = stat.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = values[..] else {
        return None;
    };
    let sum = |parts: &[u64]| {
        parts
            .iter()
            .try_fold(0u64, |total, &part| total.checked_add(part))
    };
    Some(Machine {
        busy: sum(&[user, nice, system, irq, softirq])?,
        idle: sum(&[idle, iowait])?,
        steal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// utime and stime are found after the command name, whatever it holds.
    #[test]
    fn process_stat_lines_parse() {
        let line = "4242 (keyroute-bench) S 1 4242 4242 0 -1 4194560 2000 0 0 0 731 208 0 0 20 0 9 0 100 0";
        assert_eq!(process_ticks(line), Some(939));
        let odd = "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 0";
        assert_eq!(process_ticks(odd), Some(11));
        assert_eq!(process_ticks("7 (short) R 1 2"), None);
        assert_eq!(process_ticks("no parenthesis at all"), None);
    }

    /// The machine line splits into busy, idle and steal; other lines are refused.
    #[test]
    fn machine_stat_lines_parse() {
        let text = "cpu  100 5 50 1000 20 3 7 9 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(
            machine_ticks(text),
            Some(Machine {
                busy: 165,
                idle: 1020,
                steal: 9
            })
        );
        assert_eq!(machine_ticks("cpu0 1 2 3 4 5 6 7 8\n"), None);
        assert_eq!(machine_ticks("cpu 1 2 3\n"), None);
        assert_eq!(machine_ticks("cpu 1 2 x 4 5 6 7 8\n"), None);
        assert_eq!(
            machine_ticks(&format!("cpu {} 1 0 0 0 0 0 0\n", u64::MAX)),
            None
        );
    }

    /// A window's figures per request, and its idle and steal shares of the cores'
    /// time; a window with no requests has none.
    #[test]
    fn windows_divide_per_request() {
        let at = |server, client, busy, idle, steal| Snapshot {
            server,
            client,
            machine: Machine { busy, idle, steal },
        };
        let window = CpuWindow::between(at(10, 5, 100, 50, 0), at(110, 25, 260, 80, 10)).unwrap();
        let tick = 1e6 / ticks_per_second();
        assert_eq!(window.server_us, 100.0 * tick);
        assert_eq!(window.client_us, 20.0 * tick);
        assert_eq!(window.rest_us, 40.0 * tick);
        let per = window.per_request(10).unwrap();
        assert_eq!(per.server_us, 10.0 * tick);
        assert_eq!(per.serving_us(), 14.0 * tick);
        assert!((per.idle - 30.0 / 200.0).abs() < 1e-12);
        assert!((per.steal - 10.0 / 200.0).abs() < 1e-12);
        assert!(window.per_request(0).is_none());
        assert!(CpuWindow::between(at(110, 5, 100, 50, 0), at(10, 5, 100, 50, 0)).is_none());
    }

    /// On Linux this process can read its own counters, and they move with work: the
    /// loop spins until five ticks of CPU time have passed (at most 30 s, however
    /// busy the machine), and the window says so.
    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_measured() {
        let clock = Clock::new(std::process::id());
        let start = clock.now().unwrap();
        let began = std::time::Instant::now();
        let mut x = 1u64;
        let end = loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
            let now = clock.now().unwrap();
            if now.client >= start.client + 5 || began.elapsed().as_secs() >= 30 {
                break now;
            }
        };
        let window = CpuWindow::between(start, end).unwrap();
        let tick = 1e6 / ticks_per_second();
        assert!(window.client_us >= 5.0 * tick, "{window:?}");
        // The server's counter is read just before the client's: here the same
        // process, so at most a tick apart.
        assert!(
            (window.server_us - window.client_us).abs() <= tick,
            "{window:?}"
        );
    }
}
