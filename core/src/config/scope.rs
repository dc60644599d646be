//! Which service manager hlsys serves: the system manager (root, /etc/hlsys, the system's
//! dockerd) or one user's manager (that user, their `~/.config/hlsys`, their rootless
//! dockerd), as Podman's Quadlet serves both from one generator.
//!
//! systemd tells a generator which one runs it with `SYSTEMD_SCOPE` (systemd.generator(7));
//! a user generator measured in a booted user manager (systemd 252) also gets `HOME` and
//! `XDG_RUNTIME_DIR`, but no `XDG_CONFIG_HOME` unless `~/.config/environment.d/` sets it.
//! The binaries read those in `main` and hand a [`UserEnv`] down: the core reads nothing
//! ambient.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use serde::Serialize;

/// The environment variable systemd sets for generators: `system` or `user`.
pub const SCOPE_ENV: &str = "SYSTEMD_SCOPE";

/// The config file below the user's config directory (`$XDG_CONFIG_HOME`, `~/.config`).
pub const USER_CONFIG: &str = "hlsys/hlsys.toml";

/// The rootless dockerd's socket below the user's runtime directory.
pub const USER_DOCKER_SOCKET: &str = "docker.sock";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// The system manager: units in the system, root's Docker.
    #[default]
    System,
    /// One user's manager: user units, that user's rootless Docker.
    User,
}

impl Scope {
    /// The scope `SYSTEMD_SCOPE` names: `user` is the user scope, anything else (unset
    /// too, as for a generator run by hand) the system one.
    pub fn from_env(value: Option<&OsStr>) -> Scope {
        match value {
            Some(v) if v == "user" => Scope::User,
            _ => Scope::System,
        }
    }

    pub fn is_system(&self) -> bool {
        *self == Scope::System
    }

    /// The target the manager reaches at start, which `homelab.target` is wanted by.
    pub fn boot_target(self) -> &'static str {
        match self {
            Scope::System => "multi-user.target",
            Scope::User => "default.target",
        }
    }
}

/// What the user scope needs to know about the user: who they are and where their
/// directories are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEnv {
    /// The user's uid: trusted besides root, like `trusted_owner`.
    pub uid: u32,
    /// `HOME`.
    pub home: PathBuf,
    /// `XDG_CONFIG_HOME` when set (and absolute, as the XDG spec requires).
    pub config_home: Option<PathBuf>,
}

/// A `UserEnv` could not be made: the variable it needs is missing or relative.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the user scope needs {0} set to an absolute path")]
pub struct MissingEnv(pub &'static str);

impl UserEnv {
    /// The user's environment as the binary read it (`None` or empty: not set).
    pub fn new(uid: u32, home: Option<OsString>, config_home: Option<OsString>) -> Result<UserEnv, MissingEnv> {
        let abs = |v: Option<OsString>| {
            v.filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|p| crate::paths::clean(&p))
        };
        let home = abs(home).ok_or(MissingEnv("HOME"))?;
        Ok(UserEnv {
            uid,
            home,
            config_home: abs(config_home),
        })
    }

    /// The user this process runs as (its effective uid), with their environment.
    pub fn of_process(home: Option<OsString>, config_home: Option<OsString>) -> Result<UserEnv, MissingEnv> {
        UserEnv::new(nix::unistd::geteuid().as_raw(), home, config_home)
    }

    /// `$XDG_CONFIG_HOME/hlsys/hlsys.toml`, by default `~/.config/hlsys/hlsys.toml`.
    pub fn config_path(&self) -> PathBuf {
        let base = self.config_home.clone().unwrap_or_else(|| self.home.join(".config"));
        base.join(USER_CONFIG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn only_user_is_the_user_scope() {
        assert_eq!(Scope::from_env(Some(OsStr::new("user"))), Scope::User);
        for v in [None, Some(OsStr::new("system")), Some(OsStr::new("User"))] {
            assert_eq!(Scope::from_env(v), Scope::System);
        }
        assert_eq!(Scope::User.boot_target(), "default.target");
        assert_eq!(Scope::System.boot_target(), "multi-user.target");
    }

    #[test]
    fn the_config_lives_in_the_xdg_config_directory() {
        let u = UserEnv::new(2000, Some("/home/rl/".into()), None).unwrap();
        assert_eq!(u.config_path(), Path::new("/home/rl/.config/hlsys/hlsys.toml"));
        let u = UserEnv::new(2000, Some("/home/rl".into()), Some("/home/rl/cfg".into())).unwrap();
        assert_eq!(u.config_path(), Path::new("/home/rl/cfg/hlsys/hlsys.toml"));
        // A relative XDG_CONFIG_HOME is invalid per the spec and ignored.
        let u = UserEnv::new(2000, Some("/home/rl".into()), Some("cfg".into())).unwrap();
        assert_eq!(u.config_path(), Path::new("/home/rl/.config/hlsys/hlsys.toml"));
        assert_eq!(UserEnv::new(1, None, None), Err(MissingEnv("HOME")));
        assert_eq!(UserEnv::new(1, Some("rel".into()), None), Err(MissingEnv("HOME")));
    }
}
