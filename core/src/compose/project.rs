//! What hlsys reads from a Compose project once [`crate::compose::load`] has merged its files:
//! which services run by default, what networks, GPUs, ports, env files and bind mounts
//! they use, and the `x-hlsys` extension.
//!
//! No Docker daemon and no `docker compose` binary: the generator runs this at early
//! boot. The rules follow Compose v2 (compose-go) closely enough that, for the features
//! read here, the answer matches `docker compose config`; `tests/compose_parity.rs`
//! checks that against the real binary. Schema validation is left to Compose: only what
//! hlsys reads must have the right shape, and what Compose checks at `config` time for
//! it (required env files exist, short volume specs split) is checked here too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::paths::clean;

use serde_yaml_ng::{Mapping, Value};

use crate::compose::error::{scalar, ComposeError, Result};
use crate::compose::interpolate::Env;
use crate::compose::service::{GpuMechanism, PublishedPort, RestartPolicy, Service};

/// `x-hlsys:` extension at the top level of a compose file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XHlsys {
    pub layer: Option<String>,
    pub requires: Vec<String>,
    pub wants: Vec<String>,
    pub enabled: Option<bool>,
}

/// What hlsys needs to know about one Compose file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeFile {
    /// Only the services Compose runs by default (profiles), sorted by name.
    pub services: Vec<Service>,
    pub x_hlsys: XHlsys,
    /// Top-level `secrets: {x: {file: ...}}`, absolute.
    pub secret_files: Vec<PathBuf>,
}

/// Reads one compose file's text the way `docker compose -p <project> --project-directory
/// <project_dir> config` would, with `env` as the whole environment (the layered env
/// files; never the process environment, which at boot is not what the units get).
/// `extends.file` and `include` are followed from `project_dir`.
pub fn parse(text: &str, project: &str, project_dir: &Path, env: &Env) -> Result<ComposeFile> {
    let file = project_dir.join("compose.yaml");
    let loaded = crate::compose::load::load_bytes(text.as_bytes(), &file, project_dir, env).map_err(|e| e.error)?;
    read(&loaded.root, project, project_dir, env)
}

/// What hlsys needs from a loaded project ([`crate::compose::load`]): the services Compose runs
/// by default with what they use, checked as `docker compose config` checks them.
pub fn read(top: &Mapping, project: &str, project_dir: &Path, env: &Env) -> Result<ComposeFile> {
    let networks = Networks::read(top.get("networks"), project)?;
    let ctx = Ctx {
        project_dir,
        project,
        home: std::cell::OnceCell::new(),
    };

    let active = active_profiles(env);
    let mut defined = BTreeSet::new();
    let mut services = Vec::new();
    let mut deps = Vec::new();
    for (name, def) in entries(top.get("services"), "services")? {
        let key = format!("services.{name}");
        let def = def
            .as_mapping()
            .ok_or_else(|| ComposeError::at(&key, "service is not a mapping"))?;
        defined.insert(name.clone());
        if !runs_by_default(def, &active, &key)? {
            continue;
        }
        let (service, service_deps) = service(&name, def, &key, &networks, &ctx)?;
        deps.extend(service_deps.into_iter().map(|(dep, req)| (name.clone(), dep, req)));
        services.push(service);
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));

    // Compose refuses a project whose running services depend on a service that is
    // missing, or disabled by profiles unless `required: false`; say so now rather
    // than when the unit starts.
    for (name, dep, required) in deps {
        let running = services.iter().any(|s| s.name == dep);
        if !running && (required || !defined.contains(&dep)) {
            return Err(ComposeError::at(
                &format!("services.{name}.depends_on"),
                format!("service \"{name}\" depends on undefined service \"{dep}\""),
            ));
        }
    }

    let mut secret_files = Vec::new();
    for (name, def) in entries(top.get("secrets"), "secrets")? {
        let key = format!("secrets.{name}");
        if let Some(file) = field(def, "file", &key)? {
            secret_files.push(ctx.absolute(&string(file, &format!("{key}.file"))?));
        }
    }

    Ok(ComposeFile {
        services,
        x_hlsys: x_hlsys(top.get("x-hlsys"))?,
        secret_files,
    })
}

// ---------------------------------------------------------------------------------
// Typed access with the key path in every error

fn string(value: &Value, key: &str) -> Result<String> {
    scalar(value).ok_or_else(|| ComposeError::at(key, "expected a string"))
}

/// A boolean; after interpolation `${X:-true}` is a string, which Compose converts.
fn boolean(value: &Value, key: &str) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ComposeError::at(key, "expected true or false")),
    }
}

/// `[a, b]`
fn strings(value: &Value, key: &str) -> Result<Vec<String>> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(seq) => seq
            .iter()
            .enumerate()
            .map(|(i, v)| string(v, &format!("{key}.{i}")))
            .collect(),
        _ => Err(ComposeError::at(key, "expected a list of strings")),
    }
}

/// `value[name]` of a mapping; `None` when absent or null. Errors if `value` is not
/// a mapping (null counts as an empty one).
fn field<'v>(value: &'v Value, name: &str, key: &str) -> Result<Option<&'v Value>> {
    match value {
        Value::Null => Ok(None),
        Value::Mapping(m) => Ok(m.get(name).filter(|v| !v.is_null())),
        _ => Err(ComposeError::at(key, "expected a mapping")),
    }
}

/// The entries of a name → definition mapping (`services`, `networks`, …).
fn entries<'v>(value: Option<&'v Value>, key: &str) -> Result<Vec<(String, &'v Value)>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Mapping(m)) => m
            .iter()
            .map(|(k, v)| match k {
                Value::String(s) => Ok((s.clone(), v)),
                Value::Number(n) => Ok((n.to_string(), v)),
                _ => Err(ComposeError::at(key, "names must be strings")),
            })
            .collect(),
        Some(_) => Err(ComposeError::at(key, "expected a mapping")),
    }
}

