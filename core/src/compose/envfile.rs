//! `.env` files as Compose reads them: a port of compose-go v2's `dotenv` parser as built into
//! `docker compose` v2.40.3 (compose-go v2.9.1), including its quirks, which the tests pin down
//! against the real binary.
//!
//! Summary of the syntax: `KEY=VALUE`, `KEY: VALUE`, optional `export ` prefix, `#` comment
//! lines, blank lines; unquoted values end at the line end, lose a ` #…` inline comment and
//! trailing whitespace, and are interpolated; single-quoted values are literal; double-quoted
//! values process escapes (`\n`, `\t`, `\"`, `\\`, `\$`, `\0NNN` octal, …) and are then
//! interpolated; quoted values may span lines. A bare `KEY` line is compose's "inherit from the
//! process environment"; here it keeps the key's value from earlier lines or files, if any.
//! (A bare `KEY` on the last line *without* a newline is, as in compose, the value of the
//! empty key.)
//!
//! Unlike compose, no process environment is consulted anywhere: hlsys resolves stacks from
//! files alone, so the only variables visible to a file are those of earlier files and earlier
//! lines.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::compose::interpolate::{interpolate, Env};

/// Why .env text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EnvParseError {
    /// 1-based line of the statement at fault.
    pub line: usize,
    pub message: String,
}

/// Why an env file could not be used: `file:line: message`, or `file: message` when the
/// file as a whole is at fault.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct EnvFileError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// Parses .env text. Variables in values resolve first from keys defined earlier in this same
/// text, then from `lookup` (compose resolves from one map of all files read so far, in which
/// the current file's keys override earlier files'). A bare `KEY` line keeps the key's value
/// from earlier in this text, else takes it from `lookup`, else is ignored.
///
/// Returns the pairs in order of first definition; a redefined key keeps its first position and
/// takes the new value (the file behaves as a map, as in compose).
pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>, EnvParseError> {
    parse_under(text, &|_| None, lookup)
}

