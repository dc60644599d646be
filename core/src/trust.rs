//! Who hlsys trusts, checked like sshd's StrictModes.
//!
//! hlsys acts as root on files people edit: a compose file can start a privileged
//! container with `/` mounted, so whoever can write the config, the stack tree, a compose
//! file or an env file is root. Before acting on them, hlsys makes sure only root (or the
//! configured `trusted_owner`/`trusted_group`) can:
//!
//! - the config, its drop-ins, the config's directory, `networks.toml`, `service.toml`,
//!   `stacks_dir`, every directory below it on the way to a stack's files, and the
//!   stack's compose and env files are owned by root or `trusted_owner` and writable by
//!   neither group nor others (group-writable only when the group is `trusted_group`)
//!   ([`Rule::Strict`]);
//! - the directories above `stacks_dir` and above the config's directory are owned by
//!   root or `trusted_owner` and not writable by others, unless sticky and root-owned
//!   like /tmp ([`Rule::Ancestor`]): a writer there could rename our directory away and
//!   put their own in its place.
//!
//! Symbolic links are resolved link by link ([`Checker::links`]): the directory holding
//! each link and the directory each one leads to are held to [`Rule::Strict`], every
//! other directory a link makes the path pass through to [`Rule::Ancestor`], so a chain
//! through a directory someone else owns is a finding wherever in the chain it is.
//!
//! Compose files are judged by the `fstat` of the descriptor the loader read them through
//! ([`crate::compose::load::source::read`]): exactly the file whose bytes were used. Directories, env
//! files and config files are `stat`ed by path after being read. That leaves no race an
//! attacker can use: swapping a file needs write access to its directory, and every
//! directory on the way is checked by the same rule, so a directory they own or can write
//! is itself a finding. Nothing here reads or prints a file's content.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `trusted_owner` / `trusted_group` as written: a name, or a numeric id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Principal {
    Id(u32),
    Name(String),
}

/// What the config says about trust, with names resolved to ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// `strict_permissions` (default true): false turns every check off (the escape hatch).
    pub strict: bool,
    /// `trusted_owner`: a uid trusted besides root.
    pub owner: Option<u32>,
    /// `trusted_group`: the one group allowed to have write access.
    pub group: Option<u32>,
    /// The user scope's user (crate::config::scope): trusted besides root, and the owner
    /// a fix hands a file back to. Absent in the system scope, whose JSON it leaves alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            strict: true,
            owner: None,
            group: None,
            user: None,
        }
    }
}

/// A `trusted_owner`/`trusted_group` that names nobody.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {name:?}: no such {what} in {}; write the numeric id instead", file.display())]
pub struct UnknownPrincipal {
    pub key: &'static str,
    pub name: String,
    pub what: &'static str,
    pub file: PathBuf,
}

impl Policy {
    /// The policy from the config's keys; names are looked up in `<root>/etc/passwd` and
    /// `<root>/etc/group` (files, not NSS: the generator runs before any name service).
    pub fn resolve(
        strict: Option<bool>,
        owner: Option<&Principal>,
        group: Option<&Principal>,
        root: &Path,
    ) -> Result<Policy, UnknownPrincipal> {
        let owner = owner
            .map(|p| lookup(p, "trusted_owner", "user", &root.join("etc/passwd")))
            .transpose()?;
        let group = group
            .map(|p| lookup(p, "trusted_group", "group", &root.join("etc/group")))
            .transpose()?;
        Ok(Policy {
            strict: strict.unwrap_or(true),
            owner,
            group,
            user: None,
        })
    }
}

/// The id of `p`, from the `name:x:id:…` lines of `db` when it is a name.
fn lookup(p: &Principal, key: &'static str, what: &'static str, db: &Path) -> Result<u32, UnknownPrincipal> {
    let name = match p {
        Principal::Id(id) => return Ok(*id),
        Principal::Name(n) => n,
    };
    let text = crate::bounded::read_text(db, crate::bounded::CONFIG_CAP).unwrap_or_default();
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[0] == name)
        .and_then(|f| f[2].parse().ok())
        .ok_or_else(|| UnknownPrincipal {
            key,
            name: name.clone(),
            what,
            file: db.to_path_buf(),
        })
}

/// Which rule a path is held to (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Strict,
    Ancestor,
}

