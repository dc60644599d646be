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
    let mut fields = Fields::default();
    let mut start = 0;
    let mut depth = 0usize;
    for (i, c) in spec.char_indices() {
        if c == '$' && bytes.get(i + 1) == Some(&b'{') {
            depth += 1;
        }
        if c == '}' && depth > 0 {
            depth -= 1;
        }
        if c != ':' || depth > 0 {
            continue;
        }
        let buffer = &spec[start..i];
        let mut chars = buffer.chars();
        let drive = matches!((chars.next(), chars.next()), (Some(l), None) if l.is_alphabetic());
        if !drive {
            fields.push(buffer, false)?;
            start = i + 1;
        }
    }
    fields.push(&spec[start..], true)?;
    Ok(match fields.count {
        1 => ShortVolume {
            source: "",
            target: fields.parts[0],
        },
        _ => ShortVolume {
            source: fields.parts[0],
            target: fields.parts[1],
        },
    })
}

/// Source, target, options: compose-go's populateFieldFromBuffer.
#[derive(Default)]
struct Fields<'a> {
    parts: [&'a str; 3],
    count: usize,
}

impl<'a> Fields<'a> {
    /// Options may only come last.
    fn push(&mut self, buffer: &'a str, at_end: bool) -> Result<(), VolumeError> {
        if buffer.is_empty() {
            return Err(VolumeError::EmptySection);
        }
        if self.count >= 2 && !at_end {
            return Err(VolumeError::TooManyColons);
        }
        if self.count < 3 {
            self.parts[self.count] = buffer;
        }
        self.count += 1;
        Ok(())
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
