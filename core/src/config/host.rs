//! The host as the binaries found it: the root its filesystem starts at and the config
//! file asked for. The core reads nothing ambient (no environment variable, no working
//! directory): `hlsys` and `hlsys-generator` read those in `main` and pass a [`Host`] down,
//! so a test can hand the generator a small fake root (`tests/cases/NN-name/`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

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
}

impl Host {
    /// `root` and `asked` as the binary read them (`None` or empty: not set); a relative
    /// `asked` path is taken from `cwd`, the binary's working directory.
    pub fn new(root: Option<OsString>, asked: Option<OsString>, cwd: &Path) -> Host {
        let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = set(root).map_or_else(|| PathBuf::from("/"), |r| clean(&cwd.join(r)));
        let config = set(asked).map(|p| clean(&cwd.join(p)));
        Host { root, config }
    }

    /// Which config file to read, and whether it must exist (it was asked for by name).
    pub fn config_path(&self) -> (PathBuf, bool) {
        match &self.config {
            Some(p) => (p.clone(), true),
            None => (self.root.join(DEFAULT_CONFIG.trim_start_matches('/')), false),
        }
    }

    /// The config, refused as unusable when it or the tree's top fails the trust model
    /// ([`config_findings`]) and `strict_permissions` is on: whoever can
    /// write them decides what runs as root.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let (path, must_exist) = self.config_path();
        let config = Config::load_under(&self.root, &path, must_exist)?;
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