/// Names of a list-or-mapping field (`networks: [a]` / `networks: {a: {...}}`).
fn names(value: &Value, key: &str) -> Result<Vec<String>> {
    match value {
        Value::Mapping(_) => Ok(entries(Some(value), key)?.into_iter().map(|(k, _)| k).collect()),
        _ => strings(value, key),
    }
}

// ---------------------------------------------------------------------------------
// Project level

/// Top-level `networks:`, resolved to Docker network names.
struct Networks {
    names: BTreeMap<String, String>,
    project: String,
}

impl Networks {
    fn read(value: Option<&Value>, project: &str) -> Result<Self> {
        let mut names = BTreeMap::new();
        for (name, def) in entries(value, "networks")? {
            let key = format!("networks.{name}");
            let explicit = field(def, "name", &key)?
                .map(|v| string(v, &format!("{key}.name")))
                .transpose()?;
            // `external: {name: x}` is the deprecated form Compose still accepts.
            let (external, legacy_name) = match field(def, "external", &key)? {
                None => (false, None),
                Some(ext @ Value::Mapping(_)) => {
                    let ext_key = format!("{key}.external");
                    let name = field(ext, "name", &ext_key)?
                        .map(|v| string(v, &format!("{ext_key}.name")))
                        .transpose()?;
                    (true, name)
                }
                Some(ext) => (boolean(ext, &format!("{key}.external"))?, None),
            };
            let docker_name = match (explicit.or(legacy_name), external) {
                (Some(n), _) => n,
                (None, true) => name.clone(),
                (None, false) => format!("{project}_{name}"),
            };
            names.insert(name, docker_name);
        }
        Ok(Networks {
            names,
            project: project.to_string(),
        })
    }

    /// The Docker name of a network a service refers to by key.
    fn docker_name(&self, name: &str, key: &str) -> Result<String> {
        match self.names.get(name) {
            Some(n) => Ok(n.clone()),
            None if name == "default" => Ok(format!("{}_default", self.project)),
            None => Err(ComposeError::at(key, format!("refers to undefined network {name}"))),
        }
    }
}

/// `COMPOSE_PROFILES` from the env files, as Compose reads it; `None` means `*` (all).
fn active_profiles(env: &Env) -> Option<BTreeSet<String>> {
    let list = env.get("COMPOSE_PROFILES").map_or("", String::as_str);
    let profiles: BTreeSet<String> = list
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    (!profiles.contains("*")).then_some(profiles)
}

fn runs_by_default(def: &Mapping, active: &Option<BTreeSet<String>>, key: &str) -> Result<bool> {
    let profiles = match def.get("profiles") {
        Some(v) => strings(v, &format!("{key}.profiles"))?,
        None => Vec::new(),
    };
    Ok(profiles.is_empty() || active.as_ref().is_none_or(|a| profiles.iter().any(|p| a.contains(p))))
}

fn x_hlsys(value: Option<&Value>) -> Result<XHlsys> {
    let mut x = XHlsys::default();
    for (name, v) in entries(value, "x-hlsys")? {
        let key = format!("x-hlsys.{name}");
        match name.as_str() {
            "layer" => x.layer = Some(string(v, &key)?),
            "requires" => x.requires = strings(v, &key)?,
            "wants" => x.wants = strings(v, &key)?,
            "enabled" => x.enabled = Some(boolean(v, &key)?),
            _ => {
                return Err(ComposeError::at(
                    &key,
                    format!("unknown key {name:?} (known: layer, requires, wants, enabled)"),
                ))
            }
        }
    }
    Ok(x)
}

// ---------------------------------------------------------------------------------
// Services

/// Paths the way compose-go resolves them: relative to the project directory, `~`
/// expanded, cleaned lexically (no symlinks followed; the files may not exist yet).
struct Ctx<'a> {
    project_dir: &'a Path,
    project: &'a str,
    home: std::cell::OnceCell<Option<PathBuf>>,
}

impl Ctx<'_> {
    fn absolute(&self, path: &str) -> PathBuf {
        if let Some(rest) = path.strip_prefix('~') {
            if let Some(home) = self.home() {
                return clean(&home.join(rest.trim_start_matches('/')));
            }
        }
        clean(&self.project_dir.join(path))
    }

    /// The home of the user running hlsys (root, like the units that run Compose).
    /// Not `$HOME`: generators run without one.
    fn home(&self) -> Option<&PathBuf> {
        self.home
            .get_or_init(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::current())
                    .ok()
                    .flatten()
                    .map(|u| u.dir)
            })
            .as_ref()
    }
}

/// `def[name]`, treating null as absent (as Compose does for service fields).
fn get<'v>(def: &'v Mapping, name: &str) -> Option<&'v Value> {
    def.get(name).filter(|v| !v.is_null())
}

/// One service; also returns its `depends_on` targets with whether each is required.
fn service(
    name: &str,
    def: &Mapping,
    key: &str,
    networks: &Networks,
    ctx: &Ctx,
) -> Result<(Service, Vec<(String, bool)>)> {
    // Fields in the order they were always checked: the first problem found is the error.
    let service = Service {
        name: name.to_string(),
        healthcheck: healthcheck(def, key)?,
        restart: get(def, "restart")
            .map(|v| string(v, &format!("{key}.restart")))
            .transpose()?,
        restart_policy: restart_policy(def, key)?,
        networks: service_networks(def, key, networks)?,
        gpu: gpu(def, key)?,
        ports: ports(def, key)?,
        env_files: env_files(def, key, ctx)?,
        bind_sources: bind_sources(def, key, ctx)?,
        depends_on: Vec::new(),
        image: image(def, key, ctx.project, name)?,
        build: get(def, "build").is_some(),
    };
    let depends_on = depends_on(def, key)?;
    let service = Service {
        depends_on: depends_on.iter().map(|(d, _)| d.clone()).collect(),
        ..service
    };
    Ok((service, depends_on))
}

