//! Discovery: the walk of `stacks_dir` that finds the stack directories, each opened
//! once.
//!
//! The walk works from descriptors, never from a path twice: `stacks_dir` is opened
//! once, every directory below it is opened from its parent's descriptor (`openat`,
//! `O_NOFOLLOW` for a directory, the link followed once for a symlink) and listed
//! through its own, and a stack's descriptor is kept for reading its files
//! ([`crate::bounded::pin`]). So a tree changed during the walk (a `git pull`: directories
//! renamed or exchanged, links retargeted, `stacks_dir` itself a link swapped) gives each
//! directory as it was when the walk reached it: an old or a new view of it, never a
//! stack found in one and read from another, lost in between or found under a link's
//! name.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag, AT_FDCWD};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};

use crate::compose::load::files::OVERRIDE_FILE_NAMES;
use crate::escape::{check_value, BadValue};
use crate::model::StackError;

/// File names Compose looks for, in its own order of preference.
pub const COMPOSE_FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// Stack id from its relative path: `genai/ollama` → `genai-ollama`. The id is also the
/// Compose project name, so it must be one Compose accepts (which also makes it a valid
/// unit-name part without escaping).
pub fn stack_id(rel: &str) -> Result<String, BadValue> {
    check_value("stack path", rel)?;
    let id = rel.replace('/', "-");
    let ok = id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ok {
        return Err(BadValue::ProjectName {
            rel: rel.to_string(),
            id,
        });
    }
    Ok(id)
}

/// A directory that holds a compose file, before its file is read.
#[derive(Debug, Clone)]
pub(super) struct Found {
    /// Path relative to stacks_dir, `/`-separated.
    pub rel: String,
    pub dir: PathBuf,
    pub compose_file: PathBuf,
    /// The first override file Compose would read beside it ([`crate::compose::load::files`]).
    pub override_file: Option<PathBuf>,
    /// The directories opened by the walk that the stack's files are read through
    /// ([`crate::bounded::pin`]): `stacks_dir`, then the stack's own directory. Empty
    /// when the walk could not keep them open (more stacks than descriptors).
    pub pinned: Vec<(PathBuf, Arc<OwnedFd>)>,
}

impl Found {
    /// The path under which the stack directory's descriptor reads its entries through
    /// the kernel (`/proc/self/fd/N`), for code that looks files up by path; `None`
    /// without a descriptor or without /proc.
    pub fn fd_dir(&self) -> Option<PathBuf> {
        use std::os::fd::AsRawFd;
        let (_, fd) = self.pinned.last()?;
        let p = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        std::fs::metadata(&p).is_ok_and(|m| m.is_dir()).then_some(p)
    }
}

/// Descriptors left free for everything else while the walk keeps stack directories
/// open.
const SPARE_FDS: u64 = 256;

/// Directories opened read-only, never a controlling terminal, closed on exec.
fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY
}

/// (device, inode) of an open directory.
fn id(fd: &OwnedFd) -> nix::Result<(u64, u64)> {
    let st = fstat(fd)?;
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// Walks `stacks_dir`: a directory with a compose file is a stack (nothing below it is
/// searched); other directories are descended; hidden ones are skipped. A missing or
/// unreadable `stacks_dir` gives nothing (the caller reports it).
pub(super) fn discover(stacks_dir: &Path, errors: &mut Vec<StackError>) -> Vec<Found> {
    let Ok(root) = openat(AT_FDCWD, stacks_dir, dir_flags(), Mode::empty()) else {
        return Vec::new();
    };
    let Ok(root_id) = id(&root) else {
        return Vec::new();
    };
    let root = Arc::new(root);
    let mut walk = Walk {
        stacks_dir,
        root: root.clone(),
        root_id,
        seen: BTreeSet::new(),
        found: Vec::new(),
        errors,
        can_keep: keepable_fds(),
    };
    walk.dir(root, stacks_dir.to_path_buf(), String::new());
    let mut found = walk.found;
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    found
}

/// How many stack directories the walk may keep open: the soft limit on descriptors,
/// raised to the hard one (a generator starts with systemd's 1024), less a reserve.
fn keepable_fds() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let soft = if hard > soft && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    soft.saturating_sub(SPARE_FDS)
}

