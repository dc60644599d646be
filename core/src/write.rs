//! Writing a file so that no reader (and no crash) ever sees half of it: the one
//! `write_atomic` of hlsys, used for generated units and for `hlsys enable`'s drop-in.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether [`write_atomic`] syncs the file and its directory: worth it for state a tool
/// keeps on disk (a drop-in), not for units in /run that are regenerated at every boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Renamed into place; lost with the page cache on a crash.
    Renamed,
    /// Also `fsync`ed, file and directory, before returning.
    Synced,
}

/// A name for the temporary file beside `path` that no other writer uses: this process's
/// id and a counter, and `create_new` (O_EXCL) refuses it if it exists all the same.
fn temporary_name(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Writes `content` to `path` (mode 0644) through a new temporary file in the same
/// directory and a rename over `path`. On error the temporary file is removed and `path`
/// is as it was. The error names the path it concerns.
pub fn write_atomic(path: &Path, content: &[u8], durability: Durability) -> std::io::Result<()> {
    write_atomic_mode(path, content, 0o644, durability)
}

/// [`write_atomic`] with the file's mode: set when the temporary file is created, so the
/// content is never readable under a wider mode, not even for a moment.
pub fn write_atomic_mode(path: &Path, content: &[u8], mode: u32, durability: Durability) -> std::io::Result<()> {
    let tmp = temporary_name(path);
    let at = |p: &Path, e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", p.display()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| at(&tmp, e))?;
        // The umask may have taken bits away from `mode`.
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| at(&tmp, e))?;
        f.write_all(content).map_err(|e| at(&tmp, e))?;
        if durability == Durability::Synced {
            f.sync_all().map_err(|e| at(&tmp, e))?;
        }
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| at(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else if durability == Durability::Synced {
        // The rename itself is durable once the directory is.
        if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.service");
        for (text, how) in [("one\n", Durability::Renamed), ("two\n", Durability::Synced)] {
            write_atomic(&p, text.as_bytes(), how).unwrap();
            assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
        }
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_names_the_path_and_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("missing-dir/a.service");
        let e = write_atomic(&p, b"x", Durability::Renamed).unwrap_err();
        assert!(e.to_string().contains("missing-dir"), "{e}");
        assert!(!p.exists());
    }

    #[test]
    fn the_mode_is_the_one_asked_for() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("daemon.json");
        write_atomic_mode(&p, b"{}", 0o600, Durability::Synced).unwrap();
        assert_eq!(p.metadata().unwrap().permissions().mode() & 0o7777, 0o600);
    }

    #[test]
    fn temporary_names_differ() {
        let p = Path::new("/run/x/a.service");
        assert_ne!(temporary_name(p), temporary_name(p));
        assert_eq!(temporary_name(p).parent(), p.parent());
    }
}