/// `image:`, else the name Compose v2 tags a built image with (`<project>-<service>`).
fn image(def: &Mapping, key: &str, project: &str, name: &str) -> Result<String> {
    match get(def, "image") {
        Some(v) => string(v, &format!("{key}.image")),
        None => Ok(format!("{project}-{name}")),
    }
}

/// Whether the service has a healthcheck that is not switched off.
fn healthcheck(def: &Mapping, key: &str) -> Result<bool> {
    let get = |name: &str| get(def, name);
    let sub = |field: &str| format!("{key}.{field}");

    let healthcheck = match get("healthcheck") {
        None => false,
        Some(hc) => {
            let hk = sub("healthcheck");
            let disabled = field(hc, "disable", &hk)?
                .map(|v| boolean(v, &format!("{hk}.disable")))
                .transpose()?
                .unwrap_or(false);
            // `test: ["NONE"]` is Docker's own way to switch the image's check off.
            let none = match field(hc, "test", &hk)? {
                Some(Value::Sequence(t)) => t.first().and_then(Value::as_str) == Some("NONE"),
                _ => false,
            };
            !disabled && !none
        }
    };
    Ok(healthcheck)
}

/// The Docker names of the networks the service joins (none with a network_mode).
fn service_networks(def: &Mapping, key: &str, networks: &Networks) -> Result<Vec<String>> {
    let get = |name: &str| get(def, name);
    let sub = |field: &str| format!("{key}.{field}");

    // Any network_mode (host, none, bridge, service:…, container:…) replaces the
    // project networks; Compose itself rejects combining it with `networks:`.
    let mut service_networks = Vec::new();
    if get("network_mode").is_none() {
        let nk = sub("networks");
        let mut keys = get("networks").map(|v| names(v, &nk)).transpose()?.unwrap_or_default();
        if keys.is_empty() {
            keys.push("default".to_string());
        }
        for k in keys {
            service_networks.push(networks.docker_name(&k, &nk)?);
        }
        service_networks.sort();
        service_networks.dedup();
    }
    Ok(service_networks)
}

/// The ports the service publishes.
fn ports(def: &Mapping, key: &str) -> Result<Vec<PublishedPort>> {
    let get = |name: &str| get(def, name);
    let sub = |field: &str| format!("{key}.{field}");

    let mut ports = Vec::new();
    if let Some(v) = get("ports") {
        let pk = sub("ports");
        let Value::Sequence(seq) = v else {
            return Err(ComposeError::at(&pk, "expected a list"));
        };
        for (i, p) in seq.iter().enumerate() {
            for published in port(p, &format!("{pk}.{i}"))? {
                // Merged files and `extends` append; Compose keeps one of each.
                if !ports.contains(&published) {
                    ports.push(published);
                }
            }
        }
    }
    Ok(ports)
}

/// The service's `env_file` entries: absolute path, and whether it must exist.
fn env_files(def: &Mapping, key: &str, ctx: &Ctx) -> Result<Vec<(PathBuf, bool)>> {
    let get = |name: &str| get(def, name);
    let sub = |field: &str| format!("{key}.{field}");

    let mut env_files = Vec::new();
    if let Some(v) = get("env_file") {
        let ek = sub("env_file");
        let items = match v {
            Value::Sequence(seq) => seq.iter().collect(),
            _ => vec![v],
        };
        for (i, item) in items.into_iter().enumerate() {
            let ik = format!("{ek}.{i}");
            let (path, required) = match item {
                Value::Mapping(_) => {
                    let path = field(item, "path", &ik)?.ok_or_else(|| ComposeError::at(&ik, "missing path"))?;
                    let required = field(item, "required", &ik)?
                        .map(|r| boolean(r, &format!("{ik}.required")))
                        .transpose()?
                        .unwrap_or(true);
                    (string(path, &format!("{ik}.path"))?, required)
                }
                _ => (string(item, &ik)?, true),
            };
            let path = ctx.absolute(&path);
            // Later entries for the same file win, in the first one's place (compose-go's unicity).
            match env_files.iter_mut().find(|(p, _)| *p == path) {
                Some(slot) => slot.1 = required,
                None => env_files.push((path, required)),
            }
        }
        for (i, (path, required)) in env_files.iter().enumerate() {
            if *required && !path.is_file() {
                return Err(ComposeError::at(
                    &format!("{ek}.{i}"),
                    "required env file does not exist",
                ));
            }
        }
    }
    Ok(env_files)
}

/// `depends_on`, explicit and implicit, with whether each is required.
fn depends_on(def: &Mapping, key: &str) -> Result<Vec<(String, bool)>> {
    let get = |name: &str| get(def, name);
    let sub = |field: &str| format!("{key}.{field}");

    let mut depends_on = Vec::new();
    if let Some(v) = get("depends_on") {
        let dk = sub("depends_on");
        for (dep, def) in match v {
            Value::Mapping(m) => m.iter().map(|(k, d)| (k, Some(d))).collect::<Vec<_>>(),
            Value::Sequence(seq) => seq.iter().map(|k| (k, None)).collect(),
            _ => return Err(ComposeError::at(&dk, "expected a list or a mapping")),
        } {
            let dep = string(dep, &dk)?;
            let required = match def {
                Some(d) => field(d, "required", &format!("{dk}.{dep}"))?
                    .map(|r| boolean(r, &format!("{dk}.{dep}.required")))
                    .transpose()?
                    .unwrap_or(true),
                None => true,
            };
            depends_on.push((dep, required));
        }
    }
    // Compose adds a (required) dependency for every other service this one shares a
    // namespace or volumes with, or links to, unless depends_on already names it.
    let mut implicit = Vec::new();
    for field in ["network_mode", "ipc", "pid"] {
        if let Some(v) = get(field) {
            if let Some(dep) = string(v, &sub(field))?.strip_prefix("service:") {
                implicit.push(dep.to_string());
            }
        }
    }
    for field in ["volumes_from", "links"] {
        if let Some(v) = get(field) {
            for entry in strings(v, &sub(field))? {
                let dep = entry.split(':').next().unwrap_or_default();
                if !(field == "volumes_from" && entry.starts_with("container:")) {
                    implicit.push(dep.to_string());
                }
            }
        }
    }
    for dep in implicit {
        if !depends_on.iter().any(|(d, _)| *d == dep) {
            depends_on.push((dep, true));
        }
    }
    Ok(depends_on)
}