/// What is wrong with one path. Owner and mode only: never content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Problem {
    #[error("is owned by uid {uid} (not root or the trusted_owner)")]
    Owner { uid: u32 },
    #[error("is owned by uid {uid} (not root, the user {user} or the trusted_owner)")]
    UserOwner { uid: u32, user: u32 },
    #[error("is writable by group {gid} (not the trusted_group)")]
    GroupWritable { gid: u32 },
    #[error("is writable by others")]
    OthersWritable,
    #[error("is writable by others and not a sticky root-owned directory like /tmp")]
    AncestorOthersWritable,
    #[error("cannot be examined: {reason}")]
    Unreadable { reason: String },
}

/// A path that fails its rule, and the command that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub path: PathBuf,
    pub problem: Problem,
}

impl Finding {
    /// The exact command an admin runs to fix it.
    pub fn fix(&self) -> String {
        let p = shell_quote(&self.path);
        match self.problem {
            Problem::Owner { .. } => format!("chown root:root {p}"),
            Problem::UserOwner { user, .. } => format!("chown {user} {p}"),
            Problem::GroupWritable { .. } | Problem::OthersWritable => format!("chmod go-w {p}"),
            Problem::AncestorOthersWritable => format!("chmod o-w {p}"),
            Problem::Unreadable { .. } => format!("ls -ld {p}"),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} (fix: {})", self.path.display(), self.problem, self.fix())
    }
}

/// `p` as one shell word: bare when it is plainly safe, else single-quoted.
pub fn shell_quote(p: &Path) -> String {
    let s = p.to_string_lossy();
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c)) {
        return s.into_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The owner, group and mode bits a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl From<&std::fs::Metadata> for Meta {
    fn from(m: &std::fs::Metadata) -> Self {
        Meta {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode(),
        }
    }
}

const GROUP_WRITE: u32 = 0o020;
const OTHERS_WRITE: u32 = 0o002;
const STICKY: u32 = 0o1000;

/// What `rule` finds wrong with a file or directory of metadata `m`.
pub fn judge(m: Meta, rule: Rule, policy: &Policy) -> Vec<Problem> {
    let mut out = Vec::new();
    if m.uid != 0 && Some(m.uid) != policy.owner && Some(m.uid) != policy.user {
        out.push(match policy.user {
            Some(user) => Problem::UserOwner { uid: m.uid, user },
            None => Problem::Owner { uid: m.uid },
        });
    }
    match rule {
        Rule::Strict => {
            if m.mode & GROUP_WRITE != 0 && Some(m.gid) != policy.group {
                out.push(Problem::GroupWritable { gid: m.gid });
            }
            if m.mode & OTHERS_WRITE != 0 {
                out.push(Problem::OthersWritable);
            }
        }
        // /tmp-like: anyone may create entries, but only an entry's owner may rename or
        // remove it, and root owns the directory itself.
        Rule::Ancestor if m.mode & OTHERS_WRITE != 0 && !(m.mode & STICKY != 0 && m.uid == 0) => {
            out.push(Problem::AncestorOthersWritable)
        }
        Rule::Ancestor => {}
    }
    out
}

/// Checks paths once each, collecting findings in the order met.
#[derive(Debug)]
pub struct Checker<'p> {
    policy: &'p Policy,
    /// Paths judged, with the stricter rule they were judged by.
    seen: BTreeMap<PathBuf, Rule>,
    /// Directories already resolved ([`Checker::links`]): the path as written → where it
    /// really is, and whether a link was followed on the way.
    resolved: BTreeMap<PathBuf, (PathBuf, bool)>,
    pub findings: Vec<Finding>,
}

/// How many links one path may pass through (the kernel's limit, MAXSYMLINKS).
const MAX_LINKS: u32 = 40;

impl<'p> Checker<'p> {
    pub fn new(policy: &'p Policy) -> Self {
        Checker {
            policy,
            seen: BTreeMap::new(),
            resolved: BTreeMap::new(),
            findings: Vec::new(),
        }
    }

    /// Whether `path` is still to be judged by `rule`: not judged yet, or judged by the
    /// ancestor rule only and now due for the strict one (whose findings then replace
    /// the earlier ones).
    fn mark(&mut self, path: &Path, rule: Rule) -> bool {
        match (self.seen.get(path), rule) {
            (Some(Rule::Strict), _) | (Some(Rule::Ancestor), Rule::Ancestor) => false,
            (Some(Rule::Ancestor), Rule::Strict) => {
                self.findings.retain(|f| f.path != path);
                self.seen.insert(path.to_path_buf(), rule);
                true
            }
            (None, _) => {
                self.seen.insert(path.to_path_buf(), rule);
                true
            }
        }
    }

