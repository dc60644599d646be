//! Bounded reading of input files: every file hlsys reads from the config or the stack
//! tree goes through [`read`], so no input can make the generator block or grow without
//! bound.
//!
//! - The file is opened with `O_NONBLOCK`, so a FIFO (or a device that would block) does
//!   not hang the open; `fstat` on the open descriptor (no race with a rename) then
//!   refuses anything but a regular file: FIFOs, sockets, devices, directories.
//! - At most `cap` bytes are read, whatever `st_size` says: files in /proc report size 0
//!   and never end, so the cap is enforced on the bytes read, not on the size reported.
//! - Symlinks are followed (a stack's `.env` linking to a shared one is ordinary); what
//!   they lead to is checked as above.
//! - Below a directory [`pin`]ned by the reading thread, files are opened through that
//!   directory's descriptor (`openat`), so a stack is read from the directory the tree's
//!   walk found, not from whatever its path names by the time it is read.
//!
//! The caps are generous for hand-written files and documented in hlsys.toml(5) and
//! hlsys-generator(8).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest compose file read (4 MiB).
pub const COMPOSE_CAP: u64 = 4 << 20;
/// Largest `.env` / `env_files` file read (1 MiB).
pub const ENV_CAP: u64 = 1 << 20;
/// Largest hlsys.toml, drop-in, networks.toml or service.toml read (1 MiB).
pub const CONFIG_CAP: u64 = 1 << 20;
/// Largest generator report read back by `hlsys check`/`status` (16 MiB: it lists every unit).
pub const REPORT_CAP: u64 = 16 << 20;

/// Why a file could not be read. Never carries any of the file's content.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("does not exist")]
    NotFound,
    #[error("is a {0}, not a regular file; hlsys reads only regular files")]
    NotRegular(&'static str),
    #[error("is larger than the {} KiB hlsys reads from such a file", .0 / 1024)]
    TooLarge(u64),
    #[error("is not valid UTF-8 (line {line}, column {column})")]
    NotUtf8 { line: usize, column: usize },
    #[error("cannot be read: {0}")]
    Io(String),
}

/// Reads at most `cap` bytes of the regular file `path`; anything else is an error.
pub fn read(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    read_with_meta(path, cap).map(|(bytes, _)| bytes)
}

/// [`read`], with the metadata of the file read (`fstat` on the open descriptor), so a
/// check of its owner and mode is about exactly the file whose bytes were read.
pub fn read_with_meta(path: &Path, cap: u64) -> Result<(Vec<u8>, std::fs::Metadata), ReadError> {
    let file = open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReadError::NotFound,
        _ => ReadError::Io(io_reason(&e)),
    })?;
    let meta = file.metadata().map_err(|e| ReadError::Io(io_reason(&e)))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular(type_name(&kind)));
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge(cap));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte past the cap tells "exactly at the cap" from "larger" for files whose
    // reported size is 0 (/proc) or that grow while being read.
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Io(io_reason(&e)))?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge(cap));
    }
    Ok((bytes, meta))
}

const OPEN_FLAGS: i32 = nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC | nix::libc::O_NOCTTY;

thread_local! {
    /// Directories this thread reads below through a descriptor ([`pin`]).
    static PINNED: std::cell::RefCell<Vec<(PathBuf, Arc<OwnedFd>)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// While it lives, files this thread reads below one of the directories given to [`pin`]
/// are opened through that directory's descriptor.
#[must_use]
pub struct Pinned {
    before: Vec<(PathBuf, Arc<OwnedFd>)>,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let before = std::mem::take(&mut self.before);
        PINNED.with(|p| *p.borrow_mut() = before);
    }
}

/// Reads below each `(path, descriptor)` go through the descriptor (`openat`) until the
/// returned guard is dropped: the directory a stack was found in is the one its files
/// are read from, whatever is renamed or relinked on the way to it meanwhile
/// ([`crate::tree`] opens each stack directory once). The most specific directory wins;
/// a path that leaves it lexically (`..`) is opened by path.
pub fn pin(dirs: Vec<(PathBuf, Arc<OwnedFd>)>) -> Pinned {
    let before = PINNED.with(|p| std::mem::replace(&mut *p.borrow_mut(), dirs));
    Pinned { before }
}

