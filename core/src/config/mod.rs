//! `hlsys.toml` and the two tree-level TOML files the homelab trees already carry
//! (`<stacks_dir>/networks.toml`, `<stacks_dir>/service.toml`).
//!
//! Everything here is pure file reading: no Docker, no D-Bus, so the generator can use it
//! at early boot. Unknown keys are errors (with file, line and key) rather than being
//! silently ignored: a typo in `requires` must not quietly drop an ordering edge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::escape::BadValue;
pub use crate::escape::{check_path, check_value};
use crate::paths::clean;

pub mod host;
pub mod netcheck;
pub mod notify;
pub mod scope;
pub mod swarm;

/// Where the config lives when neither `--config` nor `HLSYS_CONFIG` says otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/hlsys/hlsys.toml";
/// Environment variable that overrides [`DEFAULT_CONFIG`] (read by the binaries, see
/// [`crate::config::host`]).
pub const CONFIG_ENV: &str = "HLSYS_CONFIG";
/// The env file every stack gets when `env_files` is not set: `global.env` beside the
/// config (so /etc/hlsys/global.env on a host, and nothing of the host in a test tree).
pub const DEFAULT_ENV_FILE: &str = "global.env";
/// `stacks_dir` when the config does not set it, below the host root.
pub const DEFAULT_STACKS_DIR: &str = "srv/compose";

/// A config problem that makes the whole config unusable (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    pub message: String,
}

/// One entry of `env_files`; `-/path` marks it optional, as in systemd's `EnvironmentFile=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvFileRef {
    pub path: PathBuf,
    pub optional: bool,
}

/// A drop-in `<config>.d/*.toml`: machine state that tools (`hlsys enable|disable`)
/// record without rewriting the user's file, so it may only set `[stacks.ID] enabled`.
/// Read by [`Config::load`], written by `hlsys enable`: one schema for both.
#[derive(Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DropIn {
    #[serde(default)]
    pub stacks: BTreeMap<String, DropInStack>,
}

#[derive(Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DropInStack {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `[layers.NAME]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LayerConfig {
    /// Layers this one is ordered after (and, unless listed in `requires`, wants).
    #[serde(default)]
    pub after: Vec<String>,
    /// Layers this one hard-requires (implies ordering after them).
    #[serde(default)]
    pub requires: Vec<String>,
    /// Explicit members (stack ids). `None`: the stacks under `<stacks_dir>/<layer>/`.
    #[serde(default)]
    pub stacks: Option<Vec<String>>,
}

/// `[networks.NAME]`, the format of the homelab trees' `networks.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    #[serde(default = "default_driver")]
    pub driver: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub subnet: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_driver() -> String {
    "bridge".to_string()
}

/// `[stacks.ID]` in hlsys.toml, `[ID]` in service.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wants: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_start_sec: Option<u64>,
}

/// service.toml only carries dependencies.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceTomlEntry {
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    wants: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    stacks_dir: Option<PathBuf>,
    unit_prefix: Option<String>,
    env_files: Option<Vec<String>>,
    hlsys_path: Option<PathBuf>,
    max_parallel_pulls: Option<u32>,
    #[serde(default)]
    layers: BTreeMap<String, LayerConfig>,
    #[serde(default)]
    networks: BTreeMap<String, NetworkConfig>,
    #[serde(default)]
    stacks: BTreeMap<String, StackConfig>,
    /// The trust model ([`crate::trust`]); only the config file itself may turn it off.
    strict_permissions: Option<bool>,
    trusted_owner: Option<crate::trust::Principal>,
    trusted_group: Option<crate::trust::Principal>,
    #[serde(default)]
    swarm: swarm::SwarmConfig,
    #[serde(default)]
    notify: notify::NotifyConfig,
    metrics: Option<notify::MetricsConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetworksToml {
    #[serde(default)]
    networks: BTreeMap<String, NetworkConfig>,
}

