//! The one deserializer behind every configuration source, and its error.
//!
//! A configuration is a tree of [`Node`]s: the TOML file's tables and values, with
//! `KEYROUTE_*` variables laid over them as [`Node::Var`]s, their text as it is. The
//! section structs (`KeyOptions`, `RouterConfig`, ...) are deserialized from that tree
//! by their derived `Deserialize`, so a value from the file, a variable or code goes
//! through the same code and fails with the same error.
//!
//! The tree has its own error type, [`DeError`], because serde's default messages
//! quote the refused value (`invalid type: string "postgres://app:hunter2@db"`),
//! and a value given to the wrong option may be a password. `DeError` says what kind
//! of value was found and what was expected, never the value.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, Expected, IntoDeserializer, Unexpected, Visitor};

/// One node of a configuration: a table, a value from a TOML document, or the text
/// of an environment variable.
#[derive(Clone)]
pub(crate) enum Node {
    /// A table: the document, a section, or a table-valued option.
    Table(BTreeMap<String, Node>),
    /// A value read from TOML (never a table: tables become [`Node::Table`]).
    Value(toml::Value),
    /// The text of a variable. An option that takes text gets it as it is; any
    /// other option gets it read as a TOML value when it is one (see [`typed`]).
    Var(String),
}

impl Node {
    /// A TOML value as a node, its tables (at any depth) as [`Node::Table`]s.
    pub(crate) fn from_toml(value: toml::Value) -> Self {
        match value {
            toml::Value::Table(table) => Self::table(table),
            other => Node::Value(other),
        }
    }

    /// A TOML table as a node.
    pub(crate) fn table(table: toml::Table) -> Self {
        Node::Table(
            table
                .into_iter()
                .map(|(key, value)| (key, Node::from_toml(value)))
                .collect(),
        )
    }

    /// A serialized value as a node, its nulls (options left unset) left out.
    pub(crate) fn from_json(value: serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::Object(map) => Some(Node::Table(
                map.into_iter()
                    .filter_map(|(key, value)| Some((key, Node::from_json(value)?)))
                    .collect(),
            )),
            other => json_to_toml(other).map(Node::Value),
        }
    }

    /// The node at `path` below this one.
    pub(crate) fn get(&self, path: &[String]) -> Option<&Node> {
        path.iter().try_fold(self, |node, key| match node {
            Node::Table(table) => table.get(key),
            _ => None,
        })
    }
}

