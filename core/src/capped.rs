//! Output bounded whatever the input: a problem class is named a few times and the rest
//! counted ("… and 41,203 more overlapping pairs"), a message cut at a byte cap. The
//! caps themselves live where the output is made (netcheck, graph, the report, kmsg)
//! and are listed in hlsys.toml(5), LIMITS.

/// `n` with thousands separators: `41203` → `41,203`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `text` cut to at most `max` bytes at a character boundary, ending in `…` when cut.
pub fn truncate(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    const MARK: &str = "…";
    let mut end = max.saturating_sub(MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(41_203), "41,203");
        assert_eq!(thousands(1_999_000), "1,999,000");
    }

    #[test]
    fn truncate_at_a_char_boundary() {
        assert_eq!(truncate("short", 10), "short");
        let t = truncate("ééééé", 6);
        assert!(t.len() <= 6 && t.ends_with('…'), "{t}");
        assert_eq!(truncate("abcdefgh", 7), "abcd…");
    }
}
