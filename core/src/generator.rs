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

/// Holds an exclusive `flock` on the output directory while a run writes into it, so two
/// generator (or `plan --out`) runs into one directory take turns instead of mixing
/// their files.
fn lock_dir(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let f = std::fs::File::open(dir).at("opening", dir)?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))
        .at("locking", dir)
}

/// Unit names listed by the report a previous run left in `dir` (none when there is none).
fn previous_units(dir: &Path) -> Vec<String> {
    crate::bounded::read(&dir.join(REPORT_NAME), crate::bounded::REPORT_CAP)
        .ok()
        .and_then(|b| serde_json::from_slice::<GeneratorReport>(&b).ok())
        .map(|r| r.units)
        .unwrap_or_default()
}

type Names<'a> = std::collections::BTreeSet<&'a str>;

/// Removes what an earlier run wrote that this one did not: units listed in its report
/// and no longer generated, and `.wants`-style links to any of our units that this run
/// did not make. Nothing else in `dir` is touched.
fn remove_stale(dir: &Path, previous: &[String], g: &Generated) -> Result<()> {
    let current: Names = g.units.iter().map(|u| u.name.as_str()).collect();
    // Report entries are names, never paths: anything else is not ours to remove.
    let gone = previous
        .iter()
        .filter(|u| !current.contains(u.as_str()) && !u.contains('/') && !u.starts_with('.'));
    for old in gone {
        let p = dir.join(old);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at("removing stale", &p),
            _ => {}
        }
    }
    let ours: Names = current
        .iter()
        .copied()
        .chain(previous.iter().map(String::as_str))
        .collect();
    let links: std::collections::BTreeSet<(&str, &str)> =
        g.links.iter().map(|l| (l.dir.as_str(), l.unit.as_str())).collect();
    for entry in std::fs::read_dir(dir).at("listing", dir)? {
        let entry = entry.at("listing", dir)?;
        let sub = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && (sub.ends_with(".wants") || sub.ends_with(".requires")) {
            remove_stale_links(&entry.path(), &sub, &ours, &links)?;
        }
    }
    Ok(())
}

fn remove_stale_links(
    wants: &Path,
    sub: &str,
    ours: &Names,
    links: &std::collections::BTreeSet<(&str, &str)>,
) -> Result<()> {
    for link in std::fs::read_dir(wants).at("listing", wants)? {
        let link = link.at("listing", wants)?;
        let unit = link.file_name().to_string_lossy().into_owned();
        let target = std::fs::read_link(link.path()).ok();
        let to_ours = ours.contains(unit.as_str()) && target == Some(Path::new("..").join(&unit));
        if to_ours && !links.contains(&(sub, unit.as_str())) {
            std::fs::remove_file(link.path()).at("removing stale", &link.path())?;
        }
    }
    // Gone when emptied; left alone when it holds anything of someone else's.
    let _ = std::fs::remove_dir(wants);
    Ok(())
}

/// Writes units, links and the report into `dir`, under a lock on `dir`, and removes
/// what an earlier run into `dir` wrote that is no longer generated. On any failure,
/// removes what it wrote (never half a set of units, no temporary file) and returns the
/// error.
pub fn write_all(dir: &Path, model: &Model, g: &Generated) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).at("creating", dir)?;
    let _lock = lock_dir(dir)?;
    let previous = previous_units(dir);
    let mut written: Vec<PathBuf> = Vec::new();
    let mut made_dirs: Vec<PathBuf> = Vec::new();
    let result =
        write_files(dir, model, g, &mut written, &mut made_dirs).and_then(|()| remove_stale(dir, &previous, g));
    match result {
        Ok(()) => Ok(written),
        Err(e) => {
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
            for d in made_dirs.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
            Err(e)
        }
    }
}

fn write_files(
    dir: &Path,
    model: &Model,
    g: &Generated,
    written: &mut Vec<PathBuf>,
    made_dirs: &mut Vec<PathBuf>,
) -> Result<()> {
    for u in &g.units {
        let p = dir.join(&u.name);
        write_atomic(&p, u.content.as_bytes())?;
        written.push(p);
    }
    for l in &g.links {
        let d = dir.join(&l.dir);
        if !d.is_dir() {
            std::fs::create_dir(&d).at("creating", &d)?;
            made_dirs.push(d.clone());
        }
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
/// are skipped) and when there is no config file (then nothing is written),
/// [`EXIT_CONFIG`] when it is unusable, [`EXIT_FAILURE`] when writing failed.
pub fn main_with(args: &[String], host: &Host, log: &mut KmsgLog) -> u8 {
    if args.len() != 1 && args.len() != 3 {
        log.log(3, "usage: hlsys-generator NORMAL_DIR [EARLY_DIR LATE_DIR]");
        return EXIT_USAGE;
    }
    let out = PathBuf::from(&args[0]);
    // Opt-in: installing hlsys must not start whatever lies in /srv/compose at the next
    // boot. Only a config file the admin wrote turns the generator on. An error other
    // than "not found" (e.g. permissions) falls through to load, which reports it.
    let (path, _) = host.config_path();
    if let Ok(false) = path.try_exists() {
        log.log(6, &not_configured(&path));
        return EXIT_OK;
    }
    let config = match host.load_config() {
        Ok(c) => c,
        Err(e) => {
            log.log(3, &format!("config unusable, no units generated: {e}"));
            return EXIT_CONFIG;
        }
    };
    if !config.trust.strict {
        // The escape hatch is said at every run, so it cannot be forgotten.
        log.log(4, &crate::trust::hatch_line(config.source.as_deref().unwrap_or(&path)));
    }
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

/// The one line logged when there is no config file: what to do to turn hlsys on.
fn not_configured(path: &Path) -> String {
    format!(
        "no config file {}: hlsys is not set up, no units generated (write it, then systemctl daemon-reload)",
        path.display()
    )
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
    let Ok(text) = crate::bounded::read_text(&dir.join(REPORT_NAME), crate::bounded::REPORT_CAP) else {
        return Freshness::NotGenerated;
    };
    let previous: Vec<String> = serde_json::from_str::<GeneratorReport>(&text)
        .map(|r| r.units)
        .unwrap_or_default();
    let g = render(model);
    let mut changed: Vec<String> = g
        .units
        .iter()
        .filter(|u| {
            crate::bounded::read_text(&dir.join(&u.name), crate::bounded::REPORT_CAP)
                .ok()
                .as_deref()
                != Some(u.content.as_str())
        })
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
