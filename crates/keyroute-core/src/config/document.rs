//! [`Document`]: a TOML file with `KEYROUTE_*` variables laid over it, read into the
//! section structs in one deserialization, and every refusal turned into one
//! [`ConfigError`] naming the section and option (and the variable it came from).
//!
//! Errors are located with `serde_path_to_error`. serde reports an error inside a
//! `#[serde(flatten)]` field (the router's `[pools]` options beside the pool crate's,
//! `[jwt]`'s beside the JWT service's) at the table holding it, without the option;
//! [`refine`] then finds the entry at fault by reading each entry of that table alone.
//! That only happens on the error path, and only over the few entries of one table.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ConfigError;
use super::de::{DeError, Node};

/// A configuration's text: a TOML document and variables over it. Read the sections
/// with [`read`](Self::read).
#[derive(Clone, Default)]
pub struct Document {
    /// The sections.
    root: BTreeMap<String, Node>,
    /// The variable each (section, option) was set by.
    variables: BTreeMap<(String, String), String>,
}

impl fmt::Debug for Document {
    /// Section and variable names only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("sections", &self.root.keys().collect::<Vec<_>>())
            .field("variables", &self.variables.values().collect::<Vec<_>>())
            .finish()
    }
}

impl Document {
    /// A TOML document.
    ///
    /// # Errors
    /// [`ConfigError::syntax`] for text that is not TOML: the place, never the text.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = toml::from_str(toml).map_err(|e| ConfigError::syntax(toml, &e))?;
        let Node::Table(root) = Node::table(table) else {
            return Ok(Self::default());
        };
        Ok(Self {
            root,
            variables: BTreeMap::new(),
        })
    }

    /// Lays the variable `name` over the document: `option` of `section` is `value`,
    /// whatever the document says. The value is kept as text; each option reads it as
    /// its type does (see the [module docs](super)).
    ///
    /// # Errors
    /// [`ConfigError`] when the document gives `section` a plain value, not a table.
    pub fn set_variable(
        &mut self,
        name: &str,
        section: &str,
        option: &str,
        value: &str,
    ) -> Result<(), ConfigError> {
        let table = self
            .root
            .entry(section.to_owned())
            .or_insert_with(|| Node::Table(BTreeMap::new()));
        let Node::Table(table) = table else {
            return Err(ConfigError::invalid(
                section,
                "",
                format_args!("expected a table [{section}], found a plain value"),
            ));
        };
        table.insert(option.to_owned(), Node::Var(value.to_owned()));
        self.variables
            .insert((section.to_owned(), option.to_owned()), name.to_owned());
        Ok(())
    }

    /// Reads the document into `T`, whose fields are the sections.
    ///
    /// # Errors
    /// [`ConfigError`] naming the section and option of the first refused value, and
    /// the variable when a variable gave it: an unknown section or option (listing the
    /// valid ones), or a value of the wrong kind.
    pub fn read<T: DeserializeOwned + Serialize + Default>(&self) -> Result<T, ConfigError> {
        let root = Node::Table(self.root.clone());
        read_node(&root, &[], &|path| names_at(&T::default(), path)).map_err(|e| self.attribute(e))
    }

    /// `error`, said of the variable that set its option, if one did: the variable is
    /// named and quoted text is cut from the reason, as it may be the variable's value
    /// (a password in the wrong variable).
    pub fn attribute(&self, mut error: ConfigError) -> ConfigError {
        let key = (error.section.clone(), error.option.clone());
        if let Some(variable) = self.variables.get(&key) {
            error.reason = format!(
                "{} (from the variable {variable})",
                scrub_quoted(&error.reason)
            );
        }
        error
    }
}

/// `text` with every double-quoted part replaced by `"…"`.
fn scrub_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' {
            continue;
        }
        // Skip to the closing quote, past escaped characters.
        loop {
            match chars.next() {
                Some('\\') => {
                    chars.next();
                }
                Some('"') | None => break,
                Some(_) => {}
            }
        }
        out.push_str("…\"");
    }
    out
}

/// The names under `path` of `value` serialized: a struct's option names (unset
/// options included), a configuration's section names.
///
/// This is how an unknown option's error lists the valid ones, how variables find
/// their section, and how the guide's options are checked: every name comes from the
/// structs themselves.
pub fn option_names<T: Serialize>(value: &T, path: &[&str]) -> Vec<String> {
    let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
    names_at(value, &path)
}

fn names_at<T: Serialize>(value: &T, path: &[String]) -> Vec<String> {
    let Ok(mut json) = serde_json::to_value(value) else {
        return Vec::new();
    };
    for key in path {
        json = match json {
            serde_json::Value::Object(mut map) => map.remove(key).unwrap_or_default(),
            _ => serde_json::Value::Null,
        };
    }
    match json {
        serde_json::Value::Object(map) => map.into_iter().map(|(k, _)| k).collect(),
        _ => Vec::new(),
    }
}

