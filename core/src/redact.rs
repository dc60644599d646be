//! Keeping the values of env files out of what others can read: reports, the journal,
//! STATUS=. Compose interpolates those values everywhere (an image tag, a container
//! name, an `x-hlsys` key, an `extends` service name, an error about either), so text
//! that may hold them is masked before hlsys passes it on.
//!
//! A value reaches a message in more than one spelling: as written, or quoted by
//! whoever wrote the message, which escapes `"` and `\` (Rust's `{:?}`, JSON, Go's
//! `%q`) or `'` (a shell's single quotes). [`Secrets`] holds every such form of every
//! value and masks them all, in one pass over the text: the only way hlsys makes text
//! that may carry env values fit to be shown ([`crate::tree::build`] passes every
//! message and file of its [`crate::model::StackError`]s through it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Placeholder for a value hidden from reports.
pub const HIDDEN: &str = "(hidden)";

/// Shortest value [`mask`] hides, in characters: shorter ones are not secrets worth the
/// name and would match ordinary words and numbers.
pub const MIN_MASKED: usize = 4;

/// Bytes a form is indexed by: no form is shorter (every value masked has 3 characters
/// or more).
const KEY: usize = 3;

/// The values of `env_files` (layered as Compose layers them), to mask with [`mask`].
/// An env file that cannot be read gives none: the text is then passed on unmasked, and
/// the stack's own load has already reported the file.
pub fn env_values(env_files: &[PathBuf]) -> Vec<String> {
    crate::compose::envfile::load_layered(env_files)
        .map(|m| m.into_values().collect())
        .unwrap_or_default()
}

/// `text` with every env value of [`MIN_MASKED`] characters or more replaced by
/// [`HIDDEN`], in every form a message may quote it in ([`Secrets`]).
pub fn mask(text: &str, env_values: &[String]) -> String {
    Secrets::new(env_values.iter().map(String::as_str), MIN_MASKED).mask(text)
}

/// Values to keep out of text, each in the forms a message may carry it in: as written,
/// escaped as Rust's `{:?}` and `escape_default`, as JSON (and Go's `%q`, which escapes
/// `"` and `\` alike), `{:?}` then JSON, and inside a shell's single quotes. Made of
/// [`Forms`] that may be shared: the variables every stack of a tree has (the config's
/// env files, a layer's `.env`) are indexed once, not once per stack.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    parts: Vec<Arc<Forms>>,
}

/// The forms of some values, indexed for [`Secrets`].
#[derive(Debug, Default)]
pub struct Forms {
    forms: Vec<String>,
    /// The first [`KEY`] bytes of a form → the forms that start so, longest first.
    index: HashMap<[u8; KEY], Vec<u32>>,
}

impl Secrets {
    /// The forms of every value of at least `min_chars` characters (3 or more).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>, min_chars: usize) -> Secrets {
        Secrets::of_parts(vec![Arc::new(Forms::new(values, min_chars))])
    }

    /// Every value of each part.
    pub fn of_parts(parts: Vec<Arc<Forms>>) -> Secrets {
        Secrets {
            parts: parts.into_iter().filter(|p| !p.forms.is_empty()).collect(),
        }
    }
}

impl Forms {
    /// The forms of every value of at least `min_chars` characters (3 or more).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>, min_chars: usize) -> Forms {
        let min_chars = min_chars.max(KEY);
        let mut forms = BTreeSet::new();
        for v in values {
            if v.len() < min_chars || v.chars().count() < min_chars {
                continue;
            }
            forms.extend(forms_of(v));
        }
        let forms: Vec<String> = forms.into_iter().filter(|f| f.len() >= KEY).collect();
        let mut index: HashMap<[u8; KEY], Vec<u32>> = HashMap::new();
        for (i, f) in forms.iter().enumerate() {
            let b = f.as_bytes();
            index.entry([b[0], b[1], b[2]]).or_default().push(i as u32);
        }
        for list in index.values_mut() {
            list.sort_by_key(|&i| std::cmp::Reverse(forms[i as usize].len()));
        }
        Forms { forms, index }
    }

    /// The first form found in `text` at byte `i` or later: its start and length.
    fn find(&self, text: &[u8], mut i: usize) -> Option<(usize, usize)> {
        if self.forms.is_empty() {
            return None;
        }
        while i + KEY <= text.len() {
            if let Some(list) = self.index.get(&[text[i], text[i + 1], text[i + 2]]) {
                let rest = &text[i..];
                if let Some(f) = list
                    .iter()
                    .map(|&k| self.forms[k as usize].as_bytes())
                    .find(|f| rest.starts_with(f))
                {
                    return Some((i, f.len()));
                }
            }
            i += 1;
        }
        None
    }
}