struct Walk<'a> {
    stacks_dir: &'a Path,
    root: Arc<OwnedFd>,
    root_id: (u64, u64),
    /// Directories read (device, inode): each once, so a link loop cannot make the walk spin.
    seen: BTreeSet<(u64, u64)>,
    found: Vec<Found>,
    errors: &'a mut Vec<StackError>,
    /// Stack directories that may still be kept open.
    can_keep: u64,
}

/// What the walk needs from one directory listing.
struct Listing {
    /// Compose and override file names present.
    files: Vec<String>,
    /// Entries that may be directories to descend into (not hidden), by name, and
    /// whether the listing says they are symlinks (`None`: it does not say).
    subdirs: Vec<(OsString, Option<bool>)>,
}

impl Walk<'_> {
    fn rel_of(&self, path: &Path) -> String {
        path.strip_prefix(self.stacks_dir)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    fn cannot_read(&mut self, path: &Path, e: Errno) {
        let rel = self.rel_of(path);
        self.errors.push(StackError {
            stack: rel,
            file: path.to_path_buf(),
            message: format!("cannot read directory: {}", std::io::Error::from(e)),
        });
    }

    /// Reads the directory open as `fd`, found at `path`.
    fn dir(&mut self, fd: Arc<OwnedFd>, path: PathBuf, rel: String) {
        match id(&fd) {
            Ok(i) if !self.seen.insert(i) => return,
            _ => {}
        }
        let listing = match list(&fd) {
            Ok(l) => l,
            Err(e) => {
                if !rel.is_empty() {
                    self.cannot_read(&path, e);
                }
                return;
            }
        };
        let present: Vec<&str> = COMPOSE_FILE_NAMES
            .iter()
            .copied()
            .filter(|n| listing.files.iter().any(|f| f == n))
            .collect();
        if !rel.is_empty() && !present.is_empty() {
            self.stack(fd, path, rel, &present, &listing);
            return;
        }
        let mut subdirs = listing.subdirs;
        subdirs.sort();
        for (name, is_link) in subdirs {
            let sub = path.join(&name);
            if let Some(child) = self.open_sub(&fd, &name, is_link, &sub) {
                let rel = self.rel_of(&sub);
                self.dir(Arc::new(child), sub, rel);
            }
        }
    }

    /// The stack directory open as `fd` with its compose file(s) `present`.
    fn stack(&mut self, fd: Arc<OwnedFd>, dir: PathBuf, rel: String, present: &[&str], listing: &Listing) {
        if present.len() > 1 {
            // Under the id it would have had, so a stack requiring it is told it is in error.
            self.errors.push(StackError {
                stack: stack_id(&rel).unwrap_or_else(|_| rel.clone()),
                file: dir.join(present[1]),
                message: format!(
                    "more than one compose file in {}: {}; keep one",
                    dir.display(),
                    present.join(", ")
                ),
            });
            return;
        }
        let override_file = OVERRIDE_FILE_NAMES
            .iter()
            .find(|n| listing.files.iter().any(|f| f == *n))
            .map(|n| dir.join(n));
        let pinned = if self.can_keep > 0 {
            self.can_keep -= 1;
            vec![(self.stacks_dir.to_path_buf(), self.root.clone()), (dir.clone(), fd)]
        } else {
            Vec::new()
        };
        self.found.push(Found {
            rel,
            compose_file: dir.join(present[0]),
            dir,
            override_file,
            pinned,
        });
    }

    /// Opens the entry `name` of `parent` to descend into it: a directory as itself
    /// (`O_NOFOLLOW`), a symlink followed once, and only when it leads out of the tree
    /// (a link to a directory inside the tree is not followed: that directory is walked
    /// under its own name, and following the link too would let the link's name become
    /// the stack's id; a link out of the tree is how a stack kept elsewhere joins it).
    /// `None`: nothing to descend into (gone, not a directory, a link into the tree).
    fn open_sub(&mut self, parent: &OwnedFd, name: &OsStr, is_link: Option<bool>, path: &Path) -> Option<OwnedFd> {
        if is_link != Some(true) {
            match openat(parent.as_fd(), name, dir_flags() | OFlag::O_NOFOLLOW, Mode::empty()) {
                Ok(fd) => return Some(fd),
                // Not (or no longer) a directory but maybe a link to one: see below.
                Err(Errno::ELOOP | Errno::ENOTDIR) => {}
                // Gone since the listing: not in the tree as it is now.
                Err(Errno::ENOENT) => return None,
                Err(e) => {
                    self.cannot_read(path, e);
                    return None;
                }
            }
        }
        let is_link = fstatat(parent.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK);
        if !is_link {
            return None;
        }
        // The link is followed once: what it leads to now is what is walked.
        let target = openat(parent.as_fd(), name, dir_flags(), Mode::empty()).ok()?;
        (!self.inside(&target)).then_some(target)
    }

    /// Whether the directory open as `fd` is `stacks_dir` or below it: `..` from it,
    /// descriptor by descriptor, reaches the tree's root before `/`.
    fn inside(&self, fd: &OwnedFd) -> bool {
        let Ok(mut at) = id(fd) else { return false };
        let mut cur = match openat(fd.as_fd(), ".", dir_flags(), Mode::empty()) {
            Ok(c) => c,
            Err(_) => return false,
        };
        // Deeper than any path the kernel resolves (PATH_MAX / 2).
        for _ in 0..2048 {
            if at == self.root_id {
                return true;
            }
            let Ok(up) = openat(cur.as_fd(), "..", dir_flags(), Mode::empty()) else {
                return false;
            };
            let Ok(up_id) = id(&up) else { return false };
            if up_id == at {
                // `/` (of this process's view): its `..` is itself.
                return false;
            }
            (cur, at) = (up, up_id);
        }
        false
    }
}

