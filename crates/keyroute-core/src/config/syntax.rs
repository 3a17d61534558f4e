//! Where a TOML syntax error is, told without quoting the document.
//!
//! A syntax error may sit on the line that holds a database password or a signing
//! secret, so nothing here copies text from the document except table and key
//! *names*, and only when they are certainly names: the option is the bare key at the
//! start of the error's line, and the section the last `[header]` before it, both
//! taken only when the document up to that line parses (so the line does not start
//! inside a multi-line string or array) and the header names a table that parse found.

/// The longest table or key name reported; longer ones are left out.
const MAX_NAME: usize = 64;

/// The longest description of a mistake kept from the parser.
const MAX_DESCRIPTION: usize = 120;

/// The line and column (both from 1; the column in characters) of a byte offset, and
/// the section and option whose line it is, when known.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Place {
    pub(super) line: usize,
    pub(super) column: usize,
    pub(super) section: Option<String>,
    pub(super) option: Option<String>,
}

/// Where byte `offset` of `document` is.
pub(super) fn locate(document: &str, offset: usize) -> Place {
    let mut offset = offset.min(document.len());
    while !document.is_char_boundary(offset) {
        offset = offset.saturating_sub(1);
    }
    let before = document.get(..offset).unwrap_or_default();
    let line_start = before.rfind('\n').map_or(0, |i| i.saturating_add(1));
    let line = before
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        .saturating_add(1);
    let column = before
        .get(line_start..)
        .unwrap_or_default()
        .chars()
        .count()
        .saturating_add(1);
    let mut place = Place {
        line,
        column,
        ..Place::default()
    };
    let head = document.get(..line_start).unwrap_or_default();
    // The document up to the error's line parses: that line starts a statement.
    let Ok(parsed) = toml::from_str::<toml::Table>(head) else {
        return place;
    };
    let line_text = document
        .get(line_start..)
        .unwrap_or_default()
        .split('\n')
        .next()
        .unwrap_or_default();
    if line_text.trim_start().starts_with('[') {
        // A broken header: neither its section nor an option can be told.
        return place;
    }
    place.option = line_text
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| is_name(key))
        .map(str::to_owned);
    place.section = head
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('['))
        .and_then(header_name)
        .filter(|name| is_table(&parsed, name))
        .map(str::to_owned);
    place
}

/// The parser's description of the mistake (a fixed phrase, e.g. "invalid basic
/// string, expected `\"`"), without control characters and bounded in length.
pub(super) fn description(message: &str) -> String {
    let text: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DESCRIPTION)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        "a syntax error".to_owned()
    } else {
        text.to_owned()
    }
}

/// The name in a `[name]` or `[[name]]` header line (a comment may follow).
fn header_name(line: &str) -> Option<&str> {
    let line = line.trim();
    let (inner, close) = match line.strip_prefix("[[") {
        Some(rest) => (rest, "]]"),
        None => (line.strip_prefix('[')?, "]"),
    };
    let (name, rest) = inner.split_once(close)?;
    let rest = rest.trim_start();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return None;
    }
    let name = name.trim();
    is_name(name).then_some(name)
}

/// A bare (possibly dotted) key of reportable length.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Whether `name` (dotted) is a table, or an array of tables, in `doc`.
fn is_table(doc: &toml::Table, name: &str) -> bool {
    let mut table = doc;
    let mut parts = name.split('.').peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        match table.get(part) {
            Some(toml::Value::Table(inner)) => table = inner,
            Some(toml::Value::Array(items)) if last => {
                return items.iter().all(|v| v.is_table());
            }
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(document: &str, offset: usize) -> (usize, usize, Option<String>, Option<String>) {
        let p = locate(document, offset);
        (p.line, p.column, p.section, p.option)
    }

    /// Lines and columns count from 1, columns in characters, offsets clamp to the
    /// text; a key that is not a bare ASCII name is not reported.
    #[test]
    fn lines_and_columns() {
        assert_eq!(place("", 0), (1, 1, None, None));
        assert_eq!(place("a = 1\nbé = 2", 9), (2, 3, None, None));
        assert_eq!(locate("a\nb", 999).line, 2);
        // An offset inside a multi-byte character moves back to its start.
        assert_eq!(locate("é", 1).column, 1);
    }

    /// The section is the last header before the line, the option the line's key.
    #[test]
    fn section_and_option() {
        let doc = "[pools]\nmax_size = 3\n\n[connections] # the databases\nlive = \"oops\n";
        let offset = doc.find("oops").unwrap();
        assert_eq!(
            place(doc, offset),
            (5, 9, Some("connections".into()), Some("live".into()))
        );
        let dotted = "[a.b]\nc = 1\nd = x\n";
        assert_eq!(
            place(dotted, dotted.len() - 2),
            (3, 5, Some("a.b".into()), Some("d".into()))
        );
    }

    /// Inside a multi-line string, or on a broken header, nothing is named.
    #[test]
    fn nothing_is_named_from_inside_strings() {
        let doc = "[jwt]\nsecret = \"\"\"\nhunter2 = 1\n";
        assert_eq!(place(doc, doc.len() - 2).3, None);
        let fake = "[jwt]\nnote = '''\n[hunter2]\n'''\nx = \"\n";
        let p = locate(fake, fake.len() - 1);
        assert_eq!((p.section, p.option), (None, Some("x".into())));
        let header = "[connections\nlive = 1\n";
        assert_eq!(place(header, 5).2, None);
    }

    /// Descriptions lose control characters and are bounded.
    #[test]
    fn descriptions_are_bounded() {
        assert_eq!(description("bad\n\u{1b}[2Jthing"), "bad  [2Jthing");
        assert_eq!(description(&"x".repeat(1000)).len(), MAX_DESCRIPTION);
        assert_eq!(description(" "), "a syntax error");
    }
}