    /// Checks `path` (symlinks followed) by `rule`, and every directory the links on its
    /// way make it pass through ([`Checker::links`]); a missing path is not a finding
    /// (the reader reports it where it matters).
    pub fn path(&mut self, path: &Path, rule: Rule) {
        let path = crate::paths::clean(path);
        if matches!(
            (self.seen.get(&path), rule),
            (Some(Rule::Strict), _) | (Some(_), Rule::Ancestor)
        ) {
            return;
        }
        match std::fs::metadata(&path) {
            Ok(m) => self.judged(&path, Meta::from(&m), rule),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => self.unreadable(&path, e.to_string()),
        }
    }

    fn unreadable(&mut self, path: &Path, reason: String) {
        if self.mark(path, Rule::Strict) {
            let problem = Problem::Unreadable { reason };
            self.findings.push(Finding {
                path: path.to_path_buf(),
                problem,
            });
        }
    }

    /// Judges `path` by `meta` already at hand (the `fstat` of the descriptor it was read
    /// through, or a `stat`), then the directories that links on its way lead through
    /// ([`Checker::links`]): whoever can write there can change what the link leads to.
    pub fn judged(&mut self, path: &Path, meta: Meta, rule: Rule) {
        let path = crate::paths::clean(path);
        if !self.mark(&path, rule) {
            return;
        }
        let problems = judge(meta, rule, self.policy);
        self.findings.extend(problems.into_iter().map(|problem| Finding {
            path: path.clone(),
            problem,
        }));
        self.links(&path);
    }

    /// A directory reached through links, by its real path (no links in it): `rule`
    /// for the directory itself.
    fn real_dir(&mut self, dir: &Path, rule: Rule) {
        if !self.mark(dir, rule) {
            return;
        }
        match std::fs::metadata(dir) {
            Ok(m) => {
                let problems = judge(Meta::from(&m), rule, self.policy);
                self.findings.extend(problems.into_iter().map(|problem| Finding {
                    path: dir.to_path_buf(),
                    problem,
                }));
            }
            Err(e) => {
                self.seen.remove(dir);
                self.unreadable(dir, e.to_string());
            }
        }
    }