/// Host paths of a service's bind mounts. Volumes with the same target replace each
/// other in the first one's place, as Compose keeps one mount per target once files
/// are merged; a short spec Compose cannot split (`${UNSET}:/data`) is refused.
fn bind_sources(def: &Mapping, key: &str, ctx: &Ctx) -> Result<Vec<PathBuf>> {
    let Some(value) = get(def, "volumes") else {
        return Ok(Vec::new());
    };
    let key = &format!("{key}.volumes");
    let Value::Sequence(seq) = value else {
        return Err(ComposeError::at(key, "expected a list"));
    };
    // (target, bind source); key paths are only built for an error.
    let mut mounts: Vec<(&str, Option<&str>)> = Vec::with_capacity(seq.len());
    for (i, vol) in seq.iter().enumerate() {
        let (target, source) = match vol {
            Value::Mapping(m) => long_volume(m).map_err(|name| {
                let ik = format!("{key}.{i}");
                ComposeError::at(&format!("{ik}.{name}"), "expected a string")
            })?,
            Value::String(spec) => {
                let short = crate::compose::volume::parse_short(spec)
                    .map_err(|e| ComposeError::at(&format!("{key}.{i}"), e.to_string()))?;
                (short.target, short.is_bind().then_some(short.source))
            }
            _ => {
                return Err(ComposeError::at(
                    &format!("{key}.{i}"),
                    "expected a string or a mapping",
                ))
            }
        };
        match mounts.iter_mut().find(|(t, _)| *t == target) {
            Some(slot) => slot.1 = source,
            None => mounts.push((target, source)),
        }
    }
    Ok(mounts
        .into_iter()
        .filter_map(|(_, s)| s)
        .map(|s| ctx.absolute(s))
        .collect())
}

/// `restart:`, replaced by `deploy.restart_policy` when that is set (Compose gives the
/// container the latter; without a `condition` that is no restart at all, measured with
/// Compose 2.40.3); a word Docker does not know is refused here rather than at the
/// container's creation.
fn restart_policy(def: &Mapping, key: &str) -> Result<RestartPolicy> {
    let mut policy = RestartPolicy::No;
    if let Some(v) = get(def, "restart") {
        let k = format!("{key}.restart");
        let text = string(v, &k)?;
        policy = RestartPolicy::parse(&text, None).ok_or_else(|| ComposeError::at(&k, "invalid restart policy"))?;
    }
    let dk = format!("{key}.deploy");
    let Some(deploy) = get(def, "deploy") else {
        return Ok(policy);
    };
    let Some(rp) = field(deploy, "restart_policy", &dk)? else {
        return Ok(policy);
    };
    let rk = format!("{dk}.restart_policy");
    let condition = field(rp, "condition", &rk)?
        .map(|c| string(c, &format!("{rk}.condition")))
        .transpose()?
        .unwrap_or_default();
    let attempts = field(rp, "max_attempts", &rk)?
        .map(|n| {
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ComposeError::at(&format!("{rk}.max_attempts"), "expected a number"))
        })
        .transpose()?;
    RestartPolicy::parse(&condition, attempts)
        .ok_or_else(|| ComposeError::at(&format!("{rk}.condition"), "invalid restart policy"))
}

/// `{type, source, target}` of a long volume: its target and, for a bind mount, its
/// source; `Err` names the field that is not a string.
fn long_volume(m: &Mapping) -> std::result::Result<(&str, Option<&str>), &'static str> {
    let text = |name: &'static str| match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(name),
    };
    let source = match text("type")? {
        Some("bind") => text("source")?,
        _ => None,
    };
    Ok((text("target")?.unwrap_or_default(), source))
}

/// Every way a service can ask for an NVIDIA GPU, sorted, each once.
fn gpu(def: &Mapping, key: &str) -> Result<Vec<GpuMechanism>> {
    let get = |name: &str| get(def, name);
    let sub = |name: &str| format!("{key}.{name}");
    let mut gpu = BTreeSet::new();
    if let Some(rt) = get("runtime") {
        if string(rt, &sub("runtime"))? == "nvidia" {
            gpu.insert(GpuMechanism::Runtime);
        }
    }

    if let Some(deploy) = get("deploy") {
        let mut value = deploy;
        let mut key = sub("deploy");
        for part in ["resources", "reservations", "devices"] {
            match field(value, part, &key)? {
                Some(v) => value = v,
                None => {
                    value = &Value::Null;
                    break;
                }
            }
            key = format!("{key}.{part}");
        }
        if let Value::Sequence(devices) = value {
            for (i, dev) in devices.iter().enumerate() {
                let dk = format!("{key}.{i}");
                let driver = field(dev, "driver", &dk)?.and_then(Value::as_str);
                let caps = field(dev, "capabilities", &dk)?
                    .map(|c| strings(c, &format!("{dk}.capabilities")))
                    .transpose()?
                    .unwrap_or_default();
                if driver == Some("nvidia") || caps.iter().any(|c| c == "gpu") {
                    gpu.insert(GpuMechanism::DeviceRequest);
                }
            }
        }
    }

    match get("gpus") {
        Some(Value::Sequence(s)) if s.is_empty() => {}
        Some(Value::Sequence(_) | Value::String(_)) => {
            gpu.insert(GpuMechanism::Gpus);
        }
        Some(_) => return Err(ComposeError::at(&sub("gpus"), "expected `all` or a list")),
        None => {}
    }

    if let Some(devices) = get("devices") {
        let dk = sub("devices");
        let Value::Sequence(devices) = devices else {
            return Err(ComposeError::at(&dk, "expected a list"));
        };
        for (i, dev) in devices.iter().enumerate() {
            let ik = format!("{dk}.{i}");
            let source = match dev {
                Value::Mapping(_) => field(dev, "source", &ik)?
                    .map(|s| string(s, &format!("{ik}.source")))
                    .transpose()?,
                _ => Some(string(dev, &ik)?),
            };
            if source.is_some_and(|s| s.starts_with("nvidia.com/gpu=")) {
                gpu.insert(GpuMechanism::Cdi);
            }
        }
    }
    Ok(gpu.into_iter().collect())
}

