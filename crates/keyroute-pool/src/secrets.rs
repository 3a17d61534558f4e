//! Where the passwords are in a connection string, in every form the drivers accept.
//!
//! - URL user-info, `scheme://user:password@host/...`. Passwords are often pasted
//!   unencoded, and drivers disagree on where they end: tokio-postgres stops at the
//!   first `@`, mysql_async (through the `url` crate) at the last `@` of the authority.
//!   The span hidden here runs from the first `:` of the user-info to the last `@` of
//!   the whole string, which covers both readings (a URL with an `@` in its path or
//!   query is hidden up to that `@`: more than needed, never less).
//! - Query parameters, `?password=...` or `&sslpassword=...`: the value runs to the next
//!   `&key=` or to the end, so an unencoded `&` inside the password stays hidden.
//! - libpq key-value strings, `host=db user=app password=hunter2` or
//!   `password='hunter 2'`, with `\'` and `\\` escapes.
//!
//! Besides the spans, each password's spellings (as written, percent-decoded, with
//! key-value escapes resolved) are kept, so that error messages quoting the connection
//! string or a password can be scrubbed too. Shorter readings a driver may take (up to
//! the first `@` or `&`) are not scrubbed on their own: drivers do not quote the
//! password they parsed, and scrubbing every short prefix would garble messages. But a
//! driver may quote a piece of a password that it misread as URL syntax (an unknown
//! query parameter), so the pieces between such characters, from three characters
//! on, are scrubbed too.

use std::ops::Range;

/// The shortest piece of a password scrubbed on its own.
const MIN_PIECE: usize = 3;

/// The parts of a connection string that are secret.
#[derive(Default)]
pub(super) struct Secrets {
    /// Byte ranges of the connection string holding a password.
    spans: Vec<Range<usize>>,
    /// Each way a password may be spelled in a message, longest first.
    spellings: Vec<String>,
}

impl Secrets {
    /// The secrets of `conn`.
    pub(super) fn find(conn: &str) -> Self {
        let mut secrets = Self::default();
        if let Some(scheme_end) = conn.find("://") {
            secrets.user_info(conn, scheme_end.saturating_add(3));
        }
        secrets.keyed_values(conn);
        secrets.spellings.retain(|s| !s.is_empty());
        secrets
            .spellings
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.spellings.dedup();
        secrets.spans.sort_by_key(|span| span.start);
        secrets
    }

    /// `conn` (the string these secrets were found in) with each secret span shown as
    /// `***`, then scrubbed of every spelling.
    pub(super) fn mask(&self, conn: &str) -> String {
        let mut out = String::with_capacity(conn.len());
        let mut shown_to = 0;
        for span in &self.spans {
            if span.end <= shown_to {
                continue;
            }
            let start = span.start.max(shown_to);
            out.push_str(conn.get(shown_to..start).unwrap_or_default());
            out.push_str("***");
            shown_to = span.end;
        }
        out.push_str(conn.get(shown_to..).unwrap_or_default());
        self.scrub(&out)
    }

    /// `text` with every spelling of a password replaced by `***`.
    pub(super) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for spelling in &self.spellings {
            if out.contains(spelling.as_str()) {
                out = out.replace(spelling.as_str(), "***");
            }
        }
        out
    }

    fn add(&mut self, conn: &str, span: Range<usize>) {
        if span.is_empty() {
            return;
        }
        if let Some(text) = conn.get(span.clone()) {
            if let Some(decoded) = percent_decoded(text) {
                self.spellings.push(decoded);
            }
            self.spellings.push(text.to_owned());
            // A password with URL or key-value syntax in it is read by drivers as
            // pieces ("unknown parameter `rd`" from `p@ss/w?rd#x`): scrub the pieces
            // too, those long enough not to garble every message.
            self.spellings.extend(
                text.split(|c: char| "/?#&=@:'\\".contains(c) || c.is_whitespace())
                    .filter(|piece| piece.len() >= MIN_PIECE && piece.len() < text.len())
                    .map(str::to_owned),
            );
        }
        self.spans.push(span);
    }

    /// `scheme://user:password@host`: the password, read every way a driver may.
    fn user_info(&mut self, conn: &str, rest_start: usize) {
        let rest = conn.get(rest_start..).unwrap_or_default();
        let Some(colon) = rest.find(':') else {
            return;
        };
        // A `:` after an `@`, `/` or `?` is a port or part of the path, not a password.
        if rest[..colon].contains(['@', '/', '?', '#']) {
            return;
        }
        let start = rest_start.saturating_add(colon).saturating_add(1);
        let Some(last) = conn.get(start..).and_then(|s| s.rfind('@')) else {
            return;
        };
        let last = start.saturating_add(last);
        self.add(conn, start..last);
    }

    /// Every `...password=value` (query parameter or key-value pair).
    fn keyed_values(&mut self, conn: &str) {
        let is_url = conn.contains("://");
        let lower = conn.to_ascii_lowercase();
        let mut from = 0;
        while let Some(found) = lower.get(from..).and_then(|s| s.find("password")) {
            let key_end = from.saturating_add(found).saturating_add("password".len());
            from = key_end;
            let Some(value_start) = after_equals(conn, key_end, !is_url) else {
                continue;
            };
            if is_url {
                let end = query_value_end(conn, value_start);
                self.add(conn, value_start..end);
            } else {
                let (span, unescaped) = key_value_end(conn, value_start);
                self.spellings.push(unescaped);
                self.add(conn, span);
            }
        }
    }
}