/// Lists the directory open as `fd` once: the compose and override files in it, and the
/// entries to maybe descend into. One read of the directory, where a lookup per
/// candidate name would cost eight. Anything by a compose file's name counts, a FIFO or
/// a dangling link too: it is then reported by name when it cannot be read, rather than
/// silently ignored.
fn list(fd: &OwnedFd) -> nix::Result<Listing> {
    let mut listing = Listing {
        files: Vec::new(),
        subdirs: Vec::new(),
    };
    // A descriptor of its own for the listing (its read position), of the same directory.
    let mut dir = Dir::openat(fd.as_fd(), ".", dir_flags(), Mode::empty())?;
    for entry in dir.iter() {
        let Ok(entry) = entry else { continue };
        let bytes = entry.file_name().to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let name = OsStr::from_bytes(bytes);
        let text = name.to_string_lossy();
        if COMPOSE_FILE_NAMES.contains(&text.as_ref()) || OVERRIDE_FILE_NAMES.contains(&text.as_ref()) {
            listing.files.push(text.into_owned());
            continue;
        }
        if bytes.starts_with(b".") {
            continue;
        }
        match entry.file_type() {
            Some(Type::Directory) => listing.subdirs.push((name.to_os_string(), Some(false))),
            Some(Type::Symlink) => listing.subdirs.push((name.to_os_string(), Some(true))),
            // The file system does not say: the open finds out.
            None => listing.subdirs.push((name.to_os_string(), None)),
            Some(_) => {}
        }
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(root: &Path) -> Vec<String> {
        let mut errors = Vec::new();
        let found = discover(root, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        found.into_iter().map(|f| f.rel).collect()
    }

    #[test]
    fn links_into_the_tree_are_not_followed_links_out_of_it_are() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("tree");
        for dir in ["tree/a/s", "tree/b", "out/x"] {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
        }
        std::fs::write(t.join("a/s/compose.yaml"), "services: {}\n").unwrap();
        std::fs::write(d.path().join("out/x/compose.yaml"), "services: {}\n").unwrap();
        symlink("../a", t.join("b/in")).unwrap();
        symlink(t.join("a/s"), t.join("b/abs")).unwrap();
        symlink(d.path().join("out/x"), t.join("b/out")).unwrap();
        symlink("..", t.join("b/up")).unwrap();
        symlink("nowhere", t.join("b/dangling")).unwrap();
        // The tree's own directory through a link: the link is the configured path.
        symlink(&t, d.path().join("link")).unwrap();
        assert_eq!(walk(&t), ["a/s", "b/out"]);
        assert_eq!(walk(&d.path().join("link")), ["a/s", "b/out"]);
        let mut errors = Vec::new();
        let found = discover(&t, &mut errors);
        assert!(found.iter().all(|f| f.pinned.len() == 2 && f.fd_dir().is_some()));
    }
}
