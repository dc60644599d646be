//! Keeping the values of env files out of what others can read: reports, the journal,
//! STATUS=. Compose interpolates those values everywhere (an image tag, a container
//! name, an error about either), so text that Compose or Docker produced is masked
//! before hlsys passes it on.

use std::path::PathBuf;

/// Placeholder for a value hidden from reports.
pub const HIDDEN: &str = "(hidden)";

/// The values of `env_files` (layered as Compose layers them), to mask with [`mask`].
/// An env file that cannot be read gives none: the text is then passed on unmasked, and
/// the stack's own load has already reported the file.
pub fn env_values(env_files: &[PathBuf]) -> Vec<String> {
    crate::compose::envfile::load_layered(env_files)
        .map(|m| m.into_values().collect())
        .unwrap_or_default()
}

/// `text` with every env value of 4 characters or more replaced by [`HIDDEN`].
pub fn mask(text: &str, env_values: &[String]) -> String {
    let mut out = text.to_string();
    let mut values: Vec<&String> = env_values.iter().filter(|v| v.chars().count() >= 4).collect();
    // Longest first, so a value containing another is masked whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in values {
        if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), HIDDEN);
        }
    }
    out
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
}
