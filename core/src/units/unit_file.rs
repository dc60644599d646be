//! A unit file as data (systemd.syntax(7)): comments, then sections, each an ordered list
//! of lines `Key=values`. One writer ([`fmt::Display`]) does all the escaping and layout,
//! chosen by the key ([`syntax`]), so `units.rs` never escapes by hand; one parser reads the
//! same format back, so tests can state "the `After=` of `[Unit]` is exactly a b c" instead
//! of grepping lines.
//!
//! Values are held unescaped: `Description` holds `50% off`, the writer puts `50%% off`.

use std::fmt;

use crate::escape::{exec_arg, exec_line, exec_path, list_word, specifiers};

/// How systemd reads a key's value, and so how the writer escapes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Unit names separated by spaces (`After=`, `Wants=`…). Unit names need no escaping
    /// (they are built from checked names); the values go on one line as they are.
    Units,
    /// Paths separated by spaces that systemd unquotes (`RequiresMountsFor=`): each value
    /// quoted when it needs it, `%` doubled.
    Words,
    /// A command line (`Exec*=`): the values are its arguments, see [`exec_line`].
    Command,
    /// One value in which systemd expands specifiers (`Description=`, paths): `%` doubled.
    Text,
    /// One fixed value hlsys chooses (`Type=notify`, `TimeoutStartSec=300`): as it is.
    Plain,
}

/// An `Exec*=` argument that the writer puts as the specifier `%i` (the instance of a
/// template unit) instead of escaping it: no real argument can hold a NUL.
pub const INSTANCE_ARG: &str = "\u{0}%i";

/// The syntax of `key`, as systemd parses it.
pub fn syntax(key: &str) -> Syntax {
    match key {
        "After" | "Before" | "Wants" | "Requires" | "PartOf" | "BindsTo" => Syntax::Units,
        "RequiresMountsFor" => Syntax::Words,
        k if k.starts_with("Exec") => Syntax::Command,
        "Description"
        | "SourcePath"
        | "WorkingDirectory"
        | "EnvironmentFile"
        | "ConditionDirectoryNotEmpty"
        | "SyslogIdentifier" => Syntax::Text,
        _ => Syntax::Plain,
    }
}

/// One `Key=…` line: a key and its values (one for [`Syntax::Text`] and [`Syntax::Plain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub values: Vec<String>,
}

/// `[Name]` and its lines, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub entries: Vec<Entry>,
}

impl Section {
    /// A line with one value.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.entries.push(Entry {
            key: key.to_string(),
            values: vec![value.into()],
        });
        self
    }

    /// A line with these values; none when there are none (an empty `After=` would reset
    /// the list).
    pub fn add<S: Into<String>>(&mut self, key: &str, values: impl IntoIterator<Item = S>) -> &mut Self {
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        if !values.is_empty() {
            self.entries.push(Entry {
                key: key.to_string(),
                values,
            });
        }
        self
    }

    /// Adds values to the key's existing line (once each), or starts that line: one
    /// `After=` holding the whole set instead of one line per reason.
    pub fn merge<S: Into<String>>(&mut self, key: &str, values: impl IntoIterator<Item = S>) -> &mut Self {
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                for v in values {
                    if !e.values.contains(&v) {
                        e.values.push(v);
                    }
                }
            }
            None => {
                self.add(key, values);
            }
        }
        self
    }

    /// Every value of every `key` line, in order.
    pub fn values(&self, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.key == key)
            .flat_map(|e| e.values.iter().map(String::as_str))
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFile {
    /// Comment lines before the first section, without the `# `.
    pub comments: Vec<String>,
    pub sections: Vec<Section>,
}

impl UnitFile {
    pub fn comment(&mut self, text: impl Into<String>) -> &mut Self {
        self.comments.push(text.into());
        self
    }

