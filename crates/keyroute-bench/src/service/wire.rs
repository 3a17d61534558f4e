//! A counting relay in front of PostgreSQL: what a mode's routed connections ask the
//! server and what it answers, read off the wire protocol while every byte is passed
//! on unchanged.
//!
//! A round trip is one flight a client waits on: a simple `Query` message (however
//! many statements its text holds), or an extended-protocol exchange up to its `Sync`
//! (`Parse`/`Bind`/`Execute`...). The server ends each with exactly one
//! `ReadyForQuery`, so the relay counts round trips by the server's `ReadyForQuery`
//! messages, and statements by its `CommandComplete` messages (one per statement run,
//! named by their command tag: `BEGIN`, `SET`, `SELECT`, ...). Each round trip is
//! labelled with what it carried: a simple query by the tags of its statements, an
//! extended exchange by the SQL of the prepared statements it executed (their text
//! holds no values: parameters are bound apart). A connection's start-up (its first
//! `ReadyForQuery`, after authentication) is counted as a connection, not a round
//! trip.
//!
//! The relay is for a separate, counted measurement only: the measured modes connect
//! to PostgreSQL directly, never through it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `SSLRequest` and `GSSENCRequest`: start-up requests the server answers with one
/// untyped byte (`N`, or `S`/`G` to switch to encryption).
const ENCRYPTION_REQUESTS: [u32; 2] = [80_877_103, 80_877_104];

/// What the relay counted, in total since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tally {
    /// Round trips sent by clients (`Query` messages and `Sync`s).
    pub sent: u64,
    /// Round trips answered (`ReadyForQuery` after start-up), by what they carried.
    pub round_trips: BTreeMap<String, u64>,
    /// Statements completed (`CommandComplete`; `EmptyQueryResponse` as `(empty)`),
    /// by command tag without its row count.
    pub statements: BTreeMap<String, u64>,
    /// Error responses.
    pub errors: u64,
    /// Connections that completed their start-up.
    pub connections: u64,
    /// Connections that switched to TLS or GSS encryption, which the relay cannot read.
    pub opaque: u64,
}

impl Tally {
    /// What was counted between `earlier` and this tally.
    pub fn since(&self, earlier: &Tally) -> Tally {
        let diff = |now: &BTreeMap<String, u64>, then: &BTreeMap<String, u64>| {
            now.iter()
                .filter_map(|(name, &n)| {
                    let delta = n.saturating_sub(then.get(name).copied().unwrap_or(0));
                    (delta > 0).then(|| (name.clone(), delta))
                })
                .collect()
        };
        Tally {
            sent: self.sent.saturating_sub(earlier.sent),
            round_trips: diff(&self.round_trips, &earlier.round_trips),
            statements: diff(&self.statements, &earlier.statements),
            errors: self.errors.saturating_sub(earlier.errors),
            connections: self.connections.saturating_sub(earlier.connections),
            opaque: self.opaque.saturating_sub(earlier.opaque),
        }
    }

    /// Round trips answered, in all.
    pub fn answered(&self) -> u64 {
        self.round_trips.values().sum()
    }

    /// Statements completed, in all.
    pub fn statements_run(&self) -> u64 {
        self.statements.values().sum()
    }
}