/// `path` opened for reading (non-blocking, no controlling terminal), through the
/// descriptor of the innermost [`pin`]ned directory it is below.
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    let below = PINNED.with(|p| {
        p.borrow()
            .iter()
            .filter_map(|(dir, fd)| {
                let rest = path.strip_prefix(dir).ok()?;
                let plain = rest.components().all(|c| matches!(c, std::path::Component::Normal(_)));
                (plain && !rest.as_os_str().is_empty())
                    .then(|| (dir.components().count(), fd.clone(), rest.to_path_buf()))
            })
            .max_by_key(|(depth, _, _)| *depth)
    });
    match below {
        Some((_, fd, rest)) => {
            use nix::fcntl::OFlag;
            let flags = OFlag::O_RDONLY | OFlag::from_bits_truncate(OPEN_FLAGS);
            let fd = nix::fcntl::openat(&*fd, &rest, flags, nix::sys::stat::Mode::empty())?;
            Ok(std::fs::File::from(fd))
        }
        None => std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(OPEN_FLAGS)
            .open(path),
    }
}

/// [`read`], then UTF-8; `Ok(None)` when the file does not exist.
pub fn read_text_opt(path: &Path, cap: u64) -> Result<Option<String>, ReadError> {
    match read(path, cap) {
        Ok(bytes) => utf8(bytes).map(Some),
        Err(ReadError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`read`], then UTF-8.
pub fn read_text(path: &Path, cap: u64) -> Result<String, ReadError> {
    read(path, cap).and_then(utf8)
}

/// Text from bytes; invalid UTF-8 is located by line and column, never quoted.
pub fn utf8(bytes: Vec<u8>) -> Result<String, ReadError> {
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // valid_up_to() ends on a character boundary, so this slice is valid UTF-8.
        let column = std::str::from_utf8(&good[start..]).map_or(0, |s| s.chars().count()) + 1;
        ReadError::NotUtf8 { line, column }
    })
}

/// The OS reason alone ("Permission denied (os error 13)"): the path is the caller's.
fn io_reason(e: &std::io::Error) -> String {
    e.to_string()
}

fn type_name(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_below_a_pinned_directory_go_through_its_descriptor() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("f"), "old").unwrap();
        let fd = nix::fcntl::open(
            &a,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        // `a` is renamed away and another put in its place.
        std::fs::rename(&a, &b).unwrap();
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("f"), "new").unwrap();
        {
            let _pinned = pin(vec![(a.clone(), Arc::new(fd))]);
            assert_eq!(read(&a.join("f"), 10).unwrap(), b"old");
            // Not below it lexically: by path.
            assert_eq!(read(&a.join("../a/f"), 10).unwrap(), b"new");
            assert_eq!(read(&a.join("g"), 10), Err(ReadError::NotFound));
        }
        assert_eq!(read(&a.join("f"), 10).unwrap(), b"new");
    }

    #[test]
    fn regular_files_within_the_cap() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read(&p, 10).unwrap(), b"0123456789");
        assert_eq!(read(&p, 9), Err(ReadError::TooLarge(9)));
        assert_eq!(read(&d.path().join("none"), 10), Err(ReadError::NotFound));
        assert_eq!(read_text_opt(&d.path().join("none"), 10), Ok(None));
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(read(&fifo, 10), Err(ReadError::NotRegular("FIFO")));
        assert_eq!(read(d.path(), 10), Err(ReadError::NotRegular("directory")));
        assert_eq!(
            read(Path::new("/dev/zero"), 10),
            Err(ReadError::NotRegular("character device"))
        );
        let link = d.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert_eq!(read(&link, 10), Err(ReadError::NotRegular("character device")));
    }

    #[test]
    fn endless_proc_files_stop_at_the_cap() {
        // Reports size 0 and is far larger than 4 KiB.
        let e = read(Path::new("/proc/self/pagemap"), 4096);
        assert!(
            matches!(e, Err(ReadError::TooLarge(4096)) | Err(ReadError::Io(_))),
            "{e:?}"
        );
    }

    #[test]
    fn invalid_utf8_is_located_not_quoted() {
        let e = utf8(b"A=1\nSECRET=ab\xffcd\n".to_vec()).unwrap_err();
        assert_eq!(e, ReadError::NotUtf8 { line: 2, column: 10 });
        assert!(!e.to_string().contains("ab"));
    }
}