/// [`parse`] where `first` wins over everything, this text's earlier keys included:
/// compose-go's lookup for an `include`d project's env files looks at the including
/// project's variables before anything the files define (dotenv.GetEnvFromFile).
pub fn parse_under(
    text: &str,
    first: &dyn Fn(&str) -> Option<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, EnvParseError> {
    // Editors on Windows like to prepend a BOM; compose strips it.
    let src = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut out = Defined::default();
    let mut cur = src;
    loop {
        cur = statement_start(cur);
        if cur.is_empty() {
            return Ok(out.pairs);
        }
        // Line numbers are only needed for errors, so compute them lazily from the offset.
        let err = |message: String| EnvParseError {
            line: src[..src.len() - cur.len()].matches('\n').count() + 1,
            message,
        };
        let (key, rest, inherited) = locate_key(cur).map_err(|e| err(e.to_string()))?;
        if key.contains(' ') {
            return Err(err("key cannot contain a space".into()));
        }
        if inherited {
            // compose fills a bare `KEY` from the process environment only, which hlsys does
            // not have; in a layered load its net effect is that the key keeps the value it
            // already has (from this text, else from earlier files), which is what we report.
            if let Some(value) = first(key) {
                out.set(key, value);
            } else if out.get(key).is_none() {
                if let Some(value) = lookup(key) {
                    out.set(key, value);
                }
            }
            cur = rest;
            continue;
        }
        // The message names the key and never quotes the value: values are secrets.
        let (value, rest) =
            extract_value(rest, &out, first, lookup).map_err(|m| err(format!("value of {key}: {m}")))?;
        out.set(key, value);
        if out.total > MAX_ENV_EXPANSION {
            return Err(err(format!(
                "value of {key}: the values up to here expand to more than {} MiB",
                MAX_ENV_EXPANSION >> 20
            )));
        }
        cur = rest;
    }
}

/// Most text the values of one env file may hold in all after interpolation (16 MiB): a
/// chain of variables each repeating the one before must not grow without bound.
pub const MAX_ENV_EXPANSION: usize = 16 << 20;

/// The pairs of one text in order of first definition, with an index by key (a file of
/// many keys must not cost a scan of all earlier keys per line).
#[derive(Default)]
struct Defined {
    pairs: Vec<(String, String)>,
    index: std::collections::HashMap<String, usize>,
    /// Bytes of all values set so far.
    total: usize,
}

impl Defined {
    fn get(&self, key: &str) -> Option<&str> {
        self.index.get(key).map(|&i| self.pairs[i].1.as_str())
    }

    fn set(&mut self, key: &str, value: String) {
        self.total += value.len();
        match self.index.get(key) {
            Some(&i) => self.pairs[i].1 = value,
            None => {
                self.index.insert(key.to_owned(), self.pairs.len());
                self.pairs.push((key.to_owned(), value));
            }
        }
    }
}

/// Reads files in precedence order (lowest first); later files override earlier ones and may
/// reference their variables. A file that does not exist is an error (callers filter out
/// optional ones first).
pub fn load_layered(files: &[PathBuf]) -> Result<BTreeMap<String, String>, EnvFileError> {
    let mut env = Env::new();
    load_onto(&mut env, files)?;
    Ok(env.to_map())
}

/// [`load_layered`] on top of variables already loaded from lower-precedence files: the
/// new ones go into `env`'s top layer (a shared base below it is looked through, never
/// copied).
pub fn load_onto(env: &mut Env, files: &[PathBuf]) -> Result<(), EnvFileError> {
    for file in files {
        let parsed = read_file(file, &|_| None, &|k| env.get(k).cloned())?;
        env.extend(parsed);
    }
    Ok(())
}

/// The variables one env file of an `include`d project defines, read as compose-go's
/// GetEnvFromFile reads it: a reference resolves first from `parent` (the including
/// project's variables, not part of the result), then from what this file and `earlier`
/// (the entry's env files before it) define.
pub fn load_included(
    file: &std::path::Path,
    parent: &Env,
    earlier: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, EnvFileError> {
    read_file(file, &|k| parent.get(k).cloned(), &|k| earlier.get(k).cloned())
}

/// Reads and parses one env file. Compose reads bytes, so bytes that are not UTF-8 in a
/// comment are fine; in a key or value hlsys cannot carry them, and says on which line
/// (never what the bytes are).
fn read_file(
    file: &std::path::Path,
    first: &dyn Fn(&str) -> Option<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, EnvFileError> {
    let error = |line, message: String| EnvFileError {
        file: file.to_path_buf(),
        line,
        message,
    };
    let bytes = crate::bounded::read(file, crate::bounded::ENV_CAP).map_err(|e| error(None, e.to_string()))?;
    let (text, bad_line) = match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let bytes = e.into_bytes();
            let line = first_bad_line(&bytes);
            (String::from_utf8_lossy(&bytes).into_owned(), Some(line))
        }
    };
    let parsed = parse_under(&text, first, lookup).map_err(|e| error(Some(e.line), e.message))?;
    if let Some(line) = bad_line {
        if parsed
            .iter()
            .any(|(k, v)| k.contains('\u{FFFD}') || v.contains('\u{FFFD}'))
        {
            return Err(error(
                Some(line),
                "a key or value is not valid UTF-8, which hlsys cannot pass on".into(),
            ));
        }
    }
    Ok(parsed)
}

/// The first line holding bytes that are not UTF-8 outside a comment line (else the
/// first holding any).
fn first_bad_line(bytes: &[u8]) -> usize {
    let bad: Vec<(usize, &[u8])> = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| std::str::from_utf8(l).is_err())
        .map(|(i, l)| (i + 1, l))
        .collect();
    let is_comment = |l: &[u8]| l.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'#');
    bad.iter()
        .find(|(_, l)| !is_comment(l))
        .or(bad.first())
        .map_or(1, |(i, _)| *i)
}