    /// Resolves `path` link by link, as the kernel does, and judges every directory a
    /// link makes it pass through: the directory holding each link (whoever can write it
    /// can point the link elsewhere), the directory each link's target is in, and the
    /// directory the path's last name is found in, by [`Rule::Strict`]; every other
    /// directory on the way after a link (from `/` for an absolute target), by
    /// [`Rule::Ancestor`] (whoever can write one can rename what is below it away and put
    /// their own in its place). A path without links costs one `lstat` per directory
    /// not resolved before. Nothing is judged before the first link: those directories
    /// are the caller's ([`Checker::tree_file`], [`Checker::ancestors`]).
    pub fn links(&mut self, path: &Path) {
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            match std::env::current_dir() {
                Ok(cwd) => cwd.join(path),
                Err(_) => return,
            }
        };
        let names: Vec<std::ffi::OsString> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        let mut written = PathBuf::from("/");
        let mut real = PathBuf::from("/");
        let mut followed = 0;
        for (i, name) in names.iter().enumerate() {
            written.push(name);
            let last = i + 1 == names.len();
            if let Some((r, f)) = self.resolved.get(&written) {
                real.clone_from(r);
                followed = followed.max(u32::from(*f));
                continue;
            }
            if !self.step(&mut real, name, last, &mut followed) {
                return;
            }
            self.resolved.insert(written.clone(), (real.clone(), followed > 0));
        }
    }

    /// Looks `name` up in the real directory `real`, following links until it is not one
    /// (see [`Checker::links`]); `real` becomes where it is. False when the lookup
    /// ends (a missing name, a link that cannot be read, too many links).
    fn step(&mut self, real: &mut PathBuf, name: &std::ffi::OsStr, last: bool, followed: &mut u32) -> bool {
        let mut todo = vec![name.to_os_string()];
        // Lengths of `todo` at which a link's target ends.
        let mut ends: Vec<usize> = Vec::new();
        while let Some(c) = todo.pop() {
            let mut ends_target = false;
            while ends.last().is_some_and(|&e| e >= todo.len()) {
                ends.pop();
                ends_target = true;
            }
            if c == ".." {
                real.pop();
                continue;
            }
            if *followed > 0 {
                let rule = if ends_target || (last && todo.is_empty()) {
                    Rule::Strict
                } else {
                    Rule::Ancestor
                };
                let dir = real.clone();
                self.real_dir(&dir, rule);
            }
            let next = real.join(&c);
            match std::fs::symlink_metadata(&next) {
                Ok(m) if m.file_type().is_symlink() => {}
                Ok(_) => {
                    *real = next;
                    continue;
                }
                Err(_) => return false,
            }
            *followed += 1;
            let dir = real.clone();
            self.real_dir(&dir, Rule::Strict);
            if *followed > MAX_LINKS {
                self.unreadable(&next, "too many levels of symbolic links".into());
                return false;
            }
            let Ok(target) = std::fs::read_link(&next) else {
                return false;
            };
            if target.is_absolute() {
                *real = PathBuf::from("/");
            }
            ends.push(todo.len());
            for c in target.components().rev() {
                match c {
                    Component::Normal(n) => todo.push(n.to_os_string()),
                    Component::ParentDir => todo.push("..".into()),
                    _ => {}
                }
            }
        }
        true
    }

    /// Checks a stack's file: the directories from below `stacks_dir` down to it, then
    /// the file (by `meta` when it was read already). A file outside the tree (a config
    /// env file, `COMPOSE_FILE=/elsewhere`) has its own directory checked instead.
    pub fn tree_file(&mut self, stacks_dir: &Path, file: &Path, meta: Option<Meta>) {
        let file = crate::paths::clean(file);
        self.dirs_to(stacks_dir, &file);
        match meta {
            Some(m) => self.judged(&file, m, Rule::Strict),
            None => self.path(&file, Rule::Strict),
        }
    }

    /// The directories from below `stacks_dir` down to `file`, by [`Rule::Strict`].
    fn dirs_to(&mut self, stacks_dir: &Path, file: &Path) {
        let parent = file.parent().unwrap_or(Path::new("/"));
        let mut dirs: Vec<&Path> = parent
            .ancestors()
            .take_while(|d| d.starts_with(stacks_dir) && *d != stacks_dir)
            .collect();
        if dirs.is_empty() && !parent.starts_with(stacks_dir) {
            dirs.push(parent);
        }
        for d in dirs.into_iter().rev() {
            self.path(d, Rule::Strict);
        }
    }

    /// Checks the directories above `dir` by [`Rule::Ancestor`], up to `root` (the host
    /// root, or `/` for a path outside it).
    pub fn ancestors(&mut self, dir: &Path, root: &Path) {
        let dir = crate::paths::clean(dir);
        let top = if dir.starts_with(root) { root } else { Path::new("/") };
        let above: Vec<PathBuf> = dir
            .ancestors()
            .skip(1)
            .take_while(|a| a.starts_with(top))
            .map(Path::to_path_buf)
            .collect();
        for a in above {
            self.path(&a, Rule::Ancestor);
        }
    }
}

/// Env files that others may read: they hold secrets (a warning of `hlsys check`).
pub fn readable_by_others<'a>(files: impl IntoIterator<Item = &'a PathBuf>) -> Vec<PathBuf> {
    let set: BTreeSet<&PathBuf> = files.into_iter().collect();
    set.into_iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o004 != 0))
        .cloned()
        .collect()
}

/// The findings about one stack's files: the compose files `read` (with the metadata
/// they were read with) and `other` files by path (env files); none when the escape
/// hatch is on.
pub fn stack_findings<'a>(
    policy: &Policy,
    stacks_dir: &Path,
    read: &[(PathBuf, Meta)],
    other: impl IntoIterator<Item = &'a PathBuf>,
) -> Vec<Finding> {
    if !policy.strict {
        return Vec::new();
    }
    let mut c = Checker::new(policy);
    for (f, meta) in read {
        c.tree_file(stacks_dir, f, Some(*meta));
    }
    for f in other {
        c.tree_file(stacks_dir, f, None);
    }
    c.findings
}

/// How every message of [`describe`] starts, so `hlsys check` can tell trust failures
/// among a model's stack errors.
pub const UNTRUSTED: &str = "not trusted (whoever can write these can run containers as root): ";