/// The resolved configuration: defaults filled in, paths absolute, the tree's
/// networks.toml and service.toml merged in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// The file it was read from; `None` when no config exists and defaults apply.
    pub source: Option<PathBuf>,
    pub stacks_dir: PathBuf,
    pub unit_prefix: String,
    pub env_files: Vec<EnvFileRef>,
    pub hlsys_path: PathBuf,
    /// How many stacks' preparations may pull images at once (0: none prepares; each
    /// stack pulls and creates at its turn). See crate::units::prepare.
    pub max_parallel_pulls: u32,
    pub layers: BTreeMap<String, LayerConfig>,
    pub networks: BTreeMap<String, NetworkConfig>,
    /// Which file defined each network (for error messages and `hlsys network status`).
    pub network_sources: BTreeMap<String, PathBuf>,
    pub stacks: BTreeMap<String, StackConfig>,
    /// Files read in addition to `source` (networks.toml, service.toml), for staleness checks.
    pub tree_files: Vec<PathBuf>,
    /// Who may own and write the files hlsys acts on ([`crate::trust`]).
    pub trust: crate::trust::Policy,
    /// `[swarm]`: `hlsys swarm` only.
    pub swarm: swarm::SwarmConfig,
    /// `[notify]`: the notifier units and `hlsys notify` (crate::units::notify).
    pub notify: notify::NotifyConfig,
    /// `[metrics]`: the metrics socket (crate::units::metrics); `None`: none.
    pub metrics: Option<notify::MetricsConfig>,
    /// Which manager the units are for (set by [`host::Host::load_config`]); left out of
    /// the JSON in the system scope, which reads as it always did.
    #[serde(skip_serializing_if = "scope::Scope::is_system")]
    pub scope: scope::Scope,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: None,
            stacks_dir: PathBuf::from("/srv/compose"),
            unit_prefix: "homelab".to_string(),
            env_files: Vec::new(),
            hlsys_path: PathBuf::from("/usr/bin/hlsys"),
            max_parallel_pulls: DEFAULT_MAX_PARALLEL_PULLS,
            layers: BTreeMap::new(),
            networks: BTreeMap::new(),
            network_sources: BTreeMap::new(),
            stacks: BTreeMap::new(),
            tree_files: Vec::new(),
            trust: crate::trust::Policy::default(),
            swarm: swarm::SwarmConfig::default(),
            notify: notify::NotifyConfig::default(),
            metrics: None,
            scope: scope::Scope::System,
        }
    }
}

/// Turns a toml error into "line L, column C: message" without the source excerpt
/// toml prints (it can span many lines and carry secrets from the file).
fn toml_error(file: &Path, text: &str, err: toml::de::Error) -> ConfigError {
    let msg = err.message().trim().to_string();
    let message = match err.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("line {line}, column {col}: {msg}")
        }
        None => msg,
    };
    ConfigError {
        file: file.to_path_buf(),
        message,
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A config-side file (hlsys.toml, drop-ins, networks.toml, service.toml), bounded by
/// [`crate::bounded::CONFIG_CAP`]; `None` when it does not exist.
fn read_text(file: &Path) -> Result<Option<String>, ConfigError> {
    crate::bounded::read_text_opt(file, crate::bounded::CONFIG_CAP).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        message: e.to_string(),
    })
}

fn absolutize(base: &Path, p: &Path) -> PathBuf {
    clean(&base.join(p))
}

/// A [`ConfigError`] about `file`.
fn config_error(file: &Path, message: String) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        message,
    }
}

/// `env_files` entries: `-` marks an optional one; relative paths are from `base`.
fn env_file_refs(list: Vec<String>, base: &Path, file: &Path) -> Result<Vec<EnvFileRef>, ConfigError> {
    let mut refs = Vec::new();
    for entry in list {
        check_value("env_files entry", &entry).map_err(|e| config_error(file, e.to_string()))?;
        let (optional, p) = match entry.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, entry.as_str()),
        };
        if p.is_empty() {
            return Err(config_error(file, "env_files: empty path".into()));
        }
        let path = absolutize(base, Path::new(p));
        check_path("env_files entry", &path).map_err(|e| config_error(file, e.to_string()))?;
        refs.push(EnvFileRef { path, optional });
    }
    Ok(refs)
}

