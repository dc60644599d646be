//! The one way hlsys turns YAML text into a [`serde_yaml_ng::Value`]: [`parse_bounded`].
//! Every compose file (and any file a compose file pulls in) must be read through it, so
//! no YAML input can cost more than a few milliseconds or a few MiB.
//!
//! serde_yaml_ng (libyaml underneath) stays the parser that builds the `Value`: its scalar
//! typing and error positions are what the parity tests pin against `docker compose`. In
//! front of it runs a budget pass over the event stream of saphyr-parser (pure Rust, no
//! alias expansion, O(input)), which refuses before libyaml sees the text:
//!
//! - nesting deeper than [`MAX_DEPTH`]: libyaml's scanner is quadratic in flow depth,
//!   and serde_yaml_ng's own limit of 128 is only applied after the scan (README,
//!   "Measurements");
//! - "excessive aliasing", with the rule of Go's yaml.v3 that Compose uses: once more
//!   than 100 alias-expanded nodes and 1,000 decoded nodes are seen, the share of
//!   alias-expanded nodes may not exceed 99 % (up to 400,000 decoded nodes), falling
//!   linearly to 10 % at 4,000,000. Sizes are computed per anchor, never expanded, so a
//!   "billion laughs" file is refused in the time it takes to read it;
//! - an alias inside the node its anchor names (a value containing itself);
//! - more than [`MAX_NODES`] nodes decoded in all (aliases expanded).
//!
//! Where saphyr-parser refuses text that libyaml might accept (they differ in corners of
//! the spec), libyaml decides, behind a cruder guard: the text may hold at most
//! [`MAX_DEPTH`] × 8 flow openers in all, and decoding may visit at most [`MAX_NODES`]
//! nodes, aliases expanded, before the `Value` is built.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_yaml_ng::Value;

/// Deepest nesting of collections accepted. serde_yaml_ng refuses deeper than 128 anyway.
pub const MAX_DEPTH: usize = 128;
/// Most nodes one document may decode to, aliases expanded. Real compose files have a
/// few thousand; a 4 MiB file of one-character items has two million, which cost
/// serde_yaml_ng 5 s and 400 MiB.
pub const MAX_NODES: u64 = 100_000;

/// A YAML file that could not be read. Carries a position and a reason, never text
/// from the file (a value may be a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", position(*.line, *.column))]
pub struct YamlError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

/// Parses one YAML document from `bytes` (already size-capped by [`crate::bounded`]),
/// within the budgets above. `file` only names the file in errors.
pub fn parse_bounded(bytes: &[u8], file: &Path) -> Result<Value, YamlError> {
    let text = crate::bounded::utf8(bytes.to_vec()).map_err(|e| YamlError {
        file: file.to_path_buf(),
        line: None,
        column: None,
        message: e.to_string(),
    })?;
    parse_str_bounded(&text, file)
}

/// Most aliases (counted as `*` bytes) a text may hold and skip the budget pass.
const FAST_PATH_MAX_ALIASES: u32 = 6;

/// Whether the bytes alone prove the budgets hold, so the event pass can be skipped (it
/// costs about a fifth of reading a typical compose file). A text of `n` bytes holds at
/// most `2n + 1` nodes (`{:}` is two empty nodes in one byte); an alias repeats an anchored
/// node that is complete, so it at most doubles what was decoded before it: with `a`
/// aliases at most `(2n + 1) · 2^a`
/// nodes are decoded, of which at most `1 - 2^-a` come from aliases (under yaml.v3's 99 %
/// for `a <= 6`). At most [`MAX_DEPTH`] `[` and `{` bound the flow depth libyaml is
/// quadratic in; deeper block nesting is refused cheaply by serde_yaml_ng's own limit.
fn within_budget_by_bytes(text: &str) -> bool {
    let (mut stars, mut openers) = (0u32, 0usize);
    for b in text.bytes() {
        match b {
            b'*' => stars += 1,
            b'[' | b'{' => openers += 1,
            _ => {}
        }
    }
    let nodes = 2 * text.len() as u64 + 1;
    openers <= MAX_DEPTH && stars <= FAST_PATH_MAX_ALIASES && nodes << stars <= MAX_NODES
}