/// Findings as one message: each path once, what is wrong with it, and its fixes.
pub fn describe(findings: &[Finding]) -> String {
    let mut list: Vec<String> = Vec::new();
    let mut rest = findings;
    while let Some(first) = rest.first() {
        let n = rest.iter().take_while(|f| f.path == first.path).count();
        let (same, after) = rest.split_at(n);
        let problems: Vec<String> = same.iter().map(|f| f.problem.to_string()).collect();
        let mut fixes: Vec<String> = same.iter().map(Finding::fix).collect();
        fixes.dedup();
        list.push(format!(
            "{} {} (fix: {})",
            first.path.display(),
            problems.join(" and "),
            fixes.join(" && ")
        ));
        rest = after;
    }
    format!("{UNTRUSTED}{}", list.join("; "))
}

/// The line logged at every run and shown by `hlsys check` while the escape hatch is on.
pub fn hatch_line(config_file: &Path) -> String {
    format!(
        "strict_permissions = false in {}: ownership and modes of the config and the stack tree are not checked",
        config_file.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy {
        strict: true,
        owner: None,
        group: None,
        user: None,
    };

    #[test]
    fn the_user_scope_trusts_the_user_and_root() {
        let u = Policy { user: Some(2000), ..P };
        assert_eq!(judge(m(2000, 2000, 0o100600), Rule::Strict, &u), []);
        assert_eq!(judge(m(0, 0, 0o100644), Rule::Strict, &u), []);
        let other = judge(m(2001, 2001, 0o100644), Rule::Strict, &u);
        assert_eq!(other, [Problem::UserOwner { uid: 2001, user: 2000 }]);
        let f = Finding {
            path: "/home/rl/lab/a.yml".into(),
            problem: other[0].clone(),
        };
        assert_eq!(f.fix(), "chown 2000 /home/rl/lab/a.yml");
        // Writable by anyone else is refused as in the system scope.
        assert_eq!(
            judge(m(2000, 2000, 0o100602), Rule::Strict, &u),
            [Problem::OthersWritable]
        );
        assert_eq!(
            judge(m(2000, 2001, 0o100620), Rule::Strict, &u),
            [Problem::GroupWritable { gid: 2001 }]
        );
    }

    fn m(uid: u32, gid: u32, mode: u32) -> Meta {
        Meta { uid, gid, mode }
    }

    #[test]
    fn strict_rule() {
        assert_eq!(judge(m(0, 0, 0o100644), Rule::Strict, &P), []);
        assert_eq!(
            judge(m(1000, 0, 0o644), Rule::Strict, &P),
            [Problem::Owner { uid: 1000 }]
        );
        assert_eq!(
            judge(m(0, 50, 0o664), Rule::Strict, &P),
            [Problem::GroupWritable { gid: 50 }]
        );
        assert_eq!(judge(m(0, 0, 0o646), Rule::Strict, &P), [Problem::OthersWritable]);
        let trusted = Policy {
            owner: Some(1000),
            group: Some(50),
            ..P
        };
        assert_eq!(judge(m(1000, 50, 0o775), Rule::Strict, &trusted), []);
        assert_eq!(
            judge(m(1000, 51, 0o775), Rule::Strict, &trusted),
            [Problem::GroupWritable { gid: 51 }]
        );
        // Sticky does not excuse a file or a directory inside the tree.
        assert_eq!(judge(m(0, 0, 0o1757), Rule::Strict, &P), [Problem::OthersWritable]);
    }

    #[test]
    fn ancestor_rule() {
        assert_eq!(judge(m(0, 0, 0o40775), Rule::Ancestor, &P), []);
        assert_eq!(judge(m(0, 0, 0o41777), Rule::Ancestor, &P), []);
        assert_eq!(
            judge(m(0, 0, 0o40777), Rule::Ancestor, &P),
            [Problem::AncestorOthersWritable]
        );
        assert_eq!(
            judge(m(7, 0, 0o41777), Rule::Ancestor, &P),
            [Problem::Owner { uid: 7 }, Problem::AncestorOthersWritable]
        );
    }

    #[test]
    fn fixes_are_exact_shell_commands() {
        let f = |path: &str, problem| Finding {
            path: path.into(),
            problem,
        };
        assert_eq!(f("/srv/a", Problem::Owner { uid: 1 }).fix(), "chown root:root /srv/a");
        assert_eq!(f("/srv/a b", Problem::OthersWritable).fix(), "chmod go-w '/srv/a b'");
        assert_eq!(
            f("/srv/it's", Problem::AncestorOthersWritable).fix(),
            r"chmod o-w '/srv/it'\''s'"
        );
    }

    #[test]
    fn a_path_is_named_once_with_its_fixes() {
        let f = |problem| Finding {
            path: "/srv/x".into(),
            problem,
        };
        let text = describe(&[
            f(Problem::Owner { uid: 7 }),
            f(Problem::GroupWritable { gid: 5 }),
            f(Problem::OthersWritable),
        ]);
        assert_eq!(
            text.strip_prefix(UNTRUSTED).unwrap(),
            "/srv/x is owned by uid 7 (not root or the trusted_owner) and is writable by group 5 (not the \
             trusted_group) and is writable by others (fix: chown root:root /srv/x && chmod go-w /srv/x)"
        );
    }

    /// Directories reached through links, in a temp dir that belongs to the runner.
    #[test]
    fn links_are_followed_link_by_link() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let t = d.path();
        let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        mode(t, 0o755);
        for dir in ["tree", "open", "real", "open2/sub", "fine/hop", "fine/real"] {
            std::fs::create_dir_all(t.join(dir)).unwrap();
        }
        for f in ["real/f", "open2/sub/f", "fine/real/f"] {
            std::fs::write(t.join(f), "x").unwrap();
        }
        // tree/f → open/next → real/f: open/ holds a link and is writable by others.
        symlink(t.join("open/next"), t.join("tree/f")).unwrap();
        symlink("../real/f", t.join("open/next")).unwrap();
        // tree/g → open2/sub/f: open2/ is passed through.
        symlink(t.join("open2/sub/f"), t.join("tree/g")).unwrap();
        // tree/h → fine/hop/next → fine/real/f: all the runner's, 0755.
        symlink(t.join("fine/hop/next"), t.join("tree/h")).unwrap();
        symlink(t.join("fine/real/f"), t.join("fine/hop/next")).unwrap();
        for dir in ["tree", "real", "open2/sub", "fine", "fine/hop", "fine/real"] {
            mode(&t.join(dir), 0o755);
        }
        mode(&t.join("open"), 0o757);
        mode(&t.join("open2"), 0o757);
        let policy = Policy {
            strict: true,
            owner: Some(nix::unistd::geteuid().as_raw()),
            group: Some(nix::unistd::getegid().as_raw()),
            user: None,
        };
        let found = |file: &str| {
            let mut c = Checker::new(&policy);
            c.path(&t.join(file), Rule::Strict);
            c.findings
                .into_iter()
                .filter(|f| f.path.starts_with(t))
                .map(|f| (f.path.strip_prefix(t).unwrap().to_path_buf(), f.problem))
                .collect::<Vec<_>>()
        };
        assert_eq!(found("tree/f"), [("open".into(), Problem::OthersWritable)]);
        assert_eq!(found("tree/g"), [("open2".into(), Problem::AncestorOthersWritable)]);
        assert_eq!(found("tree/h"), []);
        // A directory judged by the ancestor rule first and the strict one later has the
        // strict rule's findings.
        let mut c = Checker::new(&policy);
        c.path(&t.join("open2"), Rule::Ancestor);
        c.path(&t.join("open2"), Rule::Strict);
        assert_eq!(c.findings.len(), 1);
        assert_eq!(c.findings[0].problem, Problem::OthersWritable);
    }

    #[test]
    fn names_resolve_from_the_roots_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nadm:x:1234:1234::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nhomelab:x:4321:adm\n").unwrap();
        let name = |s: &str| Principal::Name(s.into());
        let p = Policy::resolve(None, Some(&name("adm")), Some(&name("homelab")), d.path()).unwrap();
        assert_eq!((p.strict, p.owner, p.group), (true, Some(1234), Some(4321)));
        let p = Policy::resolve(Some(false), Some(&Principal::Id(5)), None, d.path()).unwrap();
        assert_eq!((p.strict, p.owner, p.group), (false, Some(5), None));
        let e = Policy::resolve(None, Some(&name("nobody-here")), None, d.path()).unwrap_err();
        assert!(e.to_string().contains("numeric id"), "{e}");
    }
}
