//! The generator's report, `hlsys-generator.json` beside the units: what was generated
//! and skipped, and a fingerprint of every input, for `hlsys check` to compare later.

use std::path::PathBuf;

use serde::Serialize;

use crate::model::{Model, StackError};
use crate::units::Generated;

/// File in the output directory that describes the run (systemd ignores it: not a unit name).
pub const REPORT_NAME: &str = "hlsys-generator.json";

/// What the generator did, for `hlsys check` to compare with the tree later. Holds no
/// values from env files (the directory is world-readable): env files are fingerprinted
/// by size and mtime only.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct GeneratorReport {
    pub config: Option<PathBuf>,
    pub stacks_dir: PathBuf,
    pub tree_available: bool,
    pub units: Vec<String>,
    pub skipped: Vec<ReportError>,
    /// Skipped entries left out past [`MAX_SKIPPED_BYTES`] (absent when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_omitted: usize,
    pub inputs: std::collections::BTreeMap<PathBuf, String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Most bytes of one skipped entry's message in the report; a longer one is cut, ending
/// in `…` (`hlsys stacks` shows it whole).
pub const MAX_MESSAGE_BYTES: usize = 4 << 10;
/// Most bytes of the skipped entries in all (stack, file and message); the entries past it
/// are left out and counted in `skipped_omitted`. The rest of the report (unit names,
/// input fingerprints) is a few hundred bytes per stack, so the report stays well inside
/// what a later run reads back ([`crate::bounded::REPORT_CAP`]) to remove stale units
/// (hlsys.toml(5), LIMITS).
pub const MAX_SKIPPED_BYTES: usize = 4 << 20;

#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct ReportError {
    pub stack: String,
    pub file: PathBuf,
    pub message: String,
}

impl From<&StackError> for ReportError {
    fn from(e: &StackError) -> Self {
        ReportError {
            stack: e.stack.clone(),
            file: e.file.clone(),
            message: e.message.clone(),
        }
    }
}

pub fn report(model: &Model, g: &Generated) -> GeneratorReport {
    let (skipped, skipped_omitted) = capped(model.errors.iter().chain(&g.skipped));
    GeneratorReport {
        config: model.config.source.clone(),
        stacks_dir: model.config.stacks_dir.clone(),
        tree_available: model.tree_available,
        units: g.units.iter().map(|u| u.name.clone()).collect(),
        skipped,
        skipped_omitted,
        inputs: model.inputs.clone(),
    }
}

/// The skipped entries as the report holds them: each message cut at
/// [`MAX_MESSAGE_BYTES`], the entries up to [`MAX_SKIPPED_BYTES`] in all; returns them
/// and how many were left out.
fn capped<'a>(errors: impl Iterator<Item = &'a StackError>) -> (Vec<ReportError>, usize) {
    let mut kept = Vec::new();
    let (mut bytes, mut omitted) = (0usize, 0usize);
    for e in errors {
        let message = crate::capped::truncate(&e.message, MAX_MESSAGE_BYTES);
        let size = e.stack.len() + e.file.as_os_str().len() + message.len();
        if omitted > 0 || bytes + size > MAX_SKIPPED_BYTES {
            omitted += 1;
            continue;
        }
        bytes += size;
        kept.push(ReportError {
            stack: e.stack.clone(),
            file: e.file.clone(),
            message: message.into_owned(),
        });
    }
    (kept, omitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(i: usize, len: usize) -> StackError {
        StackError {
            stack: format!("s{i}"),
            file: PathBuf::from("/t/compose.yaml"),
            message: "m".repeat(len),
        }
    }

    #[test]
    fn short_lists_pass_whole() {
        let errors: Vec<StackError> = (0..3).map(|i| error(i, 10)).collect();
        let (kept, omitted) = capped(errors.iter());
        assert_eq!(omitted, 0);
        assert_eq!(kept, errors.iter().map(ReportError::from).collect::<Vec<_>>());
    }

    #[test]
    fn messages_and_the_list_are_capped() {
        let errors: Vec<StackError> = (0..5000).map(|i| error(i, 100_000)).collect();
        let (kept, omitted) = capped(errors.iter());
        assert!(kept
            .iter()
            .all(|e| e.message.len() <= MAX_MESSAGE_BYTES && e.message.ends_with('…')));
        let bytes: usize = kept.iter().map(|e| e.stack.len() + 15 + e.message.len()).sum();
        assert!(bytes <= MAX_SKIPPED_BYTES, "{bytes}");
        assert_eq!(kept.len() + omitted, 5000);
        assert!(omitted > 0);
        assert_eq!(kept[0].stack, "s0", "kept in order");
    }
}
