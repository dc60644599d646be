//! The work budget of one stack's load: every file read, every level of `include` and
//! `extends`, every YAML node decoded or copied and every byte of value text, counted
//! over the whole load (the selected files, what they include and extend, and the env
//! files of their includes). The per-file limits ([`crate::bounded`], [`crate::compose::yaml`],
//! [`crate::compose::interpolate`]) bound one file; this bounds how many times a load may
//! pay them, so that recursion, re-reads (an include "diamond" reads a file once per path
//! to it) and copies (each `extends` copies its base) cannot multiply them.
//!
//! The limits are generous for real trees and far below what hurts. A homelab stack reads
//! a handful of files (a compose file, an override, two or three includes, an `extends`
//! base), nests them two or three deep and decodes a few thousand nodes.
//!
//! - [`MAX_DEPTH`] 64 nested `include`/`extends` levels (each `include` and each link of an
//!   `extends` chain, in one file or across files, is a level). The walk recurses once per
//!   level, so this is also what bounds its stack: a load 64 levels deep with 120-deep YAML
//!   at the bottom needs about 300 KiB in the release build (1.1 MiB unoptimised), of the
//!   2 MiB of a reading thread (loader.rs tests it in a 512 KiB thread).
//! - [`MAX_FILES`] 256 files read (compose and env files; a file counts each time it is
//!   read): 50 times a large real stack and a few milliseconds of small reads, while a
//!   diamond of 20 levels would read 2 million.
//! - [`MAX_BYTES`] 8 MiB read in all: two compose files at their 4 MiB cap (a file and its
//!   override), about 150 ms of parsing in the release build; the slowest input to read
//!   is env files (8 MiB of them, about 300 ms).
//! - [`MAX_NODES`] 500,000 YAML nodes in all, decoded (aliases expanded) or copied by
//!   `extends`: five documents at their 100,000-node cap, about 40 MiB of memory (so
//!   even eight reading threads on hostile stacks stay within a few hundred MiB).
//! - [`MAX_TEXT`] 32 MiB of value text in all (documents after interpolation, `extends`
//!   copies, the variables of included env files): two documents at their 16 MiB
//!   interpolation cap.
//!
//! A load that exceeds one fails with a message naming the budget, in the file where it
//! was exceeded; the other stacks are not affected.

use serde_yaml_ng::{Mapping, Value};

use crate::compose::error::ComposeError;

/// Most nested `include`/`extends` levels.
pub const MAX_DEPTH: usize = 64;
/// Most files read (compose and env files, each read counted).
pub const MAX_FILES: usize = 256;
/// Most bytes read from compose and env files in all.
pub const MAX_BYTES: u64 = 8 << 20;
/// Most YAML nodes decoded or copied in all.
pub const MAX_NODES: u64 = 500_000;
/// Most bytes of value text in all.
pub const MAX_TEXT: u64 = 32 << 20;

/// What one load has spent so far.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    depth: usize,
    files: usize,
    bytes: u64,
    nodes: u64,
    text: u64,
}

type Result<T = ()> = std::result::Result<T, ComposeError>;

impl Budget {
    /// One level deeper (an `include`, a link of an `extends` chain); [`Budget::leave`]
    /// when it is done.
    pub fn enter(&mut self) -> Result {
        if self.depth >= MAX_DEPTH {
            return Err(ComposeError::message(&format!(
                "more than {MAX_DEPTH} nested include/extends levels (the load budget of a stack)"
            )));
        }
        self.depth += 1;
        Ok(())
    }

    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// One more file about to be read.
    pub fn file(&mut self) -> Result {
        if self.files >= MAX_FILES {
            return Err(ComposeError::message(&format!(
                "more than {MAX_FILES} compose and env files read (each read counts, the load budget of a stack)"
            )));
        }
        self.files += 1;
        Ok(())
    }

    /// `len` bytes read.
    pub fn bytes(&mut self, len: u64) -> Result {
        self.bytes = self.bytes.saturating_add(len);
        if self.bytes > MAX_BYTES {
            return Err(ComposeError::message(&format!(
                "more than {} MiB read from compose and env files (the load budget of a stack)",
                MAX_BYTES >> 20
            )));
        }
        Ok(())
    }