/// `max_parallel_pulls`, its default when absent.
fn max_parallel_pulls(n: Option<u32>, file: &Path) -> Result<u32, ConfigError> {
    match n {
        None => Ok(DEFAULT_MAX_PARALLEL_PULLS),
        Some(n) if n > MAX_PARALLEL_PULLS => Err(config_error(
            file,
            format!("max_parallel_pulls: {n} is more than {MAX_PARALLEL_PULLS}"),
        )),
        Some(n) => Ok(n),
    }
}

/// `hlsys_path` must be a path systemd runs: absolute, and safe in `Exec*=`.
fn check_hlsys_path(p: &Path, file: &Path) -> Result<(), ConfigError> {
    if !p.is_absolute() {
        let message = format!("hlsys_path {:?} must be absolute (systemd runs it)", p.display());
        return Err(config_error(file, message));
    }
    check_path("hlsys_path", p).map_err(|e| config_error(file, e.to_string()))?;
    // systemd refuses such an executable path in Exec*= (string_is_safe()).
    if p.to_string_lossy()
        .chars()
        .any(|c| c < ' ' || matches!(c, '"' | '\'' | '\\' | '\x7f'))
    {
        let message = format!(
            "hlsys_path {:?}: systemd does not run an executable whose path has quotes, backslashes or control characters",
            p.display()
        );
        return Err(config_error(file, message));
    }
    Ok(())
}

/// Largest `timeout_start_sec`: systemd keeps times in microseconds in a u64 and refuses
/// a `TimeoutStartSec=` whose microseconds overflow it (about 584,542 years).
pub const MAX_TIMEOUT_START_SEC: u64 = u64::MAX / 1_000_000 - 1;
/// Longest `unit_prefix`: unit names must stay within systemd's 255 characters with a
/// stack id or layer name after it.
pub const MAX_UNIT_PREFIX: usize = 64;
/// Pulls at once by default: a few overlap the latency of each, more only share the
/// same link and disk.
pub const DEFAULT_MAX_PARALLEL_PULLS: u32 = 3;
pub const MAX_PARALLEL_PULLS: u32 = 64;
/// Longest layer or network name.
pub const MAX_NAME: usize = 128;

impl Config {
    /// Reads the config from `path` (absolute: the binaries join a relative one to their
    /// working directory, see [`crate::config::host`]) on a host whose root is `/`. A missing file
    /// gives the defaults unless `must_exist`.
    pub fn load(path: &Path, must_exist: bool) -> Result<Config, ConfigError> {
        Self::load_under(Path::new("/"), path, must_exist)
    }

    /// [`Config::load`] on a host whose filesystem starts at `root` (a fake root in tests):
    /// the default `stacks_dir` lies below it.
    pub fn load_under(root: &Path, path: &Path, must_exist: bool) -> Result<Config, ConfigError> {
        let path = clean(path);
        check_path("config path", &path).map_err(|e| ConfigError {
            file: path.clone(),
            message: e.to_string(),
        })?;
        let text = read_text(&path)?;
        let (raw, source) = match text {
            Some(t) => {
                let raw: RawConfig = toml::from_str(&t).map_err(|e| toml_error(&path, &t, e))?;
                (raw, Some(path.clone()))
            }
            None if must_exist => {
                return Err(ConfigError {
                    file: path,
                    message: "config file does not exist".into(),
                })
            }
            None => (RawConfig::default(), None),
        };
        Self::from_raw(raw, source, &path, root)
    }