/// A relay on `127.0.0.1` to one PostgreSQL server, counting as it passes bytes on.
#[derive(Debug)]
pub(super) struct WireRelay {
    addr: SocketAddr,
    tally: Arc<Mutex<Tally>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WireRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WireRelay {
    /// Listens on `127.0.0.1:0` and relays every connection to `upstream`
    /// (`host:port`).
    ///
    /// # Errors
    /// The listener's error, as text.
    pub(super) async fn start(upstream: String) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("binding the counting relay: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("reading the relay's address: {e}"))?;
        let tally = Arc::new(Mutex::new(Tally::default()));
        let counted = Arc::clone(&tally);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let tally = Arc::clone(&counted);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    // A failed connect closes the client's socket: its pool sees why.
                    if let Ok(server) = TcpStream::connect(upstream.as_str()).await {
                        relay(client, server, tally).await;
                    }
                });
            }
        });
        Ok(Self { addr, tally, task })
    }

    /// Where clients connect instead of the server.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counts so far.
    pub(super) fn tally(&self) -> Tally {
        self.tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Passes bytes both ways until either side closes, each direction read by its parser
/// before it is passed on (so a round trip is registered before its answer can come).
async fn relay(client: TcpStream, server: TcpStream, tally: Arc<Mutex<Tally>>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let conn = Arc::new(Mutex::new(Conn::default()));
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let mut from_client = Parser::new(Side::Client, Arc::clone(&conn), Arc::clone(&tally));
    let mut from_server = Parser::new(Side::Server, conn, tally);
    let up = async move {
        let mut buf = vec![0_u8; 16 * 1024];
        while let Ok(n) = client_read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            from_client.feed(&buf[..n]);
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0_u8; 16 * 1024];
        while let Ok(n) = server_read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            from_server.feed(&buf[..n]);
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// One connection's state, shared by its two parsers.
#[derive(Debug, Default)]
struct Conn {
    /// The client asked for encryption; the server's next byte is its untyped answer.
    encryption_asked: bool,
    /// Encrypted from here on: not parsed any more.
    opaque: bool,
    /// The server's first `ReadyForQuery` (end of start-up) was seen.
    started: bool,
    /// Prepared statements by name: their SQL.
    prepared: HashMap<String, String>,
    /// The statement the last `Bind` named.
    bound: String,
    /// The extended exchange being sent: SQL parsed and SQL executed so far.
    parsed: Vec<String>,
    executed: Vec<String>,
    /// Round trips sent and not yet answered.
    pending: VecDeque<Pending>,
    /// The command tags of the round trip being answered.
    tags: Vec<String>,
}

/// A round trip sent.
#[derive(Debug)]
enum Pending {
    Simple,
    Extended {
        parsed: Vec<String>,
        executed: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// Splits one direction's bytes into messages.
#[derive(Debug)]
struct Parser {
    side: Side,
    /// The client's first message (and a second after an encryption request) has no
    /// type byte.
    untyped_next: bool,
    buf: Vec<u8>,
    conn: Arc<Mutex<Conn>>,
    tally: Arc<Mutex<Tally>>,
}

impl Parser {
    fn new(side: Side, conn: Arc<Mutex<Conn>>, tally: Arc<Mutex<Tally>>) -> Self {
        Self {
            side,
            untyped_next: side == Side::Client,
            buf: Vec::new(),
            conn,
            tally,
        }
    }

    /// Takes the next bytes of this direction and handles every message they complete.
    fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        let shared = Arc::clone(&self.conn);
        let mut conn = shared.lock().unwrap_or_else(PoisonError::into_inner);
        let mut at = 0;
        loop {
            if conn.opaque {
                self.buf.clear();
                return;
            }
            let rest = &self.buf[at..];
            if self.side == Side::Server && conn.encryption_asked {
                let Some(&answer) = rest.first() else { break };
                conn.encryption_asked = false;
                at += 1;
                if answer != b'N' {
                    conn.opaque = true;
                    count(&self.tally, |t| t.opaque += 1);
                }
                continue;
            }
            let (kind, header) = if self.untyped_next {
                (None, 0)
            } else {
                match rest.first() {
                    Some(&kind) => (Some(kind), 1),
                    None => break,
                }
            };
            let Some(len) = rest
                .get(header..header + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            else {
                break;
            };
            let end = header + len.max(4);
            let Some(body) = rest.get(header + 4..end) else {
                break;
            };
            match kind {
                None => self.untyped_next = startup(&mut conn, body),
                Some(kind) => handle(self.side, &mut conn, &self.tally, kind, body),
            }
            at += end;
        }
        self.buf.drain(..at);
    }
}

fn count(tally: &Mutex<Tally>, f: impl FnOnce(&mut Tally)) {
    f(&mut tally.lock().unwrap_or_else(PoisonError::into_inner));
}

/// An untyped client message: an encryption request (another untyped message
/// follows: returns true) or the start-up message (typed messages follow).
fn startup(conn: &mut Conn, body: &[u8]) -> bool {
    let code = body
        .get(..4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    if ENCRYPTION_REQUESTS.contains(&code) {
        conn.encryption_asked = true;
        true
    } else {
        false
    }
}

/// One typed message of `side`.
fn handle(side: Side, conn: &mut Conn, tally: &Mutex<Tally>, kind: u8, body: &[u8]) {
    match (side, kind) {
        (Side::Client, b'Q') => {
            conn.pending.push_back(Pending::Simple);
            count(tally, |t| t.sent += 1);
        }
        (Side::Client, b'P') => {
            let mut fields = cstrings(body);
            let name = fields.next().unwrap_or_default();
            let sql = fields.next().unwrap_or_default();
            conn.parsed.push(sql.clone());
            conn.prepared.insert(name, sql);
        }
        (Side::Client, b'B') => {
            let mut fields = cstrings(body);
            let _portal = fields.next();
            conn.bound = fields.next().unwrap_or_default();
        }
        (Side::Client, b'E') => {
            let sql = conn.prepared.get(&conn.bound).cloned().unwrap_or_default();
            conn.executed.push(sql);
        }
        (Side::Client, b'S') => {
            let parsed = std::mem::take(&mut conn.parsed);
            let executed = std::mem::take(&mut conn.executed);
            conn.pending
                .push_back(Pending::Extended { parsed, executed });
            count(tally, |t| t.sent += 1);
        }
        (Side::Server, b'C' | b'I') => {
            let tag = if kind == b'I' {
                "(empty)".to_owned()
            } else {
                command(&cstrings(body).next().unwrap_or_default())
            };
            conn.tags.push(tag.clone());
            count(tally, |t| *t.statements.entry(tag).or_insert(0) += 1);
        }
        (Side::Server, b'E') => count(tally, |t| t.errors += 1),
        (Side::Server, b'Z') => {
            let tags = std::mem::take(&mut conn.tags);
            if !conn.started {
                conn.started = true;
                count(tally, |t| t.connections += 1);
                return;
            }
            let label = match conn.pending.pop_front() {
                Some(Pending::Simple) => format!("simple query: {}", tags.join("; ")),
                Some(Pending::Extended { parsed, executed }) => extended_label(&parsed, &executed),
                None => "unmatched".to_owned(),
            };
            count(tally, |t| *t.round_trips.entry(label).or_insert(0) += 1);
        }
        _ => {}
    }
}

/// An extended exchange's label: the statements it executed, or, when it executed
/// none, the ones it prepared.
fn extended_label(parsed: &[String], executed: &[String]) -> String {
    let squeeze = |sql: &String| sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if executed.is_empty() {
        let sql: Vec<String> = parsed.iter().map(squeeze).collect();
        format!("prepare: {}", sql.join("; "))
    } else {
        let sql: Vec<String> = executed.iter().map(squeeze).collect();
        format!("prepared statement: {}", sql.join("; "))
    }
}

/// A command tag without its row counts: `SELECT 1` is `SELECT`, `INSERT 0 5` is
/// `INSERT`.
fn command(tag: &str) -> String {
    let words: Vec<&str> = tag
        .split_whitespace()
        .take_while(|w| !w.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    words.join(" ")
}

/// The NUL-terminated strings at the start of a message body.
fn cstrings(body: &[u8]) -> impl Iterator<Item = String> + '_ {
    body.split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

#[cfg(test)]
mod tests;