    /// The nodes of `value`, decoded.
    pub fn nodes(&mut self, value: &Value) -> Result {
        self.nodes = self.nodes.saturating_add(size(value).0);
        self.check_nodes()
    }

    /// The nodes and the text of `value`, copied.
    pub fn copy(&mut self, value: &Value) -> Result {
        let (nodes, text) = size(value);
        self.nodes = self.nodes.saturating_add(nodes);
        self.check_nodes()?;
        self.text(text)
    }

    /// The text of a document after interpolation.
    pub fn text_of(&mut self, doc: &Mapping) -> Result {
        self.text(size_of_mapping(doc).1)
    }

    /// `len` bytes of value text.
    pub fn text(&mut self, len: u64) -> Result {
        self.text = self.text.saturating_add(len);
        if self.text > MAX_TEXT {
            return Err(ComposeError::message(&format!(
                "more than {} MiB of values (interpolated, copied by extends, or from include env files; the load budget of a stack)",
                MAX_TEXT >> 20
            )));
        }
        Ok(())
    }

    fn check_nodes(&self) -> Result {
        if self.nodes > MAX_NODES {
            return Err(ComposeError::message(&format!(
                "more than {MAX_NODES} YAML nodes decoded or copied by extends (the load budget of a stack)"
            )));
        }
        Ok(())
    }
}

/// Nodes (every value, keys included) and bytes of text (strings, keys and tags) of
/// `value`, walked without recursion.
pub(crate) fn size(value: &Value) -> (u64, u64) {
    walk(vec![value], 0)
}

/// [`size`] of a mapping.
pub(crate) fn size_of_mapping(map: &Mapping) -> (u64, u64) {
    walk(map.iter().flat_map(|(k, v)| [k, v]).collect(), 1)
}

fn walk(mut todo: Vec<&Value>, mut nodes: u64) -> (u64, u64) {
    let mut text = 0u64;
    while let Some(v) = todo.pop() {
        nodes += 1;
        match v {
            Value::String(s) => text += s.len() as u64,
            Value::Sequence(seq) => todo.extend(seq.iter()),
            Value::Mapping(m) => {
                for (k, v) in m {
                    todo.push(k);
                    todo.push(v);
                }
            }
            Value::Tagged(t) => {
                text += t.tag.to_string().len() as u64;
                todo.push(&t.value);
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    (nodes, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let v: Value = serde_yaml_ng::from_str("{a: [1, bc], d: !t x}").unwrap();
        // The mapping, a, the list, 1, bc, d, the tagged value and x; text a, bc, d, !t, x.
        assert_eq!(size(&v), (8, 1 + 2 + 1 + 2 + 1));
    }

    #[test]
    fn each_budget_names_itself() {
        let mut b = Budget::default();
        for _ in 0..MAX_DEPTH {
            b.enter().unwrap();
        }
        let e = b.enter().unwrap_err();
        assert_eq!(
            e.message,
            "more than 64 nested include/extends levels (the load budget of a stack)"
        );
        b.leave();
        b.enter().unwrap();

        let mut b = Budget::default();
        for _ in 0..MAX_FILES {
            b.file().unwrap();
        }
        let e = b.file().unwrap_err();
        assert!(
            e.message.starts_with("more than 256 compose and env files read"),
            "{e:?}"
        );

        let mut b = Budget::default();
        b.bytes(MAX_BYTES).unwrap();
        let e = b.bytes(1).unwrap_err();
        assert!(
            e.message.starts_with("more than 8 MiB read from compose and env files"),
            "{e:?}"
        );

        let mut b = Budget::default();
        let list = Value::Sequence(vec![Value::Null; 99_999]);
        for _ in 0..MAX_NODES / 100_000 {
            b.nodes(&list).unwrap();
        }
        let e = b.copy(&Value::Null).unwrap_err();
        assert_eq!(
            e.message,
            "more than 500000 YAML nodes decoded or copied by extends (the load budget of a stack)"
        );

        let mut b = Budget::default();
        b.text(MAX_TEXT).unwrap();
        let doc: Mapping = serde_yaml_ng::from_str("a: b").unwrap();
        assert_eq!(size_of_mapping(&doc), (3, 2));
        let e = b.text_of(&doc).unwrap_err();
        assert!(e.message.starts_with("more than 32 MiB of values"), "{e:?}");
    }
}
