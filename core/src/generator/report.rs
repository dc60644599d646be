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
    pub inputs: std::collections::BTreeMap<PathBuf, String>,
}

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
    GeneratorReport {
        config: model.config.source.clone(),
        stacks_dir: model.config.stacks_dir.clone(),
        tree_available: model.tree_available,
        units: g.units.iter().map(|u| u.name.clone()).collect(),
        skipped: model.errors.iter().chain(&g.skipped).map(ReportError::from).collect(),
        inputs: model.inputs.clone(),
    }
}