/// Where the value of a key ending at `key_end` starts: after `=`, and in key-value
/// strings after the spaces libpq allows around it. `None` when no `=` follows.
fn after_equals(conn: &str, key_end: usize, spaces: bool) -> Option<usize> {
    let bytes = conn.as_bytes();
    let mut i = key_end;
    if spaces {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i = i.saturating_add(1);
        }
    }
    if bytes.get(i) != Some(&b'=') {
        return None;
    }
    i = i.saturating_add(1);
    if spaces {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i = i.saturating_add(1);
        }
    }
    Some(i)
}

/// The end of a query value starting at `start`: the next `&` followed by `key=`,
/// or `#`-free end of the string.
fn query_value_end(conn: &str, start: usize) -> usize {
    let bytes = conn.as_bytes();
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        if b == b'&' && starts_a_parameter(bytes, i.saturating_add(1)) {
            return i;
        }
        i = i.saturating_add(1);
    }
    conn.len()
}

/// Whether `key=` starts at `i` for a parameter the drivers know. An unencoded `&` in
/// a password is ambiguous (`password=a&-=b`), so the value runs on to the next known
/// parameter: an unknown one after a password is hidden with it, which fails closed.
fn starts_a_parameter(bytes: &[u8], i: usize) -> bool {
    let rest = bytes.get(i..).unwrap_or_default();
    let key_len = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        .count();
    if key_len == 0 || bytes.get(i.saturating_add(key_len)) != Some(&b'=') {
        return false;
    }
    let key = rest.get(..key_len).unwrap_or_default();
    KNOWN_PARAMETERS
        .iter()
        .any(|known| known.as_bytes().eq_ignore_ascii_case(key))
}

/// Query parameters of libpq / tokio-postgres and mysql_async connection URLs.
const KNOWN_PARAMETERS: &[&str] = &[
    "application_name",
    "channel_binding",
    "connect_timeout",
    "db_name",
    "dbname",
    "host",
    "hostaddr",
    "keepalives",
    "keepalives_idle",
    "load_balance_hosts",
    "options",
    "pass",
    "password",
    "pool_max",
    "pool_min",
    "port",
    "prefer_socket",
    "require_ssl",
    "socket",
    "ssl-ca",
    "ssl-mode",
    "ssl_mode",
    "sslcert",
    "sslkey",
    "sslmode",
    "sslrootcert",
    "stmt_cache_size",
    "target_session_attrs",
    "tcp_keepalive",
    "tcp_nodelay",
    "user",
    "username",
    "verify_ca",
    "verify_identity",
];

/// A key-value string's value starting at `start`: its span (quotes included) and
/// its text with the escapes resolved.
fn key_value_end(conn: &str, start: usize) -> (Range<usize>, String) {
    let mut value = String::new();
    let mut chars = conn.get(start..).unwrap_or_default().char_indices();
    let quoted = conn.get(start..).is_some_and(|v| v.starts_with('\''));
    if quoted {
        chars.next();
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '\'' if quoted => return (start..start.saturating_add(i).saturating_add(1), value),
            c if !quoted && c.is_whitespace() => return (start..start.saturating_add(i), value),
            c => value.push(c),
        }
    }
    (start..conn.len(), value)
}

/// `text` with `%XX` escapes decoded, when it has any and they decode to UTF-8.
pub(super) fn percent_decoded(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
        .filter(|d| d != text)
}
