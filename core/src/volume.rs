//! The short volume syntax `[SOURCE:]TARGET[:OPTIONS]`, split as compose-go's
//! `format.ParseVolume` splits it, with the same errors.

/// The parts of a short volume spec that hlsys reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortVolume<'a> {
    /// Empty for an anonymous volume.
    pub source: &'a str,
    pub target: &'a str,
}

impl ShortVolume<'_> {
    /// compose-go's `isFilePath`: a source starting with `.`, `/` or `~` is a host path
    /// (a bind mount); anything else names a volume.
    pub fn is_bind(&self) -> bool {
        self.source.starts_with(['.', '/', '~'])
    }
}

/// Why a short volume spec is refused (the spec itself is never repeated: after
/// interpolation it may hold a variable's value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid empty volume spec")]
    Empty,
    #[error("invalid volume spec: empty section between colons")]
    EmptySection,
    #[error("invalid volume spec: too many colons")]
    TooManyColons,
}

/// Splits `spec` on the colons that are not a Windows drive letter's (`c:`) nor inside
/// a `${…}` left by `$${…}`; specs of one or two bytes are a bare target.
pub fn parse_short(spec: &str) -> Result<ShortVolume<'_>, VolumeError> {
    match spec.len() {
        0 => return Err(VolumeError::Empty),
        1 | 2 => {
            return Ok(ShortVolume {
                source: "",
                target: spec,
            })
        }
        _ => {}
    }
    let bytes = spec.as_bytes();
    let mut fields: Vec<&str> = Vec::with_capacity(3);
    let mut start = 0;
    let mut depth = 0usize;
    for (i, c) in spec.char_indices() {
        if c == '$' && bytes.get(i + 1) == Some(&b'{') {
            depth += 1;
        }
        if c == '}' && depth > 0 {
            depth -= 1;
        }
        let buffer = &spec[start..i];
        let drive = c == ':' && buffer.chars().count() == 1 && buffer.chars().all(char::is_alphabetic);
        if c == ':' && depth == 0 && !drive {
            push_field(&mut fields, buffer, false)?;
            start = i + 1;
        }
    }
    push_field(&mut fields, &spec[start..], true)?;
    Ok(match fields.as_slice() {
        [target] => ShortVolume { source: "", target },
        [source, target, ..] => ShortVolume { source, target },
        [] => ShortVolume {
            source: "",
            target: spec,
        },
    })
}

/// compose-go's populateFieldFromBuffer: source, then target, then options (last only).
fn push_field<'a>(fields: &mut Vec<&'a str>, buffer: &'a str, at_end: bool) -> Result<(), VolumeError> {
    if buffer.is_empty() {
        return Err(VolumeError::EmptySection);
    }
    if fields.len() < 2 || at_end {
        fields.push(buffer);
        Ok(())
    } else {
        Err(VolumeError::TooManyColons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(spec: &str) -> (&str, &str) {
        let v = parse_short(spec).unwrap();
        (v.source, v.target)
    }

    #[test]
    fn forms() {
        assert_eq!(ok("./data:/data"), ("./data", "/data"));
        assert_eq!(ok("./data:/data:ro,z"), ("./data", "/data"));
        assert_eq!(ok("/anon"), ("", "/anon"));
        assert_eq!(ok("named:/n"), ("named", "/n"));
        assert_eq!(ok(":"), ("", ":"));
        assert_eq!(ok("a:"), ("", "a:"));
        // a one-letter section before a colon is a Windows drive
        assert_eq!(ok("c:/x:/y"), ("c:/x", "/y"));
        assert_eq!(ok("${A:-x}:/y"), ("${A:-x}", "/y"));
    }

    #[test]
    fn errors() {
        assert_eq!(parse_short(""), Err(VolumeError::Empty));
        assert_eq!(parse_short(":/data"), Err(VolumeError::EmptySection));
        assert_eq!(parse_short("/a::/b"), Err(VolumeError::EmptySection));
        assert_eq!(parse_short("/a:/b:/c:/d"), Err(VolumeError::TooManyColons));
        assert_eq!(parse_short("/a:/b:"), Err(VolumeError::EmptySection));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(spec in "[a-z:/.${}é]{0,12}") {
            let _ = parse_short(&spec);
        }
    }
}