impl Secrets {
    /// The values of each of `files`, read alone; a file that cannot be read alone (it
    /// needs a variable of an earlier file) gives its values layered over the files
    /// before it in `lists`, the env file lists it was found in.
    pub fn of_env_files<'a>(lists: impl IntoIterator<Item = &'a [PathBuf]>, min_chars: usize) -> Secrets {
        let mut values: BTreeSet<String> = BTreeSet::new();
        let mut done: BTreeSet<&Path> = BTreeSet::new();
        for list in lists {
            for (i, f) in list.iter().enumerate() {
                if !done.insert(f) {
                    continue;
                }
                let alone = crate::compose::envfile::load_layered(std::slice::from_ref(f))
                    .or_else(|_| crate::compose::envfile::load_layered(&list[..=i]));
                values.extend(alone.into_iter().flat_map(BTreeMap::into_values));
            }
        }
        Secrets::new(values.iter().map(String::as_str), min_chars)
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The first form of any part found in `text` at byte `i` or later, the longest of
    /// those starting there: its start and length.
    fn find(&self, text: &[u8], i: usize) -> Option<(usize, usize)> {
        self.parts
            .iter()
            .filter_map(|p| p.find(text, i))
            .min_by_key(|&(at, len)| (at, std::cmp::Reverse(len)))
    }

    /// Whether `text` holds any form of any value.
    pub fn reveals(&self, text: &str) -> bool {
        self.find(text.as_bytes(), 0).is_some()
    }

    /// `text` with every form of every value replaced by [`HIDDEN`], leftmost and
    /// longest first (so a value containing another is hidden whole).
    pub fn mask(&self, text: &str) -> String {
        let b = text.as_bytes();
        let Some(first) = self.find(b, 0) else {
            return text.to_string();
        };
        let mut out = String::with_capacity(text.len());
        let (mut done, mut next) = (0, Some(first));
        while let Some((at, len)) = next {
            // A form is whole UTF-8 and starts with a leading byte, so both ends of a
            // match are character boundaries.
            out.push_str(&text[done..at]);
            out.push_str(HIDDEN);
            done = at + len;
            next = self.find(b, done);
        }
        out.push_str(&text[done..]);
        out
    }

    /// `path` masked as text; the path itself when it holds no value.
    pub fn mask_path(&self, path: &Path) -> PathBuf {
        let text = path.to_string_lossy();
        if self.reveals(&text) {
            PathBuf::from(self.mask(&text))
        } else {
            path.to_path_buf()
        }
    }
}

/// The spellings of `v` that messages use.
fn forms_of(v: &str) -> impl Iterator<Item = String> {
    let json = |s: &str| unquote(&serde_json::to_string(s).unwrap_or_default());
    let debug = unquote(&format!("{v:?}"));
    [
        v.to_string(),
        json(v),
        // A message that quotes it, in a JSON document or log line that quotes the message.
        json(&debug),
        debug,
        v.escape_default().to_string(),
        v.replace('\'', r"'\''"),
    ]
    .into_iter()
}

/// `"…"` without its quotes.
fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_value_first_and_short_values_kept() {
        let vals = vec!["s3cr3t".to_string(), "s3cr3t-long".to_string(), "yes".to_string()];
        assert_eq!(
            mask("Container app-s3cr3t-long-1 Started; token s3cr3t; yes", &vals),
            "Container app-(hidden)-1 Started; token (hidden); yes"
        );
    }

    #[test]
    fn escaped_forms_are_masked_too() {
        let v = r#"pa"ss\wörd'x"#;
        let s = Secrets::new([v], 4);
        for text in [
            format!("value {v} here"),
            format!("value {v:?} here"),
            format!("value {} here", serde_json::to_string(v).unwrap()),
            format!("value {} here", v.escape_default()),
            format!("value '{}' here", v.replace('\'', r"'\''")),
            // A message that quotes it, in a JSON document that quotes the message.
            serde_json::to_string(&format!("value {v:?} here")).unwrap(),
        ] {
            assert!(s.reveals(&text), "{text}");
            let masked = s.mask(&text);
            assert!(!masked.contains("ss") && masked.contains(HIDDEN), "{text} → {masked}");
        }
        assert_eq!(s.mask("nothing to see"), "nothing to see");
    }

    #[test]
    fn every_occurrence_and_utf8_kept_whole() {
        let s = Secrets::new(["ééé", "abc"], 3);
        assert_eq!(s.mask("xéééyabcabc€"), "x(hidden)y(hidden)(hidden)€");
        assert!(Secrets::new(["ab"], 2).is_empty());
    }
}