/// The host ports one `ports:` entry publishes. Ports Docker picks itself (no host
/// port, or a host range for a single container port) are not known here: none.
fn port(value: &Value, key: &str) -> Result<Vec<PublishedPort>> {
    let bad = |why: &str| ComposeError::at(key, why.to_string());
    let (host_ip, host, container, protocol) = match value {
        Value::Number(_) => return Ok(Vec::new()),
        Value::String(spec) => {
            // Docker's nat.ParsePortSpec: `[[ip:]host:]container[/proto]`, where the
            // IP may itself hold colons (IPv6, optionally in brackets).
            let (rest, container) = spec.rsplit_once(':').unwrap_or(("", spec));
            let (ip, host) = match rest.rsplit_once(':') {
                Some((ip, host)) => (ip, host),
                None => ("", rest),
            };
            let (container, proto) = container.split_once('/').unwrap_or((container, "tcp"));
            let ip = ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')).unwrap_or(ip);
            (
                ip.to_string(),
                host.to_string(),
                container.to_string(),
                proto.to_string(),
            )
        }
        Value::Mapping(_) => {
            let get = |name: &str| -> Result<Option<String>> {
                field(value, name, key)?
                    .map(|v| string(v, &format!("{key}.{name}")))
                    .transpose()
            };
            (
                get("host_ip")?.unwrap_or_default(),
                get("published")?.unwrap_or_default(),
                get("target")?.ok_or_else(|| bad("missing target"))?,
                get("protocol")?.unwrap_or_else(|| "tcp".to_string()),
            )
        }
        _ => return Err(bad("expected a port string or mapping")),
    };
    let (c_start, c_end) = port_range(&container).ok_or_else(|| bad("invalid container port"))?;
    if host.is_empty() {
        return Ok(Vec::new());
    }
    let (h_start, h_end) = port_range(&host).ok_or_else(|| bad("invalid host port"))?;
    if h_end - h_start != c_end - c_start {
        return if c_start == c_end {
            Ok(Vec::new())
        } else {
            Err(bad("host and container port ranges differ in size"))
        };
    }
    let protocol = protocol.to_ascii_lowercase();
    Ok((h_start..=h_end)
        .map(|host_port| PublishedPort {
            host_ip: host_ip.clone(),
            host_port,
            protocol: protocol.clone(),
        })
        .collect())
}