/// [`parse_bounded`] for text already decoded.
pub fn parse_str_bounded(text: &str, file: &Path) -> Result<Value, YamlError> {
    let err = |line, column, message: String| YamlError {
        file: file.to_path_buf(),
        line,
        column,
        message,
    };
    let checked = if within_budget_by_bytes(text) {
        Ok(())
    } else {
        budget_pass(text)
    };
    match checked {
        Ok(()) => {}
        Err(Refusal::Budget { line, column, message }) => return Err(err(Some(line), Some(column), message)),
        Err(Refusal::Syntax) => fallback_guard(text).map_err(|m| err(None, None, m.to_string()))?,
    }
    serde_yaml_ng::from_str(text).map_err(|e| libyaml_error(file, e))
}

/// A serde_yaml_ng error as position + reason. Its messages name YAML constructs, not
/// content; the " at line L column C" suffix moves into the fields.
fn libyaml_error(file: &Path, e: serde_yaml_ng::Error) -> YamlError {
    let mut message = e.to_string();
    let (mut line, mut column) = (None, None);
    if let Some(loc) = e.location() {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        message = message.replacen(&suffix, "", 1);
        (line, column) = (Some(loc.line()), Some(loc.column()));
    }
    YamlError {
        file: file.to_path_buf(),
        line,
        column,
        message,
    }
}

enum Refusal {
    Budget {
        line: usize,
        column: usize,
        message: String,
    },
    /// saphyr-parser did not accept the text; libyaml gets to say why (or accept it).
    Syntax,
}

/// yaml.v3's `allowedAliasRatio`.
fn allowed_alias_ratio(decoded: u64) -> f64 {
    const LOW: u64 = 400_000;
    const HIGH: u64 = 4_000_000;
    match decoded {
        d if d <= LOW => 0.99,
        d if d >= HIGH => 0.10,
        d => 0.99 - 0.89 * ((d - LOW) as f64 / (HIGH - LOW) as f64),
    }
}

/// One open collection during the budget pass.
struct Open {
    anchor: usize,
    /// Nodes it decodes to so far, itself included.
    size: u64,
    /// A mapping expecting a key next (keys `<<` are not decoded by yaml.v3).
    mapping_key_next: Option<bool>,
}

/// yaml.v3's counters for one document.
#[derive(Default)]
struct Counts {
    decoded: u64,
    aliased: u64,
}

impl Counts {
    fn too_many(&self) -> bool {
        self.decoded > MAX_NODES
    }

    fn excessive(&self) -> bool {
        self.aliased > 100
            && self.decoded > 1000
            && self.aliased as f64 / self.decoded as f64 > allowed_alias_ratio(self.decoded)
    }
}

/// Walks the events once, tracking depth and yaml.v3's decode/alias counters with the
/// decoded size of every anchored node (saturating: sizes are never materialized).
fn budget_pass(text: &str) -> Result<(), Refusal> {
    let mut parser = Parser::new_from_str(text);
    let mut open: Vec<Open> = Vec::new();
    let mut sizes: HashMap<usize, u64> = HashMap::new();
    let mut counts = Counts::default();
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|_| Refusal::Syntax)?;
        let refuse = |message: String| Refusal::Budget {
            line: span.start.line(),
            column: span.start.col() + 1,
            message,
        };
        let (node_size, anchor, opens) = match event {
            Event::DocumentStart(_) => {
                counts = Counts::default();
                continue;
            }
            Event::SequenceStart(anchor, _) => (1, anchor, Some(None)),
            Event::MappingStart(anchor, _) => (1, anchor, Some(Some(true))),
            Event::SequenceEnd | Event::MappingEnd => {
                let done = open.pop().expect("parser balances collections");
                if done.anchor != 0 {
                    sizes.insert(done.anchor, done.size);
                }
                add_to_parent(&mut open, done.size);
                continue;
            }
            Event::Scalar(value, style, anchor, _) => {
                let is_key = key_position(&mut open);
                let merge_key = is_key && style == ScalarStyle::Plain && value == "<<";
                (u64::from(!merge_key), anchor, None)
            }
            Event::Alias(id) => {
                key_position(&mut open);
                if open.iter().any(|o| o.anchor == id) {
                    return Err(refuse("an alias refers to the node that contains it".into()));
                }
                let target = sizes.get(&id).copied().unwrap_or(0);
                counts.aliased = counts.aliased.saturating_add(target);
                counts.decoded = counts.decoded.saturating_add(1 + target);
                check(&counts).map_err(|b| refuse(b.to_string()))?;
                add_to_parent(&mut open, 1 + target);
                continue;
            }
            _ => continue,
        };
        counts.decoded += node_size;
        check(&counts).map_err(|b| refuse(b.to_string()))?;
        match opens {
            Some(mapping) => {
                if open.len() >= MAX_DEPTH {
                    return Err(refuse(format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                key_position(&mut open);
                open.push(Open {
                    anchor,
                    size: 1,
                    mapping_key_next: mapping,
                });
            }
            None => {
                if anchor != 0 {
                    sizes.insert(anchor, node_size);
                }
                add_to_parent(&mut open, node_size);
            }
        }
    }
    Ok(())
}

/// Why a document is refused before serde_yaml_ng may decode it.
#[derive(Debug, thiserror::Error)]
enum OverBudget {
    #[error("document contains excessive aliasing")]
    ExcessiveAliasing,
    #[error("document has more than {max} nodes (aliases expanded)", max = MAX_NODES)]
    TooManyNodes,
    #[error(
        "not parsed: the YAML is not accepted by the bounded parser and holds {0} '[' or '{{', \
         more than hlsys lets libyaml scan ({max})",
        max = MAX_DEPTH * 8
    )]
    TooManyFlowOpeners(usize),
}

