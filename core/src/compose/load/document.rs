//! One YAML document of a compose file, made ready to merge in compose-go's order:
//! `!reset`/`!override` tags are resolved on the YAML nodes (and their paths kept, for
//! they also remove what earlier files set), then `<<` merge keys, then interpolation.
//!
//! A compose file may hold several documents (`---`); Compose merges them in order,
//! like separate files.

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use super::budget::Budget;
use crate::compose::error::{key_display, ComposeError};
use crate::compose::interpolate::Env;

type Result<T, E = ComposeError> = std::result::Result<T, E>;

/// A document after tags, merge keys and interpolation.
#[derive(Debug, Default)]
pub struct Document {
    pub root: Mapping,
    /// Key paths (`["services", "web", "ports"]`) tagged `!reset` or `!override`: what
    /// earlier files (or an extended service) set there is dropped before this document
    /// is merged, as compose-go's ResetProcessor does.
    pub resets: Vec<Vec<String>>,
}

/// The documents of a compose file, each read by [`crate::compose::yaml::parse_str_bounded`] (the
/// one bounded YAML reader) and its nodes charged to `budget` before the next is read (a
/// file of many documents is refused before they are all in memory); `file` only names
/// the file in errors. A line starting with `---` (or `...`) ends a document, as in libyaml.
pub(crate) fn parse(bytes: &[u8], file: &Path, budget: &mut Budget) -> Result<Vec<Value>> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => {
            // bounded::utf8 locates the first bad byte by line and column, never quoting it.
            return Err(match crate::bounded::utf8(bytes.to_vec()) {
                Err(crate::bounded::ReadError::NotUtf8 { line, column }) => ComposeError {
                    line: Some(line),
                    key: None,
                    message: format!("column {column}: not valid UTF-8"),
                },
                _ => ComposeError::message("not valid UTF-8"),
            });
        }
    };
    let mut docs = Vec::new();
    for (first_line, piece) in documents(text) {
        let value = crate::compose::yaml::parse_str_bounded(piece, file).map_err(|e| yaml_error(e, first_line))?;
        budget.nodes(&value).map_err(|e| ComposeError {
            line: Some(first_line + 1),
            ..e
        })?;
        docs.push(value);
    }
    Ok(docs)
}

/// The documents of `text` with the line each starts on (0-based offset): split before
/// every line that starts a new document. A single document (the common case) is the
/// whole text.
fn documents(text: &str) -> Vec<(usize, &str)> {
    let marker = |line: &str| {
        ["---", "..."].iter().any(|m| {
            line.strip_prefix(m)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
        })
    };
    let mut docs = Vec::new();
    let (mut start, mut start_line, mut offset) = (0, 0, 0);
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if n > 0 && marker(line) && !text[start..offset].trim().is_empty() {
            docs.push((start_line, &text[start..offset]));
            start = offset;
            start_line = n;
        }
        offset += line.len();
    }
    if docs.is_empty() || !text[start..].trim().is_empty() {
        docs.push((start_line, &text[start..]));
    }
    docs
}

/// Tags, merge keys and interpolation with `env` (the whole environment: the env files,
/// never the process environment). A null document is an empty mapping.
pub fn prepare(mut root: Value, env: &Env) -> Result<Document> {
    let mut resets = resolve_tags(&mut root);
    resets.iter_mut().for_each(|p| p.reverse());
    merge_keys(&mut root, "")?;
    crate::compose::interpolate::interpolate_yaml(&mut root, &|name| env.get(name).cloned()).map_err(
        |(key, err)| ComposeError {
            line: None,
            key: Some(key),
            message: err.to_string(),
        },
    )?;
    let root = match root {
        Value::Null => Mapping::new(),
        Value::Mapping(m) => m,
        _ => return Err(ComposeError::message("top level is not a mapping")),
    };
    Ok(Document { root, resets })
}

/// A YAML error with its line in the whole file; the column stays in the message.
fn yaml_error(err: crate::compose::yaml::YamlError, first_line: usize) -> ComposeError {
    let message = match err.column {
        Some(c) => format!("column {c}: {}", err.message),
        None => err.message,
    };
    ComposeError {
        line: err.line.map(|l| l + first_line),
        key: None,
        message,
    }
}

fn tag_is(value: &Value, tag: &str) -> bool {
    matches!(value, Value::Tagged(t) if t.tag == tag)
}

fn untag(value: &mut Value) {
    while let Value::Tagged(tagged) = value {
        let inner = std::mem::take(&mut tagged.value);
        *value = inner;
    }
}