/// `80` or `8000-8002`.
fn port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn parse_env(text: &str, vars: &[(&str, &str)]) -> Result<ComposeFile> {
        parse(text, "proj", Path::new("/srv/proj"), &env(vars))
    }

    fn ok(text: &str) -> ComposeFile {
        parse_env(text, &[]).unwrap()
    }

    fn one(text: &str) -> Service {
        let mut f = ok(text);
        assert_eq!(f.services.len(), 1, "{f:?}");
        f.services.remove(0)
    }

    fn names(f: &ComposeFile) -> Vec<&str> {
        f.services.iter().map(|s| s.name.as_str()).collect()
    }

    fn err(text: &str) -> ComposeError {
        parse_env(text, &[]).unwrap_err()
    }

    #[test]
    fn image_as_written_or_the_built_name() {
        let s = one("services:\n  web: {image: \"reg:5000/web:${TAG:-2}\"}\n");
        assert_eq!((s.image.as_str(), s.build), ("reg:5000/web:2", false));
        let s = one("services:\n  web: {build: .}\n");
        assert_eq!((s.image.as_str(), s.build), ("proj-web", true));
        let s = one("services:\n  web: {build: ., image: mine:1}\n");
        assert_eq!((s.image.as_str(), s.build), ("mine:1", true));
        let e = err("services:\n  web: {image: [x]}\n");
        assert_eq!(e.key.as_deref(), Some("services.web.image"));
    }

    #[test]
    fn services_sorted_with_defaults() {
        let f = ok("services:\n  web: {image: x}\n  db: {image: y}\n");
        assert_eq!(names(&f), ["db", "web"]);
        let db = &f.services[0];
        assert_eq!(db.networks, ["proj_default"]);
        assert!(!db.healthcheck);
        assert_eq!(db.restart, None);
        assert!(db.gpu.is_empty() && db.ports.is_empty() && db.depends_on.is_empty());
        assert_eq!(f.x_hlsys, XHlsys::default());
    }

    #[test]
    fn syntax_error_has_line() {
        let e = err("services:\n  web:\n    image: x\n   bad: y\n");
        assert_eq!(e.line, Some(4), "{e:?}");
        assert!(!e.message.contains("at line 4"), "{e}");
        assert!(e.to_string().starts_with("line 4: "), "{e}");
        let e = err("services:\n  web: {image: *nope}\n");
        assert_eq!(e.line, Some(2), "{e:?}");
    }

    #[test]
    fn shape_errors_name_the_key() {
        assert_eq!(err("").message, "empty compose file");
        assert_eq!(err("services: [a]\n").key.as_deref(), Some("services"));
        let e = err("services:\n  web: 3\n");
        assert_eq!(e.key.as_deref(), Some("services.web"));
        assert_eq!(e.to_string(), "key services.web: service is not a mapping");
        let e = err("services:\n  web: {image: x, ports: 80}\n");
        assert_eq!(e.key.as_deref(), Some("services.web.ports"));
        let e = err("services:\n  web: {image: x, networks: [nope]}\n");
        assert_eq!(e.key.as_deref(), Some("services.web.networks"));
        assert!(e.message.contains("nope"));
    }

    #[test]
    fn display_forms() {
        let e = |line, key: Option<&str>| ComposeError {
            line,
            key: key.map(str::to_string),
            message: "bad".into(),
        };
        assert_eq!(e(Some(3), Some("a.b")).to_string(), "line 3: key a.b: bad");
        assert_eq!(e(None, Some("a.b")).to_string(), "key a.b: bad");
        assert_eq!(e(None, None).to_string(), "bad");
    }

    #[test]
    fn anchors_and_merge_keys() {
        let f = ok(r#"
x-base: &base
  image: busybox
  restart: always
  healthcheck: {test: [CMD, "true"]}
x-b2: &b2
  restart: unless-stopped
  <<: *base
x-b3: &b3
  restart: "no"
  runtime: nvidia
services:
  single:
    <<: *base
    restart: on-failure
  list:
    <<: [*b2, *b3]
  chain:
    <<: *b2
  alias: *base
"#);
        let by = |n: &str| f.services.iter().find(|s| s.name == n).unwrap();
        // explicit key beats the merged one
        assert_eq!(by("single").restart.as_deref(), Some("on-failure"));
        assert!(by("single").healthcheck);
        // earlier map in the list beats later ones, later ones still add keys
        assert_eq!(by("list").restart.as_deref(), Some("unless-stopped"));
        assert_eq!(by("list").gpu, [GpuMechanism::Runtime]);
        // a merged map's own merge key is resolved
        assert!(by("chain").healthcheck);
        assert_eq!(by("alias").restart.as_deref(), Some("always"));
    }

    #[test]
    fn restart_policy_is_restart_unless_deploy_says_otherwise() {
        use crate::compose::service::RestartPolicy::*;
        let f = ok(r#"
services:
  plain: {image: x}
  us: {image: x, restart: unless-stopped}
  both: {image: x, restart: always, deploy: {restart_policy: {condition: none}}}
  deploy: {image: x, deploy: {restart_policy: {condition: on-failure, max_attempts: 3}}}
  nocond: {image: x, restart: always, deploy: {restart_policy: {delay: 5s}}}
"#);
        let by = |n: &str| f.services.iter().find(|s| s.name == n).unwrap().restart_policy;
        assert_eq!(by("plain"), No);
        assert_eq!(by("us"), UnlessStopped);
        assert_eq!(by("both"), No);
        assert_eq!(by("deploy"), OnFailure { max_retries: 3 });
        assert_eq!(by("nocond"), No);
        let e = err("services:\n  web: {image: x, restart: sometimes}\n");
        assert_eq!(e.to_string(), "key services.web.restart: invalid restart policy");
    }

    #[test]
    fn bad_merge_value() {
        let e = err("services:\n  web:\n    <<: 3\n");
        assert_eq!(e.key.as_deref(), Some("services.web.<<"));
    }

    #[test]
    fn reset_and_override_tags() {
        let s = one("services:\n  web:\n    image: x\n    restart: !reset always\n    networks: !override [a]\nnetworks: {a: {}}\n");
        assert_eq!(s.restart, None);
        assert_eq!(s.networks, ["proj_a"]);
    }

    #[test]
    fn interpolation_uses_only_env() {
        let text = "services:\n  web:\n    image: x\n    restart: ${R:-always}\n    runtime: $RT\n";
        let f = parse_env(text, &[("RT", "nvidia")]).unwrap();
        assert_eq!(f.services[0].restart.as_deref(), Some("always"));
        assert_eq!(f.services[0].gpu, [GpuMechanism::Runtime]);
        let e = parse_env("services:\n  web:\n    image: ${IMG:?need IMG}\n", &[]).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("services.web.image"));
    }

    #[test]
    fn profiles() {
        let text = "services:\n  a: {image: x}\n  b: {image: x, profiles: [dev]}\n  c: {image: x, profiles: [gpu, ml]}\n  d: {image: x, profiles: []}\n";
        let run = |p: Option<&str>| {
            let vars: Vec<_> = p.map(|p| ("COMPOSE_PROFILES", p)).into_iter().collect();
            names(&parse_env(text, &vars).unwrap())
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(None), ["a", "d"]);
        assert_eq!(run(Some("")), ["a", "d"]);
        assert_eq!(run(Some("dev")), ["a", "b", "d"]);
        assert_eq!(run(Some(" ml ,x")), ["a", "c", "d"]);
        assert_eq!(run(Some("*")), ["a", "b", "c", "d"]);
    }

    #[test]
    fn depends_on_forms_and_disabled_targets() {
        let s = ok("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x}\n").services;
        assert_eq!(s[0].depends_on, ["b"]);
        let text = "services:\n  a:\n    image: x\n    depends_on:\n      b: {condition: service_healthy}\n      c: {condition: service_started, required: false}\n  b: {image: x}\n  c: {image: x, profiles: [p]}\n";
        assert_eq!(ok(text).services[0].depends_on, ["b", "c"]);
        let text = "services:\n  a:\n    image: x\n    network_mode: service:b\n    ipc: service:c\n    pid: host\n    volumes_from: [\"d:ro\", \"container:zz\"]\n    links: [\"e:alias\"]\n    depends_on: {b: {condition: service_healthy}}\n  b: {image: x}\n  c: {image: x}\n  d: {image: x}\n  e: {image: x}\n";
        assert_eq!(ok(text).services[0].depends_on, ["b", "c", "d", "e"]);
        // required target disabled by profile, or not defined at all: Compose refuses
        let e = err("services:\n  a: {image: x, depends_on: [c]}\n  c: {image: x, profiles: [p]}\n");
        assert_eq!(e.key.as_deref(), Some("services.a.depends_on"));
        let e = err("services:\n  a: {image: x, depends_on: {z: {required: false}}}\n");
        assert!(e.message.contains("\"z\""), "{e}");
    }

    #[test]
    fn healthcheck() {
        let hc = |h: &str| one(&format!("services:\n  a:\n    image: x\n    healthcheck: {h}\n")).healthcheck;
        assert!(hc("{test: [CMD, \"true\"]}"));
        assert!(hc("{interval: 5s}"));
        assert!(!hc("{disable: true}"));
        assert!(!hc("{disable: \"true\"}"));
        assert!(hc("{disable: false, test: \"curl x\"}"));
        assert!(!hc("{test: [NONE]}"));
        assert!(!hc("null"));
    }

    #[test]
    fn networks() {
        let f = ok(r#"
services:
  list: {image: x, networks: [front, ext]}
  map:
    image: x
    networks:
      named: {aliases: [n]}
      default:
  empty: {image: x, networks: []}
  host: {image: x, network_mode: host}
  shared: {image: x, network_mode: "service:list"}
networks:
  default: {name: mydefault}
  front: {}
  ext: {external: true}
  named: {name: "${N:-n1}"}
  legacy: {external: {name: old}}
  extnamed: {external: true, name: real}
"#);
        let by = |n: &str| f.services.iter().find(|s| s.name == n).unwrap().networks.clone();
        assert_eq!(by("list"), ["ext", "proj_front"]);
        assert_eq!(by("map"), ["mydefault", "n1"]);
        assert_eq!(by("empty"), ["mydefault"]);
        assert!(by("host").is_empty());
        assert!(by("shared").is_empty());
        let n = Networks::read(
            Some(
                &serde_yaml_ng::from_str(
                    "{legacy: {external: {name: old}}, extnamed: {external: \"true\", name: real}}",
                )
                .unwrap(),
            ),
            "p",
        )
        .unwrap();
        assert_eq!(n.docker_name("legacy", "k").unwrap(), "old");
        assert_eq!(n.docker_name("extnamed", "k").unwrap(), "real");
        assert_eq!(n.docker_name("default", "k").unwrap(), "p_default");
    }

    #[test]
    fn gpu_forms() {
        let gpu = |body: &str| one(&format!("services:\n  a:\n    image: x\n{body}")).gpu;
        use GpuMechanism::*;
        assert_eq!(gpu("    runtime: nvidia\n"), [Runtime]);
        assert!(gpu("    runtime: runc\n").is_empty());
        let dr = "    deploy: {resources: {reservations: {devices: [";
        assert_eq!(
            gpu(&format!(
                "{dr}{{driver: nvidia, count: 1, capabilities: [compute]}}]}}}}}}\n"
            )),
            [DeviceRequest]
        );
        assert_eq!(gpu(&format!("{dr}{{capabilities: [gpu]}}]}}}}}}\n")), [DeviceRequest]);
        assert!(gpu(&format!("{dr}{{driver: other, capabilities: [tpu]}}]}}}}}}\n")).is_empty());
        assert!(gpu("    deploy: {resources: {limits: {cpus: '1'}}}\n").is_empty());
        assert_eq!(gpu("    gpus: all\n"), [Gpus]);
        assert_eq!(gpu("    gpus: [{count: 1}]\n"), [Gpus]);
        assert!(gpu("    gpus: []\n").is_empty());
        assert_eq!(gpu("    devices: [\"nvidia.com/gpu=all\"]\n"), [Cdi]);
        assert_eq!(
            gpu("    devices: [{source: nvidia.com/gpu=0, target: nvidia.com/gpu=0}]\n"),
            [Cdi]
        );
        assert!(gpu("    devices: [\"/dev/dri:/dev/dri\"]\n").is_empty());
        assert_eq!(
            gpu("    runtime: nvidia\n    gpus: all\n    devices: [nvidia.com/gpu=1]\n"),
            [Runtime, Gpus, Cdi]
        );
    }

    #[test]
    fn ports() {
        let p = |ip: &str, port, proto: &str| PublishedPort {
            host_ip: ip.into(),
            host_port: port,
            protocol: proto.into(),
        };
        let s = one(r#"
services:
  a:
    image: x
    ports:
      - "8080:80"
      - 80
      - "81"
      - "127.0.0.1:9000-9001:9000-9001/udp"
      - "127.0.0.1::82"
      - "[::1]:8443:443"
      - "7000-7010:70"
      - target: 90
        published: "9090"
        host_ip: "::1"
      - {target: 91, published: 9091, protocol: UDP}
      - {target: 92}
"#);
        assert_eq!(
            s.ports,
            [
                p("", 8080, "tcp"),
                p("127.0.0.1", 9000, "udp"),
                p("127.0.0.1", 9001, "udp"),
                p("::1", 8443, "tcp"),
                p("::1", 9090, "tcp"),
                p("", 9091, "udp"),
            ]
        );
        let e = err("services:\n  a: {image: x, ports: [\"x:80\"]}\n");
        assert_eq!(e.key.as_deref(), Some("services.a.ports.0"));
        assert!(err("services:\n  a: {image: x, ports: [\"80-81:90-92\"]}\n")
            .message
            .contains("ranges"));
    }

    #[test]
    fn env_files_and_binds_and_secrets() {
        let f = ok(r#"
services:
  a:
    image: x
    env_file:
      - {path: a.env, required: false}
      - path: ./sub/../b.env
        required: false
      - {path: /etc/c.env, required: false}
      - {path: a.env, required: false}
    volumes:
      - ./data:/data
      - ../up:/up:ro
      - .hidden:/h
      - /abs:/abs
      - named:/n
      - /anon
      - {type: bind, source: rel, target: /rel}
      - {type: volume, source: named, target: /v}
  b: {image: x, env_file: [{path: one.env, required: false}]}
secrets:
  s1: {file: ./s1.txt}
  s2: {environment: X}
"#);
        let a = &f.services[0];
        assert_eq!(
            a.env_files,
            [
                (PathBuf::from("/srv/proj/a.env"), false),
                (PathBuf::from("/srv/proj/b.env"), false),
                (PathBuf::from("/etc/c.env"), false),
            ]
        );
        let binds: Vec<_> = a.bind_sources.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(
            binds,
            [
                "/srv/proj/data",
                "/srv/up",
                "/srv/proj/.hidden",
                "/abs",
                "/srv/proj/rel"
            ]
        );
        assert_eq!(f.services[1].env_files, [(PathBuf::from("/srv/proj/one.env"), false)]);
        assert_eq!(f.secret_files, [PathBuf::from("/srv/proj/s1.txt")]);
    }

    #[test]
    fn tilde_is_the_users_home() {
        let s = one("services:\n  a: {image: x, volumes: [\"~/h:/h\"]}\n");
        let home = nix::unistd::User::from_uid(nix::unistd::Uid::current())
            .unwrap()
            .unwrap()
            .dir;
        assert_eq!(s.bind_sources, [home.join("h")]);
    }

    #[test]
    fn required_env_file_must_exist() {
        let e = err("services:\n  a: {image: x, env_file: [{path: x.env, required: false}, nope.env]}\n");
        assert_eq!(e.key.as_deref(), Some("services.a.env_file.1"));
        // only services that run are checked, as Compose does
        ok("services:\n  a: {image: x}\n  b: {image: x, profiles: [p], env_file: nope.env}\n");
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.env"), "A=1\n").unwrap();
        let f = parse(
            "services:\n  a: {image: x, env_file: a.env}\n",
            "p",
            tmp.path(),
            &env(&[]),
        )
        .unwrap();
        assert_eq!(f.services[0].env_files, [(tmp.path().join("a.env"), true)]);
    }

    #[test]
    fn short_volumes_are_checked_after_interpolation() {
        let e = err("services:\n  a: {image: x, volumes: [\"${UNSET}:/data\"]}\n");
        assert_eq!(e.key.as_deref(), Some("services.a.volumes.0"));
        assert!(e.message.contains("empty section"), "{e}");
        let e = err("services:\n  a: {image: x, volumes: [\"/a:/b:ro:x\"]}\n");
        assert!(e.message.contains("too many colons"), "{e}");
        // a later mount of the same target replaces the earlier one in its place
        let s = one("services:\n  a: {image: x, volumes: [./a:/a, ./b:/b, named:/a]}\n");
        assert_eq!(s.bind_sources, [PathBuf::from("/srv/proj/b")]);
    }

    #[test]
    fn unknown_extends_target() {
        let e = err("services:\n  a: {image: x, extends: nope}\n");
        assert_eq!(e.key.as_deref(), Some("services.a.extends"));
        let e = err("services:\n  a: {image: x, extends: b}\n  b: {image: x, extends: a}\n");
        assert!(e.message.contains("circular"), "{e}");
        let e = err("services:\n  a: {image: x, extends: {file: /nonexistent/x.yml, service: a}}\n");
        assert!(e.message.contains("does not exist"), "{e}");
    }

    #[test]
    fn extends_same_file_chained_with_reset() {
        let f = ok(r#"
services:
  base: {image: x, runtime: nvidia, networks: [a], ports: ["80:80"], restart: "no"}
  mid: {extends: base, restart: always}
  top:
    extends: {service: "${V:-mid}"}
    ports: !reset []
    networks: [b]
networks: {a: {}, b: {}}
"#);
        assert_eq!(names(&f), ["base", "mid", "top"]);
        let (mid, top) = (&f.services[1], &f.services[2]);
        assert_eq!(mid.restart.as_deref(), Some("always"));
        assert_eq!(mid.gpu, [GpuMechanism::Runtime]);
        assert_eq!(mid.networks, ["proj_a"]);
        assert_eq!(mid.ports.len(), 1);
        assert_eq!(top.restart.as_deref(), Some("always"));
        assert_eq!(top.gpu, [GpuMechanism::Runtime]);
        assert_eq!(top.networks, ["proj_a", "proj_b"]);
        assert!(top.ports.is_empty());
    }

    #[test]
    fn x_hlsys_extension() {
        let f = parse_env(
            "x-hlsys:\n  layer: apps\n  requires: [db]\n  wants: [\"${W}\"]\n  enabled: ${E:-false}\nservices: {}\n",
            &[("W", "cache")],
        )
        .unwrap();
        assert_eq!(
            f.x_hlsys,
            XHlsys {
                layer: Some("apps".into()),
                requires: vec!["db".into()],
                wants: vec!["cache".into()],
                enabled: Some(false),
            }
        );
        let e = err("x-hlsys:\n  layers: apps\n");
        assert_eq!(e.key.as_deref(), Some("x-hlsys.layers"));
        assert!(e.message.contains("unknown key"));
        assert_eq!(
            err("x-hlsys:\n  requires: db\n").key.as_deref(),
            Some("x-hlsys.requires")
        );
    }
}
