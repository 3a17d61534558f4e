//! Round trips and statements per request on the routed connection, as the counted
//! run after the rounds measured them (PostgreSQL; `service/counted.rs`).

use std::io::{self, Write};

use crate::Mode;
use crate::service::Tally;

/// The round trip that ends a tenancy unit: the `COMMIT` of the connection the
/// handler dropped, sent on a task of its own after the response.
const COMMIT: &str = "simple query: COMMIT";

/// What one mode's requests cost on their routed connections, counted on the wire:
/// what the relay counted while they were served, and how many were.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoundTrips {
    /// Requests served while counting.
    pub requests: u64,
    /// What the relay counted meanwhile.
    pub tally: Tally,
}

impl RoundTrips {
    /// `tally`, counted while `requests` requests were served.
    pub fn new(requests: u64, tally: Tally) -> Self {
        Self { requests, tally }
    }

    fn per(&self, n: u64) -> f64 {
        if self.requests == 0 {
            f64::NAN
        } else {
            n as f64 / self.requests as f64
        }
    }

    /// Round trips per request (the server's `ReadyForQuery` messages).
    pub fn per_request(&self) -> f64 {
        self.per(self.tally.answered())
    }

    /// Round trips per request that the request waits on: all but the `COMMIT` a
    /// tenancy unit ends with after the response.
    pub fn awaited_per_request(&self) -> f64 {
        let after = self.tally.round_trips.get(COMMIT).copied().unwrap_or(0);
        self.per(self.tally.answered().saturating_sub(after))
    }

    /// Statements per request (the server's `CommandComplete` messages).
    pub fn statements_per_request(&self) -> f64 {
        self.per(self.tally.statements_run())
    }

    /// `per request: 3.00 round trips, 2.00 awaited by the request (statements
    /// 7.00: BEGIN 1.00, ...)`.
    pub fn summary(&self) -> String {
        let statements: Vec<String> = self
            .tally
            .statements
            .iter()
            .map(|(tag, n)| format!("{tag} {:.2}", self.per(*n)))
            .collect();
        format!(
            "per request: {:.2} round trips, {:.2} awaited by the request (statements {:.2}: {})",
            self.per_request(),
            self.awaited_per_request(),
            self.statements_per_request(),
            statements.join(", ")
        )
    }

    /// Each kind of round trip per request, most frequent first, with what it is,
    /// then the raw counts; one line each.
    pub fn details(&self) -> Vec<String> {
        let mut kinds: Vec<(&String, &u64)> = self.tally.round_trips.iter().collect();
        kinds.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
        let mut lines: Vec<String> = kinds
            .into_iter()
            .map(|(label, n)| format!("{:.2} x {label}{}", self.per(*n), note(label)))
            .collect();
        let t = &self.tally;
        lines.push(format!(
            "{} requests; {} round trips sent, {} answered; {} errors; {} connections opened{}",
            self.requests,
            t.sent,
            t.answered(),
            t.errors,
            t.connections,
            if t.opaque > 0 {
                format!("; {} encrypted, not read", t.opaque)
            } else {
                String::new()
            }
        ));
        lines
    }
}

/// What a kind of round trip is, where that is not plain from its label.
fn note(label: &str) -> &'static str {
    if label == COMMIT {
        " (the unit's end: the handler dropped its connection, committed on a task of its own after the response)"
    } else if label.starts_with("simple query: SET; BEGIN") {
        " (the unit's begin with the tenant bound, one round trip, in place of the checkout's SELECT 1)"
    } else if label == "prepared statement: SELECT $1" {
        " (the pool's checkout check)"
    } else {
        ""
    }
}

/// Writes each counted mode's round trips per request, with a header saying how
/// they were counted; nothing when none were.
///
/// # Errors
/// When `out` cannot be written.
pub(super) fn write(
    backend: &str,
    rows: &[(Mode, RoundTrips)],
    out: &mut dyn Write,
) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "{backend}: round trips per request on the routed connection (a separate run after the rounds, through a relay that reads PostgreSQL's protocol: one ReadyForQuery per round trip, one CommandComplete per statement; the key store's own queries are not on this connection)"
    )?;
    for (mode, trips) in rows {
        writeln!(out, "  {:<18} {}", mode.name(), trips.summary())?;
        for line in trips.details() {
            writeln!(out, "      {line}")?;
        }
    }
    Ok(())
}