/// compose's `isSpace`: whitespace that is not a line break.
fn is_space(c: char) -> bool {
    matches!(c, '\t' | '\u{B}' | '\u{C}' | '\r' | ' ' | '\u{85}' | '\u{A0}')
}

/// Skips whitespace (including newlines) and `#` comment lines; "" means end of input.
fn statement_start(mut src: &str) -> &str {
    loop {
        src = src.trim_start_matches(char::is_whitespace);
        if !src.starts_with('#') {
            return src;
        }
        src = src.find('\n').map_or("", |i| &src[i..]);
    }
}

/// What is wrong with one statement of an env file. Holds names and positions, never text
/// of a value (values are secrets).
#[derive(Debug, thiserror::Error)]
enum StatementError {
    #[error("zero length string")]
    EmptyKey,
    #[error("unexpected character at column {0} of a variable name")]
    KeyCharacter(usize),
    #[error("unterminated quoted value")]
    UnterminatedQuote,
    #[error("required variable {0} is missing a value")]
    Required(String),
    #[error("{0}")]
    Interpolation(crate::compose::interpolate::InterpolateError),
}

/// Splits `[export ]KEY` off a statement. Returns the key, the rest after the `=`/`:`
/// (leading spaces trimmed) and whether the key stood alone on its line ("inherited").
fn locate_key(src: &str) -> Result<(&str, &str, bool), StatementError> {
    // compose matches `^export\s+` (Go's `\s` is ASCII whitespace without \v) but then trims
    // only non-newline spaces, so `export\nKEY=…` leaves an empty inherited key behind.
    let src = match src.strip_prefix("export") {
        Some(rest) if rest.starts_with(['\t', '\n', '\u{C}', '\r', ' ']) => rest.trim_start_matches(is_space),
        _ => src,
    };
    if src.is_empty() {
        return Err(StatementError::EmptyKey);
    }
    // Spaces are skipped here and rejected by the caller, after the key has been delimited.
    // A key running to the end of input without `=` or newline is *not* inherited: compose
    // then treats the whole text as the value of the empty key (`FOO` at EOF gives `=FOO`).
    let (mut key, mut offset, mut inherited) = ("", 0, false);
    for (i, c) in src.char_indices() {
        match c {
            c if is_space(c) => {}
            '=' | ':' | '\n' => {
                (key, offset, inherited) = (&src[..i], i + 1, c == '\n');
                break;
            }
            // compose uses Go's unicode.IsLetter/IsNumber; `is_alphabetic` is a slightly
            // wider class (it includes some combining marks).
            c if c.is_alphabetic() || c.is_numeric() || "_.-[]".contains(c) => {}
            // Neither the character nor the line is quoted: a line without `=` may be a
            // value pasted on its own.
            _ => {
                return Err(StatementError::KeyCharacter(src[..i].chars().count() + 1));
            }
        }
    }
    let key = key.trim_end_matches(char::is_whitespace);
    Ok((key, src[offset..].trim_start_matches(is_space), inherited))
}

/// Reads the value at the start of `src`; returns it expanded and the text after it.
fn extract_value<'a>(
    src: &'a str,
    defined: &Defined,
    first: &dyn Fn(&str) -> Option<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, &'a str), StatementError> {
    // Earlier keys of this same text win over the lookup (compose-go's expandVariables),
    // not over `first` (see [`parse_under`]).
    let resolve = |name: &str| {
        first(name)
            .or_else(|| defined.get(name).map(str::to_owned))
            .or_else(|| lookup(name))
    };
    let expand = |s: &str| interpolate(s, &resolve).map_err(interpolation_error);

    let quote = match src.chars().next() {
        Some(q @ ('"' | '\'')) => q,
        _ => {
            let (line, rest) = src.split_once('\n').unwrap_or((src, ""));
            // Only ` #` starts an inline comment: `a#b` and `a\t#b` keep their `#`.
            let value = line.split(" #").next().unwrap_or("");
            return Ok((expand(value.trim_end_matches(char::is_whitespace))?, rest));
        }
    };

    // Find the closing quote. A backslash escapes the next character; an escaped quote loses
    // its backslash (in single quotes too), any other escape is kept for `expand_escapes`.
    let mut raw = String::new();
    let mut escaped = false;
    for (i, c) in src.char_indices().skip(1) {
        if escaped {
            escaped = false;
            if c != quote {
                raw.push('\\');
            }
            raw.push(c);
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            let rest = &src[i + 1..];
            // Text after the closing quote is parsed as the next statement, as in compose.
            return if quote == '"' {
                Ok((expand(&expand_escapes(&raw))?, rest))
            } else {
                Ok((raw, rest))
            };
        } else {
            raw.push(c);
        }
    }
    Err(StatementError::UnterminatedQuote)
}

