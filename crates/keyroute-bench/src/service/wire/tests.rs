//! The relay's parsers on messages written by hand, split at awkward places.

use super::*;

fn message(kind: u8, fields: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = fields.concat();
    let mut out = vec![kind];
    out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn untyped(code: u32, rest: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(rest.len() + 8)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(rest);
    out
}

fn pair() -> (Parser, Parser, Arc<Mutex<Tally>>) {
    let conn = Arc::new(Mutex::new(Conn::default()));
    let tally = Arc::new(Mutex::new(Tally::default()));
    (
        Parser::new(Side::Client, Arc::clone(&conn), Arc::clone(&tally)),
        Parser::new(Side::Server, conn, Arc::clone(&tally)),
        tally,
    )
}

/// Feeds `bytes` one byte at a time: messages split anywhere are still read whole.
fn trickle(parser: &mut Parser, bytes: &[u8]) {
    for b in bytes {
        parser.feed(std::slice::from_ref(b));
    }
}

/// An encryption request refused, a start-up, a simple query of five statements and
/// an extended exchange (prepare, then execute) are told apart: two round trips after
/// start-up, labelled by what they carried; statements by tag without row counts.
#[test]
fn round_trips_and_statements_are_counted() {
    let (mut client, mut server, tally) = pair();
    client.feed(&untyped(80_877_103, &[]));
    server.feed(b"N");
    trickle(&mut client, &untyped(196_608, b"user\0app\0\0"));
    let ready = message(b'Z', &[b"I"]);
    let mut startup = message(b'R', &[&0_u32.to_be_bytes()]);
    startup.extend(message(b'S', &[b"TimeZone\0UTC\0"]));
    startup.extend(&ready);
    server.feed(&startup);

    client.feed(&message(
        b'Q',
        &[b"SET a = 0; BEGIN; RESET ALL; SELECT 1\0"],
    ));
    let mut answer = Vec::new();
    for tag in ["SET", "BEGIN", "RESET", "SELECT 1"] {
        answer.extend(message(b'C', &[tag.as_bytes(), b"\0"]));
    }
    answer.extend(&ready);
    trickle(&mut server, &answer);

    let mut exchange = message(b'P', &[b"s0\0SELECT  x\n FROM t WHERE id = $1\0", &[0, 0]]);
    exchange.extend(message(b'S', &[]));
    exchange.extend(message(b'B', &[b"\0s0\0", &[0, 0, 0, 0, 0, 0]]));
    exchange.extend(message(b'E', &[b"\0", &[0, 0, 0, 0]]));
    exchange.extend(message(b'S', &[]));
    client.feed(&exchange);
    server.feed(&message(b'1', &[]));
    server.feed(&ready);
    let mut rows = message(b'2', &[]);
    rows.extend(message(b'D', &[&[0, 1, 0, 0, 0, 1], b"x"]));
    rows.extend(message(b'C', &[b"SELECT 1\0"]));
    rows.extend(&ready);
    server.feed(&rows);

    let counted = tally.lock().unwrap().clone();
    assert_eq!(counted.connections, 1);
    assert_eq!(counted.sent, 3);
    assert_eq!(counted.answered(), 3);
    assert_eq!(counted.statements_run(), 5);
    assert_eq!(counted.statements["SELECT"], 2);
    assert_eq!(
        counted.round_trips["simple query: SET; BEGIN; RESET; SELECT"],
        1
    );
    assert_eq!(
        counted.round_trips["prepare: SELECT x FROM t WHERE id = $1"],
        1
    );
    assert_eq!(
        counted.round_trips["prepared statement: SELECT x FROM t WHERE id = $1"],
        1
    );
    let later = counted.clone();
    let none = later.since(&counted);
    assert_eq!(none.answered(), 0);
    assert!(none.statements.is_empty());
}

/// A connection that switches to TLS is counted as opaque and no longer parsed.
#[test]
fn encrypted_connections_are_opaque() {
    let (mut client, mut server, tally) = pair();
    client.feed(&untyped(80_877_103, &[]));
    server.feed(b"S\x16\x03\x01");
    server.feed(&message(b'Z', &[b"I"]));
    let counted = tally.lock().unwrap().clone();
    assert_eq!(counted.opaque, 1);
    assert_eq!(counted.connections, 0);
}

/// Tags lose their row counts only.
#[test]
fn command_tags() {
    assert_eq!(command("SELECT 1"), "SELECT");
    assert_eq!(command("INSERT 0 5"), "INSERT");
    assert_eq!(command("RESET"), "RESET");
    assert_eq!(command("CREATE TABLE"), "CREATE TABLE");
}