fn check(counts: &Counts) -> Result<(), OverBudget> {
    if counts.excessive() {
        return Err(OverBudget::ExcessiveAliasing);
    }
    if counts.too_many() {
        return Err(OverBudget::TooManyNodes);
    }
    Ok(())
}

/// Whether the node about to be added to the innermost collection is a mapping key;
/// advances the key/value alternation.
fn key_position(open: &mut [Open]) -> bool {
    match open.last_mut().and_then(|o| o.mapping_key_next.as_mut()) {
        Some(key_next) => {
            let was = *key_next;
            *key_next = !was;
            was
        }
        None => false,
    }
}

fn add_to_parent(open: &mut [Open], size: u64) {
    if let Some(parent) = open.last_mut() {
        parent.size = parent.size.saturating_add(size);
    }
}

/// The guard used when the budget pass could not parse the text: a cap on flow openers
/// (an upper bound of flow depth, counted without tokenizing) and a counted decode.
fn fallback_guard(text: &str) -> Result<(), OverBudget> {
    let openers = text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
    if openers > MAX_DEPTH * 8 {
        return Err(OverBudget::TooManyFlowOpeners(openers));
    }
    use serde::de::DeserializeSeed;
    let budget = std::cell::Cell::new(MAX_NODES);
    // One document is all a compose file may hold (the real parse refuses more).
    let Some(doc) = serde_yaml_ng::Deserializer::from_str(text).next() else {
        return Ok(());
    };
    // Syntax errors are left to the real parse, which reports them with a position.
    match (Probe { budget: &budget }).deserialize(doc) {
        Err(_) if budget.get() == 0 => Err(OverBudget::TooManyNodes),
        _ => Ok(()),
    }
}

/// Visits a document without building it, counting nodes (aliases expanded) down to 0.
#[derive(Clone, Copy)]
struct Probe<'a> {
    budget: &'a std::cell::Cell<u64>,
}

