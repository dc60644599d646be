//! Writing what [`crate::units::render`] returns into a generator directory: the units,
//! their `.wants/` links and the report, each file whole or not at all, with what an
//! earlier run left there and the tree no longer gives removed.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::report::{report, GeneratorReport, REPORT_NAME};
use crate::model::Model;
use crate::units::Generated;
use crate::write::Durability;

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
        // Not followed: a link here (planted in `plan --out`'s directory) would put our
        // links wherever it leads. Files are safe already: a unit is renamed over what
        // is there, and a temporary file is created with O_EXCL, which follows no link.
        match d.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                let e = std::io::Error::other(
                    "not a directory (a link or a file); hlsys writes only inside the output directory",
                );
                return Err(e).at("creating", &d);
            }
            Err(_) => {
                std::fs::create_dir(&d).at("creating", &d)?;
                made_dirs.push(d.clone());
            }
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