    /// Parses config text as if read from `file` (used by tests and `hlsys check`).
    pub fn from_str_at(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(file, text, e))?;
        Self::from_raw(raw, Some(file.to_path_buf()), file, Path::new("/"))
    }

    /// `file`: the config file read (`source`), or looked for in vain; relative paths in
    /// it, the default env file and the drop-ins are next to it.
    fn from_raw(raw: RawConfig, source: Option<PathBuf>, file: &Path, root: &Path) -> Result<Config, ConfigError> {
        let file = file.to_path_buf();
        let base = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        let base = base.as_path();
        let bad = |e: BadValue| ConfigError {
            file: file.clone(),
            message: e.to_string(),
        };
        let err = |message: String| ConfigError {
            file: file.clone(),
            message,
        };
        let mut cfg = Config::default();
        cfg.source = source.clone();
        cfg.stacks_dir = root.join(DEFAULT_STACKS_DIR);
        cfg.env_files = vec![EnvFileRef {
            path: base.join(DEFAULT_ENV_FILE),
            optional: true,
        }];
        if let Some(d) = raw.stacks_dir {
            cfg.stacks_dir = absolutize(base, &d);
        }
        check_path("stacks_dir", &cfg.stacks_dir).map_err(bad)?;
        if let Some(p) = raw.unit_prefix {
            if p.is_empty()
                || p.len() > MAX_UNIT_PREFIX
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(err(format!(
                    "unit_prefix {p:?}: only ASCII letters, digits, '-', '_' and '.' are allowed, at most {MAX_UNIT_PREFIX}"
                )));
            }
            cfg.unit_prefix = p;
        }
        if let Some(list) = raw.env_files {
            cfg.env_files = env_file_refs(list, base, &file)?;
        }
        if let Some(p) = raw.hlsys_path {
            check_hlsys_path(&p, &file)?;
            cfg.hlsys_path = p;
        }
        cfg.max_parallel_pulls = max_parallel_pulls(raw.max_parallel_pulls, &file)?;
        for name in raw.layers.keys() {
            check_name("layer", name).map_err(bad)?;
        }
        for (name, st) in &raw.stacks {
            check_value("stack", name).map_err(bad)?;
            if st.timeout_start_sec == Some(0) {
                return Err(err(format!(
                    "stacks.{name}.timeout_start_sec: 0 would disable the start timeout; use a positive number of seconds"
                )));
            }
            if st.timeout_start_sec.is_some_and(|t| t > MAX_TIMEOUT_START_SEC) {
                return Err(err(format!(
                    "stacks.{name}.timeout_start_sec: more than {MAX_TIMEOUT_START_SEC} seconds, which systemd cannot represent"
                )));
            }
            if let Some(l) = &st.layer {
                check_name("layer", l).map_err(bad)?;
            }
        }
        cfg.trust = crate::trust::Policy::resolve(
            raw.strict_permissions,
            raw.trusted_owner.as_ref(),
            raw.trusted_group.as_ref(),
            root,
        )
        .map_err(|e| err(e.to_string()))?;
        raw.swarm.validate().map_err(|e| err(e.to_string()))?;
        cfg.swarm = raw.swarm;
        (cfg.notify, cfg.metrics) = notify::validated(raw.notify, raw.metrics).map_err(&err)?;
        cfg.layers = raw.layers;
        cfg.stacks = raw.stacks;
        for (name, net) in raw.networks {
            check_name("network", &name).map_err(bad)?;
            cfg.network_sources.insert(name.clone(), file.clone());
            cfg.networks.insert(name, net);
        }
        cfg.merge_tree_files()?;
        cfg.merge_dropins(&file)?;
        Ok(cfg)
    }

    /// The drop-in directory next to the config: `hlsys.toml.d/` for `hlsys.toml`.
    pub fn dropin_dir(config_file: &Path) -> PathBuf {
        let name = config_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        config_file.with_file_name(format!("{name}.d"))
    }

    /// Merges `<config>.d/*.toml` in name order. Drop-ins record machine state that
    /// tools change (`hlsys enable|disable`) without rewriting the user's file, so they
    /// may only set `[stacks.ID] enabled`; a later file wins.
    fn merge_dropins(&mut self, config_file: &Path) -> Result<(), ConfigError> {
        let dir = Self::dropin_dir(config_file);
        let Ok(rd) = std::fs::read_dir(&dir) else { return Ok(()) };
        let mut files: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .collect();
        files.sort();
        for f in files {
            let Some(t) = read_text(&f)? else { continue };
            let d: DropIn = toml::from_str(&t).map_err(|e| toml_error(&f, &t, e))?;
            for (id, st) in d.stacks {
                check_value("stack", &id).map_err(|e| ConfigError {
                    file: f.clone(),
                    message: e.to_string(),
                })?;
                if let Some(en) = st.enabled {
                    self.stacks.entry(id).or_default().enabled = Some(en);
                }
            }
            self.tree_files.push(f);
        }
        Ok(())
    }

    /// Merges `<stacks_dir>/networks.toml` and `<stacks_dir>/service.toml`. The same name
    /// defined in two places with different values is an error naming both files.
    fn merge_tree_files(&mut self) -> Result<(), ConfigError> {
        let nets_file = self.stacks_dir.join("networks.toml");
        if let Some(t) = read_text(&nets_file)? {
            let raw: RawNetworksToml = toml::from_str(&t).map_err(|e| toml_error(&nets_file, &t, e))?;
            self.tree_files.push(nets_file.clone());
            for (name, net) in raw.networks {
                check_name("network", &name).map_err(|e| ConfigError {
                    file: nets_file.clone(),
                    message: e.to_string(),
                })?;
                match self.networks.get(&name) {
                    Some(existing) if *existing != net => {
                        return Err(ConfigError {
                            file: nets_file.clone(),
                            message: format!(
                                "network {name:?} is defined differently in {} and {}",
                                self.network_sources[&name].display(),
                                nets_file.display()
                            ),
                        })
                    }
                    Some(_) => {}
                    None => {
                        self.network_sources.insert(name.clone(), nets_file.clone());
                        self.networks.insert(name, net);
                    }
                }
            }
        }
        let svc_file = self.stacks_dir.join("service.toml");
        if let Some(t) = read_text(&svc_file)? {
            let raw: BTreeMap<String, ServiceTomlEntry> =
                toml::from_str(&t).map_err(|e| toml_error(&svc_file, &t, e))?;
            self.tree_files.push(svc_file.clone());
            let cfg_file = self.source.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
            for (id, entry) in raw {
                let st = self.stacks.entry(id.clone()).or_default();
                for (what, from_cfg, from_svc) in [
                    ("requires", &mut st.requires, entry.requires),
                    ("wants", &mut st.wants, entry.wants),
                ] {
                    if from_svc.is_empty() {
                        continue;
                    }
                    if from_cfg.is_empty() {
                        *from_cfg = from_svc;
                    } else if sorted(from_cfg) != sorted(&from_svc) {
                        return Err(ConfigError {
                            file: svc_file.clone(),
                            message: format!(
                                "{id}.{what} is {:?} here but stacks.{id}.{what} is {:?} in {}",
                                from_svc,
                                from_cfg,
                                cfg_file.display()
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Every file whose content decides the generated units, besides the stacks' own files.
    pub fn input_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.source.iter().cloned().collect();
        v.extend(self.tree_files.iter().cloned());
        v
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Layer and network names become parts of unit and Docker names: keep them simple.
pub fn check_name(what: &str, name: &str) -> Result<(), BadValue> {
    if name.len() > MAX_NAME {
        return Err(BadValue::TooLong {
            what: what.to_string(),
            max: MAX_NAME,
        });
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || name.starts_with(['-', '.'])
    {
        return Err(BadValue::Name {
            what: what.to_string(),
            value: name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn missing_default_config_gives_defaults() {
        let d = tempfile::tempdir().unwrap();
        let c = Config::load(&d.path().join("none.toml"), false).unwrap();
        assert_eq!(c.unit_prefix, "homelab");
        assert_eq!(c.stacks_dir, PathBuf::from("/srv/compose"));
        assert!(c.source.is_none());
        assert!(Config::load(&d.path().join("none.toml"), true).is_err());
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "hlsys.toml",
            "stacks_dir = \"/x\"\n\n[stacks.a]\nrequire = [\"b\"]\n",
        );
        let e = Config::load(&p, true).unwrap_err();
        assert_eq!(e.file, p);
        assert!(e.message.contains("line 4"), "{}", e.message);
        assert!(e.message.contains("require"), "{}", e.message);
    }

    #[test]
    fn max_parallel_pulls_defaults_to_a_few_and_is_bounded() {
        let at = Path::new("/etc/hlsys/hlsys.toml");
        assert_eq!(Config::from_str_at("", at).unwrap().max_parallel_pulls, 3);
        assert_eq!(
            Config::from_str_at("max_parallel_pulls = 0", at)
                .unwrap()
                .max_parallel_pulls,
            0
        );
        let e = Config::from_str_at("max_parallel_pulls = 65", at).unwrap_err();
        assert!(e.message.contains("max_parallel_pulls: 65"), "{}", e.message);
        assert_eq!(e.file, at);
    }

    #[test]
    fn relative_paths_and_optional_env_files() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "etc/hlsys.toml",
            "stacks_dir = \"../tree\"\nenv_files = [\"-g.env\", \"/abs.env\"]\n",
        );
        let c = Config::load(&p, true).unwrap();
        assert_eq!(c.stacks_dir, d.path().join("tree"));
        assert_eq!(
            c.env_files,
            vec![
                EnvFileRef {
                    path: d.path().join("etc/g.env"),
                    optional: true
                },
                EnvFileRef {
                    path: PathBuf::from("/abs.env"),
                    optional: false
                },
            ]
        );
    }

    #[test]
    fn network_defined_twice_differently_names_both_files() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "hlsys.toml",
            "stacks_dir = \"tree\"\n[networks.proxy]\nsubnet = \"172.20.0.0/24\"\n",
        );
        let n = write(
            d.path(),
            "tree/networks.toml",
            "[networks.proxy]\nsubnet = \"172.21.0.0/24\"\n",
        );
        let e = Config::load(&p, true).unwrap_err();
        assert!(e.message.contains(&p.display().to_string()), "{}", e.message);
        assert!(e.message.contains(&n.display().to_string()), "{}", e.message);
        // Same values in both places are fine.
        write(
            d.path(),
            "tree/networks.toml",
            "[networks.proxy]\nsubnet = \"172.20.0.0/24\"\n",
        );
        assert!(Config::load(&p, true).is_ok());
    }

    #[test]
    fn service_toml_merges_and_conflicts() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "hlsys.toml",
            "stacks_dir = \"tree\"\n[stacks.a]\nwants = [\"c\"]\n",
        );
        write(d.path(), "tree/service.toml", "[a]\nrequires = [\"b\"]\n");
        let c = Config::load(&p, true).unwrap();
        assert_eq!(c.stacks["a"].requires, vec!["b"]);
        assert_eq!(c.stacks["a"].wants, vec!["c"]);
        write(d.path(), "tree/service.toml", "[a]\nwants = [\"d\"]\n");
        let e = Config::load(&p, true).unwrap_err();
        assert!(e.message.contains("a.wants"), "{}", e.message);
        write(d.path(), "tree/service.toml", "[a]\nwant = [\"d\"]\n");
        let e = Config::load(&p, true).unwrap_err();
        assert!(e.message.contains("want"), "{}", e.message);
        assert!(e.file.ends_with("service.toml"));
    }

    #[test]
    fn dropins_set_enabled_and_later_files_win() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "hlsys.toml",
            "stacks_dir = \"tree\"\n[stacks.a]\nenabled = true\n",
        );
        write(
            d.path(),
            "hlsys.toml.d/10-x.toml",
            "[stacks.a]\nenabled = false\n[stacks.b]\nenabled = false\n",
        );
        write(d.path(), "hlsys.toml.d/50-y.toml", "[stacks.b]\nenabled = true\n");
        let c = Config::load(&p, true).unwrap();
        assert_eq!(c.stacks["a"].enabled, Some(false));
        assert_eq!(c.stacks["b"].enabled, Some(true));
        write(d.path(), "hlsys.toml.d/60-z.toml", "[stacks.b]\nlayer = \"x\"\n");
        let e = Config::load(&p, true).unwrap_err();
        assert!(e.file.ends_with("60-z.toml") && e.message.contains("layer"), "{e}");
    }

    #[test]
    fn paths_for_units_are_checked() {
        let at = Path::new("/etc/x.toml");
        let e = Config::from_str_at("stacks_dir = \"/srv/a \"\n", at).unwrap_err();
        assert!(e.message.contains("blank"), "{e}");
        let e = Config::from_str_at("env_files = [\"/e/a\\tb\"]\n", at).unwrap_err();
        assert!(e.message.contains("control character"), "{e}");
        let e = Config::from_str_at("hlsys_path = \"/usr/bin/hlsys\\r\"\n", at).unwrap_err();
        assert!(e.message.contains("control character"), "{e}");
        let d = tempfile::tempdir().unwrap();
        for bad in ["a\nConflicts=docker.service", "a\rb", "a "] {
            let e = Config::load(&d.path().join(bad), true).unwrap_err();
            assert!(e.message.contains("config path"), "{e}");
        }
        let e = Config::from_str_at("[stacks.a]\ntimeout_start_sec = 9223372036854775807\n", at).unwrap_err();
        assert!(e.message.contains("timeout_start_sec"), "{e}");
        let ok = format!("[stacks.a]\ntimeout_start_sec = {MAX_TIMEOUT_START_SEC}\n");
        assert!(Config::from_str_at(&ok, at).is_ok());
    }

    #[test]
    fn notify_and_metrics_are_read_and_checked() {
        let at = Path::new("/etc/hlsys/hlsys.toml");
        let c = Config::from_str_at("", at).unwrap();
        assert!(!c.notify.enabled() && c.metrics.is_none());
        let c = Config::from_str_at(
            "[notify]\non_ready = true\n[[notify.target]]\nkind = \"ntfy\"\nurl = \"http://127.0.0.1:8/lab\"\ntoken_file = \"/etc/hlsys/ntfy.token\"\n[metrics]\n",
            at,
        )
        .unwrap();
        assert!(c.notify.enabled() && c.notify.on_ready);
        assert_eq!(c.notify.target[0].kind, notify::TargetKind::Ntfy);
        assert_eq!(c.metrics.unwrap().listen, "127.0.0.1:9464");
        let e = Config::from_str_at(
            "[notify]\n[[notify.target]]\nkind = \"webhook\"\nurl = \"http://h/\"\ntoken = \"x\"\n",
            at,
        )
        .unwrap_err();
        assert!(e.message.contains("line 5") && e.message.contains("token"), "{e}");
        let e = Config::from_str_at("[metrics]\nlisten = \"/run/m.sock\"\n", at).unwrap_err();
        assert!(e.message.contains("metrics.listen"), "{e}");
        let e = Config::from_str_at("[[notify.target]]\nkind = \"mail\"\nurl = \"http://h/\"\n", at).unwrap_err();
        assert!(e.message.contains("line 2"), "{e}");
        // https is refused when the file is read (file, line, key), not at the first incident.
        let e = Config::from_str_at(
            "[notify]\n[[notify.target]]\nkind = \"ntfy\"\nurl = \"https://ntfy.sh/lab\"\n",
            at,
        )
        .unwrap_err();
        assert_eq!(e.file, at);
        assert!(
            e.message
                .starts_with("line 4, column 7: notify.target.url \"https://ntfy.sh/lab\": https:// is not supported"),
            "{e}"
        );
    }

    #[test]
    fn special_config_files_are_refused() {
        let e = Config::load(Path::new("/dev/zero"), true).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
    }

    #[test]
    fn newline_in_paths_is_refused() {
        let e = Config::from_str_at("stacks_dir = \"/srv/a\\nb\"\n", Path::new("/etc/x.toml")).unwrap_err();
        assert!(e.message.contains("control character"), "{e}");
    }
}