/// A JSON value as TOML, nulls left out.
fn json_to_toml(value: serde_json::Value) -> Option<toml::Value> {
    use serde_json::Value as J;
    Some(match value {
        J::Null => return None,
        J::Bool(b) => toml::Value::Boolean(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        J::String(s) => toml::Value::String(s),
        J::Array(items) => toml::Value::Array(items.into_iter().filter_map(json_to_toml).collect()),
        J::Object(map) => toml::Value::Table(
            map.into_iter()
                .filter_map(|(key, value)| Some((key, json_to_toml(value)?)))
                .collect(),
        ),
    })
}

/// A variable's text read as a TOML value, when it is one: `4`, `true`, `["a", "b"]`,
/// `{ live = "LiveDb" }`, `"quoted text"`. An integer counts only when written as
/// TOML prints it (`4`, not `0x4`, `+4` or `4_0`), so text such as a hexadecimal
/// secret is never quietly turned into a number; floats and dates stay text (no option
/// takes them).
pub(crate) fn typed(text: &str) -> Option<toml::Value> {
    let text = text.trim();
    let value: toml::Value = text.parse().ok()?;
    match &value {
        toml::Value::Integer(i) => (i.to_string() == text).then_some(value),
        toml::Value::Float(_) | toml::Value::Datetime(_) => None,
        _ => Some(value),
    }
}

/// Why a configuration value was refused, never quoting the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeError {
    /// A table has an entry no option or section of that name takes.
    Unknown(String),
    /// Any other refusal: what was found, what is expected.
    Invalid(String),
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeError::Unknown(name) => write!(f, "unknown option `{name}`"),
            DeError::Invalid(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for DeError {}

/// What kind of value was found, without the value.
fn kind(unexpected: &Unexpected<'_>) -> &'static str {
    match unexpected {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "a number",
        Unexpected::Float(_) => "a decimal number",
        Unexpected::Char(_) | Unexpected::Str(_) => "text",
        Unexpected::Bytes(_) => "bytes",
        Unexpected::Unit => "nothing",
        Unexpected::Option => "an optional value",
        Unexpected::Seq => "a list",
        Unexpected::Map => "a table",
        _ => "a value of another kind",
    }
}

/// What is expected, in the configuration's words: a struct is a table of options,
/// an integer type a whole number.
fn expected(exp: &dyn Expected) -> String {
    let text = exp.to_string();
    if text.starts_with("struct ") {
        return "a table of options".to_owned();
    }
    let integer = [
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
    ];
    if integer.contains(&text.as_str()) {
        return format!("a whole number ({text})");
    }
    text
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        let msg = msg.to_string();
        // serde's words for a key left over beside a `#[serde(flatten)]` field.
        match msg
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            Some(name) => DeError::Unknown(name.to_owned()),
            None => DeError::Invalid(msg),
        }
    }

    fn invalid_type(unexpected: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DeError::Invalid(format!(
            "expected {}, found {}",
            expected(exp),
            kind(&unexpected)
        ))
    }

    fn invalid_value(unexpected: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DeError::Invalid(format!(
            "{} that is out of range or malformed; expected {}",
            kind(&unexpected),
            expected(exp)
        ))
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        DeError::Invalid(format!("{len} entries; expected {}", expected(exp)))
    }

    fn unknown_variant(_variant: &str, names: &'static [&'static str]) -> Self {
        DeError::Invalid(format!("expected one of: {}", names.join(", ")))
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        DeError::Unknown(field.to_owned())
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::Invalid(format!("`{field}` is required"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        DeError::Invalid(format!("`{field}` is given twice"))
    }
}

/// Visits a table's entries as a map.
fn visit_table<'de, V, I>(entries: I, visitor: V) -> Result<V::Value, DeError>
where
    V: Visitor<'de>,
    I: Iterator<Item = (String, Node)>,
{
    let mut map = MapDeserializer::new(entries);
    let value = visitor.visit_map(&mut map)?;
    map.end()?;
    Ok(value)
}

/// Visits a TOML value.
fn visit_value<'de, V: Visitor<'de>>(value: toml::Value, visitor: V) -> Result<V::Value, DeError> {
    match value {
        toml::Value::String(s) => visitor.visit_string(s),
        toml::Value::Integer(i) => visitor.visit_i64(i),
        toml::Value::Float(f) => visitor.visit_f64(f),
        toml::Value::Boolean(b) => visitor.visit_bool(b),
        toml::Value::Datetime(d) => visitor.visit_string(d.to_string()),
        toml::Value::Array(items) => {
            let mut seq = SeqDeserializer::new(items.into_iter().map(Node::from_toml));
            let value = visitor.visit_seq(&mut seq)?;
            seq.end()?;
            Ok(value)
        }
        toml::Value::Table(table) => visit_table(
            table.into_iter().map(|(k, v)| (k, Node::from_toml(v))),
            visitor,
        ),
    }
}

impl<'de> de::Deserializer<'de> for Node {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Node::Table(table) => visit_table(table.into_iter(), visitor),
            Node::Value(value) => visit_value(value, visitor),
            Node::Var(text) => match typed(&text) {
                Some(value) => visit_value(value, visitor),
                None => visitor.visit_string(text),
            },
        }
    }

    /// Text options take a variable's text as it is: a secret or a path is never
    /// reinterpreted.
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Node::Var(text) => visitor.visit_string(text),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_string(visitor)
    }

    /// TOML has no null: a value that is present is `Some`.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    /// Unit variants by name (`check = "fast"`).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self {
            Node::Var(text) | Node::Value(toml::Value::String(text)) => {
                visitor.visit_enum(text.into_deserializer())
            }
            other => other.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl IntoDeserializer<'_, DeError> for Node {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Integers count only in TOML's own spelling; quoted text is unquoted; anything
    /// else stays text.
    #[test]
    fn variables_are_typed_only_when_unambiguous() {
        assert_eq!(typed("4"), Some(toml::Value::Integer(4)));
        assert_eq!(typed(" 4 "), Some(toml::Value::Integer(4)));
        for text in [
            "0x1f",
            "+4",
            "4_0",
            "1e3",
            "1.5",
            "1979-05-27",
            "live",
            "a, b",
            "",
        ] {
            assert_eq!(typed(text), None, "{text}");
        }
        assert_eq!(typed("true"), Some(toml::Value::Boolean(true)));
        assert_eq!(
            typed("\"a,b\""),
            Some(toml::Value::String("a,b".to_owned()))
        );
        assert!(matches!(typed("[\"a\", \"b\"]"), Some(toml::Value::Array(a)) if a.len() == 2));
    }

    /// The error's words never include the refused value.
    #[test]
    fn errors_never_quote_the_value() {
        let error: Result<u32, _> =
            serde::Deserialize::deserialize(Node::Var("postgres://app:hunter2@db".to_owned()));
        let text = error.unwrap_err().to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(text, "expected a whole number (u32), found text");
    }
}