/// `!reset` drops what it tags (a mapping key, or a sequence item); `!override` and any
/// other tag just wrap their value. Returns the paths of `!reset`/`!override` keys, each
/// reversed (segments are pushed on the way out, so the common case allocates nothing).
/// A path through a sequence is not kept: compose-go never matches one.
fn resolve_tags(value: &mut Value) -> Vec<Vec<String>> {
    match value {
        Value::Mapping(map) => {
            let mut found = Vec::new();
            let mut reset = false;
            for (k, v) in map.iter_mut() {
                let mut below = if tag_is(v, "reset") {
                    reset = true;
                    vec![Vec::new()]
                } else if tag_is(v, "override") {
                    untag(v);
                    let mut below = resolve_tags(v);
                    below.push(Vec::new());
                    below
                } else {
                    resolve_tags(v)
                };
                // A key merged in by `<<` is at the path of the mapping that merges it.
                if !below.is_empty() && k.as_str() != Some("<<") {
                    let key = key_display(k);
                    below.iter_mut().for_each(|p| p.push(key.clone()));
                }
                found.extend(below);
            }
            if reset {
                map.retain(|_, v| !tag_is(v, "reset"));
            }
            found
        }
        Value::Sequence(seq) => {
            seq.retain(|v| !tag_is(v, "reset"));
            seq.iter_mut().for_each(|v| {
                resolve_tags(v);
            });
            Vec::new()
        }
        Value::Tagged(_) => {
            untag(value);
            resolve_tags(value)
        }
        _ => Vec::new(),
    }
}

/// Resolves `<<` merge keys as yaml.v3 does: explicit keys win over merged ones, and
/// in a list of maps an earlier map wins over a later one. Merged maps are resolved
/// first so that chains (`<<: *b` where `b` itself merges `a`) work; serde_yaml_ng's
/// `apply_merge` does not resolve those.
pub fn merge_keys(value: &mut Value, path: &str) -> Result<()> {
    // The key path of an error is built on the way out (segments pushed innermost
    // first), so the common case allocates nothing for it.
    fn walk(value: &mut Value) -> std::result::Result<(), Vec<String>> {
        match value {
            Value::Mapping(map) => {
                for (k, v) in map.iter_mut() {
                    if matches!(v, Value::Mapping(_) | Value::Sequence(_)) {
                        walk(v).map_err(|mut p| {
                            p.push(key_display(k));
                            p
                        })?;
                    }
                }
                let Some(merge) = map.remove("<<") else {
                    return Ok(());
                };
                let sources = match merge {
                    Value::Mapping(m) => vec![m],
                    Value::Sequence(seq) => seq
                        .into_iter()
                        .map(|v| match v {
                            Value::Mapping(m) => Ok(m),
                            _ => Err(vec!["<<".to_string()]),
                        })
                        .collect::<std::result::Result<_, _>>()?,
                    _ => return Err(vec!["<<".to_string()]),
                };
                for source in sources {
                    for (k, v) in source {
                        map.entry(k).or_insert(v);
                    }
                }
            }
            Value::Sequence(seq) => {
                for (i, v) in seq.iter_mut().enumerate() {
                    if matches!(v, Value::Mapping(_) | Value::Sequence(_)) {
                        walk(v).map_err(|mut p| {
                            p.push(i.to_string());
                            p
                        })?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
    walk(value).map_err(|mut p| {
        p.reverse();
        let key = p.join(".");
        let key = if path.is_empty() { key } else { format!("{path}.{key}") };
        ComposeError::at(&key, "map merge requires map or sequence of maps as the value")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prep(text: &str) -> Document {
        let docs = parse(text.as_bytes(), Path::new("c.yaml"), &mut Budget::default()).unwrap();
        prepare(docs.into_iter().next().unwrap(), &Env::new()).unwrap()
    }

    #[test]
    fn reset_and_override_paths_are_kept() {
        let d = prep("services:\n  web:\n    ports: !reset []\n    networks: !override [a]\n    x: [!reset 1, 2]\n");
        assert_eq!(
            d.resets,
            [
                vec!["services".to_string(), "web".into(), "ports".into()],
                vec!["services".to_string(), "web".into(), "networks".into()],
            ]
        );
        let web = &d.root["services"]["web"];
        assert!(web.get("ports").is_none());
        assert_eq!(web["networks"][0].as_str(), Some("a"));
        assert_eq!(web["x"].as_sequence().unwrap().len(), 1);
    }

    #[test]
    fn several_documents_and_none() {
        let f = Path::new("c.yaml");
        let parse = |bytes: &[u8], f| parse(bytes, f, &mut Budget::default());
        assert_eq!(parse(b"a: 1\n---\nb: 2\n", f).unwrap().len(), 2);
        assert_eq!(parse(b"---\na: 1\n", f).unwrap().len(), 1);
        assert!(parse(b"", f).unwrap().iter().all(Value::is_null));
        let e = parse(b"a: 1\n---\nb: [\n", f).unwrap_err();
        assert_eq!(e.line, Some(4), "{e:?}");
        assert!(prepare(Value::Null, &Env::new()).unwrap().root.is_empty());
    }

    #[test]
    fn bad_utf8_has_a_line() {
        let e = parse(
            b"services:\n  # caf\xe9\n  a: {}\n",
            Path::new("c.yaml"),
            &mut Budget::default(),
        )
        .unwrap_err();
        assert!(e.line.is_some(), "{e:?}");
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(docs) = parse(&bytes, Path::new("c.yaml"), &mut Budget::default()) {
                for doc in docs {
                    let _ = prepare(doc, &Env::new());
                }
            }
        }

        #[test]
        fn yamlish_text_never_panics(text in "([a-z<>!*&:{}\\[\\], \n-]|reset|override|\\$\\{a\\}){0,60}") {
            if let Ok(docs) = parse(text.as_bytes(), Path::new("c.yaml"), &mut Budget::default()) {
                for doc in docs {
                    let _ = prepare(doc, &Env::new());
                }
            }
        }
    }
}
