//! Escaping of values written into unit files (systemd.unit(5), systemd.service(5)).
//!
//! Unit files are world-readable and parsed by PID 1, so every value that comes from the
//! tree or the config goes through one of these functions; a newline is refused outright
//! since it would start a new directive.

/// A name or path hlsys refuses: it ends up in unit names, unit files and `docker`
/// arguments, where it could inject directives or break a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadValue {
    #[error("{what} {value:?} contains a newline or NUL, which hlsys refuses")]
    Control { what: String, value: String },
    /// A unit file line ending in a backslash continues on the next line.
    #[error("{what} {value:?} ends with a backslash, which hlsys refuses")]
    TrailingBackslash { what: String, value: String },
    #[error("{what} name {value:?}: use ASCII letters, digits, '-', '_' and '.' (not first)")]
    Name { what: String, value: String },
    #[error("{what} {value:?} contains a control character, which hlsys refuses")]
    ControlCharacter { what: String, value: String },
    /// systemd strips blanks around a setting's value, so the unit would name another path.
    #[error("{what} {value:?} starts or ends with a blank, which systemd would strip from the unit")]
    Blank { what: String, value: String },
    #[error("{what} name is longer than {max} characters")]
    TooLong { what: String, max: usize },
    /// The stack id is also the Compose project name.
    #[error(
        "directory {rel:?} gives stack id {id:?}, which Docker Compose does not accept as a \
         project name (lowercase letters, digits, '-' and '_', starting with a letter or \
         digit); rename the directory"
    )]
    ProjectName { rel: String, id: String },
}

/// Refuses values that cannot be written into a unit file safely: the one check for
/// every name and path from the config or the tree.
pub fn check_value(what: &str, value: &str) -> Result<(), BadValue> {
    let bad = |make: fn(String, String) -> BadValue| Err(make(what.to_string(), value.to_string()));
    if value.contains(['\n', '\r', '\0']) {
        return bad(|what, value| BadValue::Control { what, value });
    }
    if value.ends_with('\\') {
        return bad(|what, value| BadValue::TrailingBackslash { what, value });
    }
    Ok(())
}

/// [`check_value`] for paths that go into unit files and command lines, stricter: no
/// control character at all (a tab, an escape), no leading or trailing blank.
pub fn check_path(what: &str, path: &std::path::Path) -> Result<(), BadValue> {
    let value = path.to_string_lossy();
    let bad = |make: fn(String, String) -> BadValue| Err(make(what.to_string(), value.to_string()));
    if value.chars().any(char::is_control) {
        return bad(|what, value| BadValue::ControlCharacter { what, value });
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return bad(|what, value| BadValue::Blank { what, value });
    }
    check_value(what, &value)
}

/// For settings that take one value and expand specifiers (`Description=`,
/// `WorkingDirectory=`, `SourcePath=`, `EnvironmentFile=`): only `%` is special there.
pub fn specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

/// One word of a whitespace-separated list setting that unquotes (`RequiresMountsFor=`):
/// quoted when it holds whitespace, quotes or backslashes; `%` doubled.
pub fn list_word(s: &str) -> String {
    let s = specifiers(s);
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\')) {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

/// One argument of an `Exec*=` line. systemd expands `%` specifiers and `$VAR`/`${VAR}`
/// there and splits on whitespace, honouring quotes and C escapes; a lone `;` separates
/// commands. Plain words stay readable; anything else is double-quoted and escaped.
pub fn exec_arg(s: &str) -> String {
    exec_word(&s.replace('$', "$$"))
}

/// The executable of an `Exec*=` line: like [`exec_arg`], but systemd does not expand
/// `$` in the executable path, so a `$` there stays single (`$$` would be taken literally).
pub fn exec_path(s: &str) -> String {
    exec_word(s)
}

fn exec_word(s: &str) -> String {
    let s = s.replace('%', "%%");
    let plain = !s.is_empty()
        && s != ";"
        && s.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '"' | '\'' | '\\'));
    if plain {
        s
    } else {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

/// A whole command line for `Exec*=`.
pub fn exec_line<S: AsRef<str>>(args: &[S]) -> String {
    args.iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 {
                exec_path(a.as_ref())
            } else {
                exec_arg(a.as_ref())
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The unit-name form of an absolute path, as `systemd-escape --path` makes it: the name
/// of the `.mount` unit for a mount point. `/srv/my tree` → `srv-my\x20tree`.
pub fn path_unit_name(path: &str) -> String {
    let trimmed: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if trimmed.is_empty() {
        return "-".to_string();
    }
    let mut out = String::new();
    for (i, comp) in trimmed.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        for (j, b) in comp.bytes().enumerate() {
            let keep = b.is_ascii_alphanumeric() || b == b':' || b == b'_' || (b == b'.' && !(i == 0 && j == 0));
            if keep {
                out.push(b as char);
            } else {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_args() {
        assert_eq!(exec_arg("/usr/bin/hlsys"), "/usr/bin/hlsys");
        assert_eq!(exec_arg("a b"), "\"a b\"");
        assert_eq!(exec_arg("100%"), "100%%");
        assert_eq!(exec_arg("$HOME"), "$$HOME");
        assert_eq!(exec_arg("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(exec_arg("back\\slash"), "\"back\\\\slash\"");
        assert_eq!(exec_arg(";"), "\";\"");
        assert_eq!(exec_arg(""), "\"\"");
        assert_eq!(exec_arg("ünïcødé"), "ünïcødé");
        assert_eq!(exec_line(&["/opt/a$b 1%/x", "$y"]), "\"/opt/a$b 1%%/x\" $$y");
    }

    #[test]
    fn list_words() {
        assert_eq!(list_word("/srv/a b"), "\"/srv/a b\"");
        assert_eq!(list_word("/srv/50%"), "/srv/50%%");
        assert_eq!(list_word("/srv/$x"), "/srv/$x");
    }

    #[test]
    fn path_unit_names_match_systemd_escape() {
        // Expected values from `systemd-escape --path`.
        assert_eq!(path_unit_name("/srv/compose"), "srv-compose");
        assert_eq!(path_unit_name("/srv/my tree/"), "srv-my\\x20tree");
        assert_eq!(path_unit_name("/"), "-");
        assert_eq!(path_unit_name("/mnt/.hidden/a-b"), "mnt-.hidden-a\\x2db");
        assert_eq!(path_unit_name("/.x"), "\\x2ex");
        assert_eq!(path_unit_name("/data/ü"), "data-\\xc3\\xbc");
    }

    #[test]
    fn newlines_refused() {
        assert!(check_value("path", "/a\nb").is_err());
        assert!(check_value("path", "/a b").is_ok());
        assert!(check_value("path", "/a\\").is_err());
    }
}