    /// The section `name`, appended when it is not there yet.
    pub fn section(&mut self, name: &str) -> &mut Section {
        let i = match self.sections.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                self.sections.push(Section {
                    name: name.to_string(),
                    entries: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        &mut self.sections[i]
    }

    pub fn get(&self, section: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == section)
    }

    /// Every value of `key` in `section` (empty when either is missing).
    pub fn values(&self, section: &str, key: &str) -> Vec<&str> {
        self.get(section).map(|s| s.values(key)).unwrap_or_default()
    }

    /// Reads what [`fmt::Display`] writes. Comments inside sections are dropped.
    pub fn parse(text: &str) -> Result<UnitFile, ParseError> {
        let mut u = UnitFile::default();
        for (i, line) in text.lines().enumerate() {
            let err = |message: String| ParseError { line: i + 1, message };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(c) = line.strip_prefix('#').or_else(|| line.strip_prefix(';')) {
                if u.sections.is_empty() {
                    u.comment(c.strip_prefix(' ').unwrap_or(c));
                }
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                u.section(name);
                continue;
            }
            let Some((key, raw)) = line.split_once('=') else {
                return Err(err(format!("{line:?} is neither a section, a comment nor Key=value")));
            };
            let Some(section) = u.sections.last_mut() else {
                return Err(err(format!("{key}= before any [section]")));
            };
            let key = key.trim();
            let values = decode(syntax(key), raw.trim()).map_err(err)?;
            section.entries.push(Entry {
                key: key.to_string(),
                values,
            });
        }
        Ok(u)
    }
}

/// A unit file line [`UnitFile::parse`] cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// The text after `Key=` for `values`.
fn encode(syntax: Syntax, values: &[String]) -> String {
    match syntax {
        Syntax::Units => values.join(" "),
        Syntax::Words => values.iter().map(|v| list_word(v)).collect::<Vec<_>>().join(" "),
        Syntax::Command if values.iter().any(|v| v == INSTANCE_ARG) => values
            .iter()
            .enumerate()
            .map(|(i, v)| match (i, v.as_str()) {
                (_, INSTANCE_ARG) => "%i".to_string(),
                (0, v) => exec_path(v),
                (_, v) => exec_arg(v),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Syntax::Command => exec_line(values),
        Syntax::Text => values.iter().map(|v| specifiers(v)).collect::<Vec<_>>().join(" "),
        Syntax::Plain => values.join(" "),
    }
}

/// The values written as `raw` after `Key=`: the inverse of [`encode`].
fn decode(syntax: Syntax, raw: &str) -> Result<Vec<String>, String> {
    let unspec = |s: &str| s.replace("%%", "%");
    Ok(match syntax {
        Syntax::Units => raw.split_whitespace().map(str::to_string).collect(),
        Syntax::Words => words(raw)?.iter().map(|w| unspec(w)).collect(),
        Syntax::Command => words(raw)?
            .iter()
            .enumerate()
            // `$` is doubled in the arguments only (systemd does not expand it in the path).
            .map(|(i, w)| {
                if i == 0 {
                    unspec(w)
                } else {
                    unspec(w).replace("$$", "$")
                }
            })
            .collect(),
        Syntax::Text => vec![unspec(raw)],
        Syntax::Plain => vec![raw.to_string()],
    })
}

/// Splits at whitespace outside double quotes; inside them `\"`, `\\` and `\t` are escapes.
fn words(raw: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(first) = chars.next() else { return Ok(out) };
        let mut w = String::new();
        if first == '"' {
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in {raw:?}")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('t') => w.push('\t'),
                        Some(c @ ('"' | '\\')) => w.push(c),
                        other => return Err(format!("unknown escape \\{other:?} in {raw:?}")),
                    },
                    Some(c) => w.push(c),
                }
            }
        } else {
            w.push(first);
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                w.push(c);
            }
        }
        out.push(w);
    }
}

impl fmt::Display for UnitFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.comments {
            writeln!(f, "# {c}")?;
        }
        for (i, s) in self.sections.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "[{}]", s.name)?;
            for e in &s.entries {
                writeln!(f, "{}={}", e.key, encode(syntax(&e.key), &e.values))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> UnitFile {
        let mut u = UnitFile::default();
        u.comment("Generated");
        u.section("Unit")
            .set("Description", "50% of \"x\"")
            .add("After", ["a.service", "b.service"])
            .add("Wants", ["c.service"])
            .merge("After", ["b.service", "c.service"])
            .add("RequiresMountsFor", ["/srv/my tree", "/srv/100%"]);
        u.section("Service")
            .set("Type", "notify")
            .add("ExecStart", ["/opt/a$b/x", "--config", "/srv/$HOME 1%/h.toml", ""])
            .add("After", Vec::<String>::new());
        u
    }

    #[test]
    fn writes_one_line_per_entry_with_the_keys_escaping() {
        assert_eq!(
            sample().to_string(),
            "# Generated\n[Unit]\nDescription=50%% of \"x\"\nAfter=a.service b.service c.service\n\
             Wants=c.service\nRequiresMountsFor=\"/srv/my tree\" /srv/100%%\n\n[Service]\nType=notify\n\
             ExecStart=/opt/a$b/x --config \"/srv/$$HOME 1%%/h.toml\" \"\"\n"
        );
    }

    #[test]
    fn parses_what_it_writes() {
        let u = sample();
        let back = UnitFile::parse(&u.to_string()).unwrap();
        assert_eq!(back, u);
        assert_eq!(back.values("Unit", "After"), ["a.service", "b.service", "c.service"]);
        assert!(back.values("Service", "After").is_empty());
        assert!(back.values("Install", "WantedBy").is_empty());
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = UnitFile::parse("# x\nAfter=a\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = UnitFile::parse("[Unit]\nnonsense\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = UnitFile::parse("[Service]\nExecStart=/bin/x \"open\n").unwrap_err();
        assert!(e.message.contains("unterminated"), "{e}");
    }

    fn value() -> impl Strategy<Value = String> {
        // Anything check_value lets through: no newline or NUL, no trailing backslash.
        "[a-zA-Z0-9 %$\"'\\\\\t/._ü-]{0,12}[a-z]"
    }

    proptest! {
        #[test]
        fn round_trips(text in value(), args in proptest::collection::vec(value(), 1..5),
                       paths in proptest::collection::vec(value(), 1..4)) {
            let mut u = UnitFile::default();
            u.section("Unit").set("Description", text.trim()).add("RequiresMountsFor", paths);
            u.section("Service").add("ExecStart", args);
            prop_assert_eq!(UnitFile::parse(&u.to_string()).unwrap(), u);
        }
    }
}