/// An interpolation error in an env file, without the `${VAR:?message}` text: in an env
/// file that text is part of a value.
fn interpolation_error(e: crate::compose::interpolate::InterpolateError) -> StatementError {
    match e {
        crate::compose::interpolate::InterpolateError::Required { var, .. } => StatementError::Required(var),
        other => StatementError::Interpolation(other),
    }
}

/// compose's escape handling for double-quoted values: the regex
/// `\\(?:[abcfnrtv$"\\]|0\d{0,3})` rewritten through Go's `strconv.UnquoteChar`. Anything Go
/// cannot unquote (`\c`, `\01`, `\0999`, `\x41`, …) is kept as written, after compose's
/// rewrite of `\0` to `\` (so `\0` alone becomes `\`).
fn expand_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let Some(c) = after.chars().next() else {
            out.push('\\');
            rest = after;
            break;
        };
        rest = &after[c.len_utf8()..];
        match c {
            // `$$` is the interpolation escape, so `\$` yields a literal `$`.
            '$' => out.push_str("$$"),
            '0' => {
                let n = rest.bytes().take(3).take_while(u8::is_ascii_digit).count();
                let digits = &rest[..n];
                rest = &rest[n..];
                // Go's octal escape needs exactly three octal digits with a value <= 0o377.
                match u32::from_str_radix(digits, 8).ok().filter(|v| n == 3 && *v <= 0o377) {
                    Some(v) => out.extend(char::from_u32(v)),
                    None => {
                        out.push('\\');
                        out.push_str(digits);
                    }
                }
            }
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{C}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{B}'),
            '"' | '\\' => out.push(c),
            // Not an escape (or `\c`, which the regex matches but Go rejects): keep the
            // backslash and rescan from the next character.
            _ => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn no_lookup(_: &str) -> Option<String> {
        None
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    type Parsed = Result<Vec<(String, String)>, EnvParseError>;

    fn err(line: usize, message: &str) -> Parsed {
        Err(EnvParseError {
            line,
            message: message.into(),
        })
    }

    /// Every expectation here was observed with `docker compose` v2.40.3
    /// (`config --environment` with `--env-file`), except error line numbers: compose counts
    /// lines inconsistently after multi-line values; we report the statement's first line.
    #[test]
    fn table() {
        let ok = |list: &[(&str, &str)]| Ok(pairs(list));
        let cases: &[(&str, Parsed)] = &[
            ("A=1\n", ok(&[("A", "1")])),
            ("A=1", ok(&[("A", "1")])),
            ("export B=2\n", ok(&[("B", "2")])),
            (
                "export  A=1\nexportB=2\nexport\tC=3\n",
                ok(&[("A", "1"), ("exportB", "2"), ("C", "3")]),
            ),
            ("  C = 3  \n", ok(&[("C", "3")])),
            ("# comment\n\n  # indented\nA=1 # trailing\n", ok(&[("A", "1")])),
            ("D=x #c\nE=x#c\nF= #c\n", ok(&[("D", "x"), ("E", "x#c"), ("F", "#c")])),
            ("B=a\tb\t#c\n", ok(&[("B", "a\tb\t#c")])),
            ("G=\nH=", ok(&[("G", ""), ("H", "")])),
            ("I: yaml\n", ok(&[("I", "yaml")])),
            (
                "1A=x\nA.b-c[0]=x\nÉ=1\n",
                ok(&[("1A", "x"), ("A.b-c[0]", "x"), ("É", "1")]),
            ),
            ("A\tB=1\n", ok(&[("A\tB", "1")])), // only a space is rejected in keys
            ("A=1\nA=2\n", ok(&[("A", "2")])),
            // single quotes: literal, except that `\'` is an escaped quote
            ("J='s $A \\n'\n", ok(&[("J", "s $A \\n")])),
            ("A='a\\'b'\n", ok(&[("A", "a'b")])),
            ("N='multi\nsingle'\n", ok(&[("N", "multi\nsingle")])),
            // double quotes: escapes, then interpolation
            (
                "A=1\nK=\"d $A \\n \\t \\\" \\\\ \\$A\"\n",
                ok(&[("A", "1"), ("K", "d 1 \n \t \" \\ $A")]),
            ),
            ("M=\"multi\nline\"\n", ok(&[("M", "multi\nline")])),
            ("A=\"a\\\\\"\nB=2\n", ok(&[("A", "a\\"), ("B", "2")])),
            (
                "A=\"\\0\"\nB=\"\\0101\"\nC=\"\\a\\c\\x41\\e\"\nD=\"\\01\"\nE=\"\\0377\"\n",
                ok(&[
                    ("A", "\\"),
                    ("B", "A"),
                    ("C", "\u{7}\\c\\x41\\e"),
                    ("D", "\\1"),
                    ("E", "ÿ"),
                ]),
            ),
            ("A = \"quoted\" # comment\n", ok(&[("A", "quoted")])),
            // text after a closing quote starts the next statement
            ("A=\"x\"y\nB=2\n", ok(&[("A", "x"), ("B", "2")])),
            ("A=\"x\" B=2\n", ok(&[("A", "x"), ("B", "2")])),
            // unquoted values interpolate; `$$` escapes
            ("A=1\nL=$A${A}$$A\n", ok(&[("A", "1"), ("L", "11$A")])),
            ("A=${UNSET:-d}\n", ok(&[("A", "d")])),
            // a key alone on its line is looked up (in earlier files only)
            ("A=1\nA\nB=$A", ok(&[("A", "1"), ("B", "1")])),
            ("H\n", ok(&[])),
            // …but at end of input it becomes the value of the empty key
            ("A=1\nFOO", ok(&[("A", "1"), ("", "FOO")])),
            ("export\n", ok(&[])),
            ("A=1\r\nB=\"q\"\r\nC\r\n", ok(&[("A", "1"), ("B", "q")])),
            ("\u{FEFF}A=1\n", ok(&[("A", "1")])),
            ("", ok(&[])),
            // errors
            ("export ", err(1, "zero length string")),
            ("x=1\nA B=1\n", err(2, "key cannot contain a space")),
            ("A!=1\n", err(1, "unexpected character at column 2 of a variable name")),
            (
                "A=\"unterminated\nB=1\n",
                err(1, "value of A: unterminated quoted value"),
            ),
            ("A='a\\'\nB=1\n", err(1, "value of A: unterminated quoted value")),
            (
                "\nA=${\n",
                err(
                    2,
                    "value of A: invalid interpolation format at character 1 of the value: you may need to escape any $ with another $",
                ),
            ),
            (
                "A=${UNSET:?boom}\n",
                err(1, "value of A: required variable UNSET is missing a value"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&parse(input, &no_lookup), want, "input {input:?}");
        }
    }

    #[test]
    fn the_first_lookup_wins_over_this_text() {
        let first = |k: &str| (k == "P").then(|| "parent".to_owned());
        let lookup = |k: &str| (k == "Q").then(|| "earlier".to_owned());
        assert_eq!(
            parse_under("P=own\nA=${P}-${Q}\nP\n", &first, &lookup).unwrap(),
            vec![("P".into(), "parent".into()), ("A".into(), "parent-earlier".into())]
        );
    }

    #[test]
    fn lookup_and_same_file_precedence() {
        let lookup = |k: &str| match k {
            "A" => Some("from-lookup".to_owned()),
            "X" => Some("x1".to_owned()),
            _ => None,
        };
        // The same file's earlier keys win over the lookup, also for a bare key; otherwise a
        // bare key copies the lookup value.
        assert_eq!(
            parse("A=2\nB=${A}\nA\nC=$X\nX\nU\n", &lookup).unwrap(),
            pairs(&[("A", "2"), ("B", "2"), ("C", "x1"), ("X", "x1")])
        );
    }

    #[test]
    fn layered_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let l1 = write("l1", "A=1\nX=x1\nKEEP=k\n");
        let l2 = write("l2", "A=2\nB=${A}\nA\nX\nU\nC=$X\n");
        let env = load_layered(&[l1.clone(), l2.clone()]).unwrap();
        let want: BTreeMap<String, String> = pairs(&[("A", "2"), ("B", "2"), ("C", "x1"), ("KEEP", "k"), ("X", "x1")])
            .into_iter()
            .collect();
        assert_eq!(env, want);

        // References see earlier files until this file redefines the key.
        let l3 = write("l3", "B=$A\nA=2\nC=$A\nX\nD=$X\n");
        let env = load_layered(&[l1.clone(), l3]).unwrap();
        let want: BTreeMap<String, String> = pairs(&[
            ("A", "2"),
            ("B", "1"),
            ("C", "2"),
            ("D", "x1"),
            ("KEEP", "k"),
            ("X", "x1"),
        ])
        .into_iter()
        .collect();
        assert_eq!(env, want);

        let bad = write("bad", "OK=1\nA B=1\n");
        let e = load_layered(&[l1.clone(), bad.clone()]).unwrap_err();
        assert_eq!((e.file.clone(), e.line), (bad.clone(), Some(2)));
        assert_eq!(
            e.to_string(),
            format!("{}:2: key cannot contain a space", bad.display())
        );

        let missing = dir.path().join("missing");
        let e = load_layered(&[l1, missing.clone()]).unwrap_err();
        assert_eq!((e.file, e.line), (missing, None));
    }

    /// Quotes `value` for a double-quoted .env value so that it parses back unchanged.
    fn double_quote(value: &str) -> String {
        let mut s = String::from("\"");
        for c in value.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '$' => s.push_str("\\$"),
                c => s.push(c),
            }
        }
        s.push('"');
        s
    }

    fn tricky() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("$".to_owned()),
                Just("{".to_owned()),
                Just("}".to_owned()),
                Just("\"".to_owned()),
                Just("'".to_owned()),
                Just("\\".to_owned()),
                Just("\n".to_owned()),
                Just("\r\n".to_owned()),
                Just("=".to_owned()),
                Just(" #".to_owned()),
                Just("export ".to_owned()),
                Just(" ".to_owned()),
                "[A-Za-z_0-9]{1,3}",
                any::<char>().prop_map(String::from),
            ],
            0..32,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn never_panics(text in tricky()) {
            let _ = parse(&text, &no_lookup);
        }

        #[test]
        fn never_panics_any_string(text in any::<String>()) {
            let _ = parse(&text, &no_lookup);
        }

        #[test]
        fn single_quoted_round_trips(key in "[A-Za-z_][A-Za-z0-9_]{0,8}", value in "[^'\\\\]*") {
            let text = format!("{key}='{value}'\n");
            prop_assert_eq!(parse(&text, &no_lookup), Ok(vec![(key.clone(), value.clone())]));
        }

        #[test]
        fn double_quoted_round_trips(key in "[A-Za-z_][A-Za-z0-9_]{0,8}", value in tricky()) {
            let text = format!("export {key} = {}\n", double_quote(&value));
            prop_assert_eq!(parse(&text, &no_lookup), Ok(vec![(key.clone(), value.clone())]));
        }
    }
}