/// `target` with its `option` set from text, read as a `KEYROUTE_<SECTION>_<OPTION>`
/// variable would be: through the same deserializer as the file and variables.
/// `section` is the section `T` is read from, for errors.
///
/// `T`'s serialized form must read back as itself (true of the sections without
/// secrets: `[apikey]`, `[resolver]`); fields serde skips come back as their defaults.
///
/// # Errors
/// [`ConfigError`] naming `section` and `option`: an unknown option, or a value the
/// option refuses.
pub fn set_option<T>(section: &str, target: &T, option: &str, value: &str) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let serialized = serde_json::to_value(target).ok().and_then(Node::from_json);
    let Some(Node::Table(mut table)) = serialized else {
        return Err(ConfigError::invalid(
            section,
            option,
            "this section cannot be changed option by option",
        ));
    };
    table.insert(option.to_owned(), Node::Var(value.to_owned()));
    let prefix = [section.to_owned()];
    read_node(&Node::Table(table), &prefix, &|path| {
        names_at(&T::default(), path.get(1..).unwrap_or_default())
    })
}

/// Reads `root` into `T`; errors name their place as `prefix` followed by the path
/// in `root`. `names` gives the valid names at a place (from `prefix` on).
fn read_node<T: DeserializeOwned>(
    root: &Node,
    prefix: &[String],
    names: &dyn Fn(&[String]) -> Vec<String>,
) -> Result<T, ConfigError> {
    attempt(root).map_err(|(path, error)| {
        let (path, error) = refine::<T>(root, path, error);
        let mut full = prefix.to_vec();
        full.extend(path);
        to_config_error(full, error, names)
    })
}

/// One deserialization of `root`: the value, or the path and error serde reported.
fn attempt<T: DeserializeOwned>(root: &Node) -> Result<T, (Vec<String>, DeError)> {
    serde_path_to_error::deserialize(root.clone()).map_err(|e| {
        let path = e
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                _ => None,
            })
            .collect();
        (path, e.into_inner())
    })
}

/// `root` cut down to the one entry `key` of the table at `path`.
fn probe(path: &[String], key: &str, node: &Node) -> Node {
    let leaf = Node::Table(BTreeMap::from([(key.to_owned(), node.clone())]));
    path.iter().rev().fold(leaf, |inner, segment| {
        Node::Table(BTreeMap::from([(segment.clone(), inner)]))
    })
}

/// The place of an error serde reported at a table rather than at the entry at fault
/// (errors inside a flattened struct): the first entry of that table that fails when
/// read alone, followed down to the value. Other errors come back as they are.
fn refine<T: DeserializeOwned>(
    root: &Node,
    path: Vec<String>,
    error: DeError,
) -> (Vec<String>, DeError) {
    let unknown = match &error {
        DeError::Unknown(name) => Some(name.clone()),
        DeError::Invalid(_) => None,
    };
    if unknown.is_some() && path.last() == unknown.as_ref() {
        return (path, error);
    }
    let Some(Node::Table(table)) = root.get(&path) else {
        return (path, error);
    };
    for (key, node) in table {
        let trial = probe(&path, key, node);
        let Err((trial_path, trial_error)) = attempt::<T>(&trial) else {
            continue;
        };
        let mut here = path.clone();
        here.push(key.clone());
        if unknown.as_ref() == Some(key) {
            return (here, trial_error);
        }
        let deeper = if trial_path.len() > here.len() && trial_path.starts_with(&here) {
            trial_path
        } else {
            here
        };
        return refine::<T>(&trial, deeper, trial_error);
    }
    (path, error)
}

/// A deserialization error at `path` as a [`ConfigError`]: the first segment is the
/// section, the second the option.
fn to_config_error(
    mut path: Vec<String>,
    error: DeError,
    names: &dyn Fn(&[String]) -> Vec<String>,
) -> ConfigError {
    match error {
        DeError::Unknown(name) => {
            if path.last() == Some(&name) {
                path.pop();
            }
            let valid = names(path.get(..1).unwrap_or_default());
            let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
            match path.first() {
                None => ConfigError::unknown(&name, "", &valid),
                Some(section) => ConfigError::unknown(section, &name, &valid),
            }
        }
        DeError::Invalid(reason) => ConfigError::invalid(
            path.first().map_or("", String::as_str),
            path.get(1).map_or("", String::as_str),
            reason,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quoted parts go, escaped quotes included; the rest stays.
    #[test]
    fn quoted_text_is_scrubbed() {
        assert_eq!(
            scrub_quoted(r#"invalid environment "p:hunter2\"x": use a-z"#),
            r#"invalid environment "…": use a-z"#
        );
        assert_eq!(scrub_quoted("no quotes `here`"), "no quotes `here`");
        assert_eq!(scrub_quoted("open \"hunter2"), "open \"…\"");
    }
}
