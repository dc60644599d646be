//! The host as the binaries found it: the root its filesystem starts at and the config
//! file asked for. The core reads nothing ambient (no environment variable, no working
//! directory): `hlsys` and `hlsys-generator` read those in `main` and pass a [`Host`] down,
//! so a test can hand the generator a small fake root (`tests/cases/NN-name/`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::scope::{Scope, UserEnv};
use super::{Config, ConfigError, DEFAULT_CONFIG};
use crate::paths::clean;
use crate::trust::{Checker, Finding, Rule};

/// Environment variable the generator reads for its host root (tests only; `/` otherwise).
pub const ROOT_ENV: &str = "HLSYS_GENERATOR_ROOT";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Where the host's filesystem starts: `/`, or a fake root in tests.
    pub root: PathBuf,
    /// The config file asked for (`--config`, else `HLSYS_CONFIG`), absolute; `None`:
    /// the default one below `root`, which may be absent.
    pub config: Option<PathBuf>,
    /// The user scope's user; `None`: the system scope (see [`Host::scope`]).
    pub user: Option<UserEnv>,
}

impl Host {
    /// `root` and `asked` as the binary read them (`None` or empty: not set); a relative
    /// `asked` path is taken from `cwd`, the binary's working directory.
    pub fn new(root: Option<OsString>, asked: Option<OsString>, cwd: &Path) -> Host {
        let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = set(root).map_or_else(|| PathBuf::from("/"), |r| clean(&cwd.join(r)));
        let config = set(asked).map(|p| clean(&cwd.join(p)));
        Host {
            root,
            config,
            user: None,
        }
    }

    /// This host in the user scope of `user`: their config, their files trusted.
    pub fn for_user(self, user: UserEnv) -> Host {
        Host {
            user: Some(user),
            ..self
        }
    }

    pub fn scope(&self) -> Scope {
        match self.user {
            Some(_) => Scope::User,
            None => Scope::System,
        }
    }

    /// Which config file to read, and whether it must exist (it was asked for by name).
    /// The user scope's default is the user's own (crate::config::scope), as given: the
    /// fake root of a test does not move a home directory.
    pub fn config_path(&self) -> (PathBuf, bool) {
        match (&self.config, &self.user) {
            (Some(p), _) => (p.clone(), true),
            (None, Some(u)) => (u.config_path(), false),
            (None, None) => (self.root.join(DEFAULT_CONFIG.trim_start_matches('/')), false),
        }
    }

    /// The config as read, marked with this host's scope; in the user scope its user is
    /// trusted besides root.
    fn read_config(&self) -> Result<Config, ConfigError> {
        let (path, must_exist) = self.config_path();
        let mut config = Config::load_under(&self.root, &path, must_exist)?;
        config.scope = self.scope();
        config.trust.user = self.user.as_ref().map(|u| u.uid);
        Ok(config)
    }

    /// The config, refused as unusable when it or the tree's top fails the trust model
    /// ([`config_findings`]) and `strict_permissions` is on: whoever can
    /// write them decides what runs as root.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let (path, _) = self.config_path();
        let config = self.read_config()?;
        if !config.trust.strict {
            return Ok(config);
        }
        let findings = config_findings(&config, &self.root);
        if findings.is_empty() {
            return Ok(config);
        }
        Err(ConfigError {
            file: config.source.unwrap_or(path),
            message: crate::trust::describe(&findings),
        })
    }
}

/// The findings about the config side, for a config read from `config.source` on a host
/// whose root is `root`: the config and its directory, its drop-ins, `stacks_dir`, the
/// tree's `networks.toml`/`service.toml`, and the directories above the config's and
/// above `stacks_dir`. Any finding makes the config unusable.
pub fn config_findings(config: &Config, root: &Path) -> Vec<Finding> {
    let mut c = Checker::new(&config.trust);
    if let Some(src) = &config.source {
        let dir = src.parent().unwrap_or(Path::new("/"));
        c.ancestors(dir, root);
        c.path(dir, Rule::Strict);
        c.path(src, Rule::Strict);
        c.path(&Config::dropin_dir(src), Rule::Strict);
    }
    c.ancestors(&config.stacks_dir, root);
    c.path(&config.stacks_dir, Rule::Strict);
    for f in &config.tree_files {
        c.path(f, Rule::Strict);
    }
    c.findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_taken_from_the_working_directory() {
        let h = Host::new(Some("fake".into()), Some("x/../hlsys.toml".into()), Path::new("/w"));
        assert_eq!(h.root, Path::new("/w/fake"));
        assert_eq!(h.config_path(), (PathBuf::from("/w/hlsys.toml"), true));
    }

    #[test]
    fn unset_or_empty_means_the_real_root_and_the_default_config() {
        for v in [None, Some(OsString::new())] {
            let h = Host::new(v.clone(), v, Path::new("/w"));
            assert_eq!(h.root, Path::new("/"));
            assert_eq!(h.config_path(), (PathBuf::from(DEFAULT_CONFIG), false));
        }
        let h = Host::new(Some("/r".into()), None, Path::new("/w"));
        assert_eq!(h.config_path(), (PathBuf::from("/r/etc/hlsys/hlsys.toml"), false));
    }

    #[test]
    fn the_user_scope_reads_the_users_config_and_trusts_them() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home/rl");
        let cfg = home.join(".config/hlsys");
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::write(cfg.join("hlsys.toml"), "stacks_dir = \"lab\"\n").unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        let user = UserEnv::new(uid, Some(home.clone().into()), None).unwrap();
        let h = Host::new(None, None, Path::new("/")).for_user(user);
        assert_eq!(h.scope(), Scope::User);
        assert_eq!(h.config_path(), (cfg.join("hlsys.toml"), false));
        let c = h.read_config().unwrap();
        assert_eq!((c.scope, c.trust.user), (Scope::User, Some(uid)));
        assert_eq!(c.stacks_dir, cfg.join("lab"));
        assert_eq!(c.env_files[0].path, cfg.join("global.env"));
        let sys = Host::new(Some(d.path().into()), None, Path::new("/"));
        assert_eq!(sys.scope(), Scope::System);
    }

    #[test]
    fn an_absent_default_config_gives_defaults_below_the_root() {
        let d = tempfile::tempdir().unwrap();
        let h = Host::new(Some(d.path().into()), None, Path::new("/"));
        // Config::load_under, not h.load_config(): the temp dir belongs to whoever runs
        // the tests, which the trust check would refuse (tests/trust.rs covers that).
        let (path, must_exist) = h.config_path();
        let c = Config::load_under(&h.root, &path, must_exist).unwrap();
        assert_eq!(c.source, None);
        assert_eq!(c.stacks_dir, d.path().join("srv/compose"));
        assert_eq!(c.env_files[0].path, d.path().join("etc/hlsys/global.env"));
        assert!(c.env_files[0].optional);
    }
}