impl Probe<'_> {
    fn take<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.budget.get() {
            0 => Err(E::custom("node budget exhausted")),
            n => {
                self.budget.set(n - 1);
                Ok(())
            }
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Probe<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Probe<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.take()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.take()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.take()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.take()
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.take()
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.take()?;
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.take()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.take()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        self.take()?;
        let (_, variant) = data.variant_seed(std::marker::PhantomData::<serde::de::IgnoredAny>)?;
        variant.newtype_variant_seed(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Value, YamlError> {
        parse_str_bounded(text, Path::new("/t/compose.yaml"))
    }

    /// `n` anchors, each a list of `width` aliases of the previous one.
    fn laughs(n: usize, width: usize) -> String {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..n {
            let items = vec![format!("*a{}", i - 1); width].join(", ");
            s.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        s
    }

    #[test]
    fn ordinary_anchors_and_merges_pass() {
        let v = parse("x-a: &a {image: x}\nservices:\n  web:\n    <<: *a\n  db: *a\n").unwrap();
        assert_eq!(v["services"]["db"]["image"], Value::String("x".into()));
    }

    #[test]
    fn billion_laughs_is_refused() {
        let e = parse(&laughs(9, 10)).unwrap_err();
        assert!(e.message.contains("excessive aliasing"), "{e}");
        // Flat: many aliases of one big list.
        // Within the node budget, but 99.01 % of the nodes come from aliases.
        let mut flat = format!("big: &b [{}]\n", vec!["x"; 300].join(", "));
        for i in 0..300 {
            flat.push_str(&format!("k{i}: *b\n"));
        }
        let e = parse(&flat).err().map(|e| e.message);
        assert!(e.as_deref().is_some_and(|m| m.contains("excessive aliasing")), "{e:?}");
    }

    #[test]
    fn huge_documents_are_refused_by_node_count() {
        let flat = format!("x: [{}]\n", vec!["1"; MAX_NODES as usize + 10].join(","));
        assert!(parse(&flat).unwrap_err().message.contains("nodes"));
    }

    #[test]
    fn small_alias_use_stays_within_the_ratio() {
        assert!(parse(&laughs(3, 5)).is_ok());
    }

    #[test]
    fn the_byte_check_admits_only_alias_free_shallow_small_text() {
        assert!(within_budget_by_bytes("services:\n  web: {image: x, ports: [80]}\n"));
        assert!(within_budget_by_bytes("a: &a [1]\nb: *a\n"));
        assert!(!within_budget_by_bytes(
            &"*a ".repeat(FAST_PATH_MAX_ALIASES as usize + 1)
        ));
        assert!(!within_budget_by_bytes(&"[".repeat(MAX_DEPTH + 1)));
        assert!(!within_budget_by_bytes(&"a".repeat(MAX_NODES as usize / 2)));
        // Deep block nesting within 64 KiB is still refused, by serde_yaml_ng.
        let block: String = (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        assert!(within_budget_by_bytes(&block));
        assert!(parse(&block).is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}{}", "[".repeat(80_000), "]".repeat(80_000));
        assert!(parse(&deep).is_err());
        let deep = format!("a: {}x{}", "[".repeat(140), "]".repeat(140));
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("nesting"), "{e}");
        let block: String = (0..5000).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        assert!(parse(&block).is_err());
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(&ok).is_ok());
    }

    use proptest::prelude::*;

    /// YAML built from fragments that exercise anchors, aliases (also to anchors not
    /// yet defined, or to the node being defined), merge keys and nesting, in block and
    /// flow style; mostly valid, sometimes not.
    fn yamlish() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("x".to_owned()),
            Just("1".to_owned()),
            Just("\"q\"".to_owned()),
            (0..4u8).prop_map(|i| format!("*a{i}")),
            (0..4u8).prop_map(|i| format!("&a{i} v")),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(", "))),
                proptest::collection::vec((0..6u8, inner.clone()), 0..6).prop_map(|v| {
                    let items: Vec<String> = v.iter().map(|(k, x)| format!("k{k}: {x}")).collect();
                    format!("{{{}}}", items.join(", "))
                }),
                (0..4u8, inner.clone()).prop_map(|(i, x)| format!("&a{i} {x}")),
                (0..4u8).prop_map(|i| format!("{{<<: *a{i}, m: 1}}")),
                (0..4u8).prop_map(|i| format!("{{<<: [*a{i}, *a0], m: 1}}")),
            ]
        })
    }

    fn document() -> impl Strategy<Value = String> {
        proptest::collection::vec((0..8u8, yamlish()), 1..8)
            .prop_map(|entries| entries.iter().map(|(k, v)| format!("k{k}: {v}\n")).collect())
    }

    proptest! {
        /// The front end never panics, and what it accepts is exactly what serde_yaml_ng
        /// alone makes of the text: it only ever refuses, it never changes a document.
        #[test]
        fn accepts_only_what_libyaml_reads_the_same(doc in document()) {
            if let Ok(v) = parse(&doc) {
                let plain: Value = serde_yaml_ng::from_str(&doc).unwrap();
                prop_assert_eq!(v, plain);
            }
        }

        /// Whatever the YAML, reading it as a compose file ends in a value or an error.
        #[test]
        fn compose_reading_never_panics(doc in document()) {
            let svc = format!("services:\n  web: {{image: x, labels: {{a: 1}}}}\n{doc}");
            let _ = crate::compose::parse(&svc, "p", Path::new("/p"), &Default::default());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_bounded(&bytes, Path::new("/t/compose.yaml"));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        // Neither panics nor overflows the stack, whatever the depth or fan-out. How fast
        // they are refused is the benchmark's business (benches/), not a wall-clock assert.
        fn deep_or_aliased_documents_never_panic(depth in 100usize..3000, width in 2usize..20) {
            let _ = parse(&format!("a: {}x{}", "[".repeat(depth), "]".repeat(depth)));
            let _ = parse(&laughs(8, width));
        }
    }

    #[test]
    fn errors_carry_position_not_content() {
        let e = parse("services:\n  web:\n    image: \"s3cr3t\\q\"\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e:?}");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }
}
