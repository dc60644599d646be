//! What a person at a terminal sees: colour (never with NO_COLOR or off a terminal),
//! aligned tables, text from the tree made harmless ([`term`]), and the log on stderr.

use std::borrow::Cow;
use std::io::IsTerminal;

use hlsys_core::model::StackError;

/// `text` with every control character (C0 including tab and newline, DEL, C1) and every
/// bidirectional formatting character written as an escape (`\x1b`, `\u{202e}`): a
/// directory name, a container name or Docker's words can neither move the cursor,
/// recolour or rewrite the terminal nor reorder what it shows; one field stays one line.
pub fn term(text: &str) -> Cow<'_, str> {
    let harmful = |c: char| {
        c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(harmful) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !harmful(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// A stack left out, as one line for a person: `stack: file: why`, made harmless.
pub fn stack_error(e: &StackError) -> String {
    format!("{}: {}", term(&e.stack), stack_error_cause(e))
}

/// Where and why a stack was left out: `file: why`, made harmless.
pub fn stack_error_cause(e: &StackError) -> String {
    term(&format!("{}: {}", e.file.display(), e.message)).into_owned()
}

/// Logs go to stderr; `HLSYS_LOG` sets the filter (default: warnings).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HLSYS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color_enabled(&std::io::stderr()))
        .try_init();
}

/// Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
pub fn color_enabled(stream: &impl IsTerminal) -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && stream.is_terminal()
}

/// Wraps `text` in an ANSI colour when `on`; `code` is an SGR number (31 red, 32 green, 33 yellow).
pub fn paint(on: bool, code: u8, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Prints rows as left-aligned columns separated by two spaces, every cell made harmless.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| term(c).into_owned()).collect())
        .collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_and_the_rest_kept() {
        assert!(matches!(term("genai-ollama ✓"), Cow::Borrowed(_)));
        assert_eq!(term("a\x1b]0;pwned\x07b"), "a\\x1b]0;pwned\\x07b");
        assert_eq!(term("x\ny\tz\u{7f}"), "x\\x0ay\\x09z\\x7f");
        assert_eq!(term("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(term("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
    }
}
