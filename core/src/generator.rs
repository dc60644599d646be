//! The I/O side of `hlsys-generator` (systemd.generator(7)): write what
//! [`crate::units::render`] returns into the generator directory, with a report of what
//! was generated and skipped, and log to the kernel log.
//!
//! Rules a generator lives by: no D-Bus, no Docker, no network, nothing written outside
//! its output directory, fast, and never failing the boot because one stack is broken.

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::exit::{EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use crate::host::Host;
use crate::model::{Model, StackError};
use crate::units::{render, Generated};
use crate::write::Durability;

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

/// A file the generator could not write: what it was doing, where, and why.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct WriteError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

type Result<T> = std::result::Result<T, WriteError>;

/// Tags an I/O result with what was being done to which path.
trait Context<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| WriteError {
            action,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Writes `content` to `path` through a temporary file and a rename, so a reader (or a
/// crash) never sees half a unit. Not synced: /run does not outlive a crash anyway.
fn write_atomic(path: &Path, content: &[u8]) -> Result<()> {
    crate::write::write_atomic(path, content, Durability::Renamed).at("writing", path)
}

/// Writes units, links and the report into `dir`. On any failure, removes what it wrote
/// (never half a set of units) and returns the error.
pub fn write_all(dir: &Path, model: &Model, g: &Generated) -> Result<Vec<PathBuf>> {
    let mut written: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<()> {
        std::fs::create_dir_all(dir).at("creating", dir)?;
        for u in &g.units {
            let p = dir.join(&u.name);
            write_atomic(&p, u.content.as_bytes())?;
            written.push(p);
        }
        for l in &g.links {
            let d = dir.join(&l.dir);
            std::fs::create_dir_all(&d).at("creating", &d)?;
            let p = d.join(&l.unit);
            if p.symlink_metadata().is_ok() {
                std::fs::remove_file(&p).at("replacing", &p)?;
            }
            symlink(Path::new("..").join(&l.unit), &p).at("linking", &p)?;
            written.push(p);
        }
        let p = dir.join(REPORT_NAME);
        // Plain strings and paths: serialising cannot fail short of running out of memory.
        let rep = serde_json::to_vec_pretty(&report(model, g))
            .map_err(std::io::Error::other)
            .at("serialising", &p)?;
        write_atomic(&p, &rep)?;
        written.push(p);
        Ok(())
    })();
    match result {
        Ok(()) => Ok(written),
        Err(e) => {
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
            Err(e)
        }
    }
}

/// Logs to /dev/kmsg as `hlsys-generator[PID]: …` (the journal is not up while
/// generators run at boot), or to stderr when the kernel log is not writable.
pub struct KmsgLog {
    kmsg: Option<std::fs::File>,
}

impl KmsgLog {
    pub fn open() -> KmsgLog {
        let kmsg = std::fs::OpenOptions::new().write(true).open("/dev/kmsg").ok();
        KmsgLog { kmsg }
    }

    /// `level`: syslog priority (3 error, 4 warning, 6 info, 7 debug).
    pub fn log(&mut self, level: u8, msg: &str) {
        let pid = std::process::id();
        // One record per line: a newline inside a message would forge a second record.
        let msg = msg.replace('\n', " ");
        if let Some(k) = &mut self.kmsg {
            if k.write_all(format!("<{level}>hlsys-generator[{pid}]: {msg}\n").as_bytes())
                .is_ok()
            {
                return;
            }
        }
        eprintln!("hlsys-generator[{pid}]: {msg}");
    }
}

/// The whole generator run. `args`: the 1 or 3 output directories systemd passes.
/// Returns the exit status: [`EXIT_OK`] whenever the config was usable (broken stacks
/// are skipped), [`EXIT_CONFIG`] when it is not, [`EXIT_FAILURE`] when writing failed.
pub fn main_with(args: &[String], host: &Host, log: &mut KmsgLog) -> u8 {
    if args.len() != 1 && args.len() != 3 {
        log.log(3, "usage: hlsys-generator NORMAL_DIR [EARLY_DIR LATE_DIR]");
        return EXIT_USAGE;
    }
    let out = PathBuf::from(&args[0]);
    let config = match host.load_config() {
        Ok(c) => c,
        Err(e) => {
            log.log(3, &format!("config unusable, no units generated: {e}"));
            return EXIT_CONFIG;
        }
    };
    let model = match crate::tree::build(config) {
        Ok(m) => m,
        Err(e) => {
            log.log(3, &format!("config unusable, no units generated: {e}"));
            return EXIT_CONFIG;
        }
    };
    let g = render(&model);
    for e in model.errors.iter().chain(&g.skipped) {
        log.log(4, &format!("skipping {}: {}: {}", e.stack, e.file.display(), e.message));
    }
    match write_all(&out, &model, &g) {
        Ok(_) => {
            log.log(
                6,
                &format!(
                    "generated {} units for {} stacks ({} skipped) into {}",
                    g.units.len(),
                    model.stacks.len(),
                    model.errors.len() + g.skipped.len(),
                    out.display()
                ),
            );
            EXIT_OK
        }
        Err(e) => {
            log.log(3, &format!("writing units failed, none left behind: {e:#}"));
            EXIT_FAILURE
        }
    }
}

/// Where systemd runs generators with their normal output directory.
pub const SYSTEM_GENERATOR_DIR: &str = "run/systemd/generator";

/// How the units in a generator directory compare with what the tree gives now.
#[derive(Debug, PartialEq, Eq)]
pub enum Freshness {
    /// No report there: the generator never ran (not installed, or no reload since).
    NotGenerated,
    Current {
        units: usize,
    },
    /// Units that differ, are missing or are left over.
    Stale {
        changed: Vec<String>,
    },
}

/// Compares `dir` (e.g. /run/systemd/generator) with a fresh render of `model`: the
/// same renderer as the generator, so any difference means the tree changed since the
/// last daemon-reload.
pub fn freshness(model: &Model, dir: &Path) -> Freshness {
    let Ok(text) = std::fs::read_to_string(dir.join(REPORT_NAME)) else {
        return Freshness::NotGenerated;
    };
    let previous: Vec<String> = serde_json::from_str::<GeneratorReport>(&text)
        .map(|r| r.units)
        .unwrap_or_default();
    let g = render(model);
    let mut changed: Vec<String> = g
        .units
        .iter()
        .filter(|u| std::fs::read_to_string(dir.join(&u.name)).ok().as_deref() != Some(u.content.as_str()))
        .map(|u| u.name.clone())
        .collect();
    changed.extend(previous.into_iter().filter(|p| !g.units.iter().any(|u| &u.name == p)));
    changed.sort();
    if changed.is_empty() {
        Freshness::Current { units: g.units.len() }
    } else {
        Freshness::Stale { changed }
    }
}
