//! `hlsys check`: the preflight. Each check reports ok, warn or fail with a remedy.
//!
//! The rule for the two bad levels: `fail` means stacks will not come up right (Docker
//! down, a missing required file, a port clash, a GPU stack with no working path);
//! `warn` means they will, but something is off or risky (drift, world-readable secrets,
//! Docker restarting containers behind systemd's back, bind sources Docker would create
//! empty).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use serde::Serialize;

use crate::docker::{self, compose_containers, container_name, label_of, PROJECT_LABEL};
use crate::gpu;
use crate::network;
use crate::supervise::takeover;
use hlsys_core::capped::thousands;
use hlsys_core::compose::PublishedPort;
use hlsys_core::config::ConfigError;
use hlsys_core::model::{Model, Stack};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub status: Status,
    pub message: String,
    pub remedy: Option<String>,
}

impl CheckResult {
    pub fn ok(name: &str, message: impl Into<String>) -> Self {
        CheckResult {
            name: name.into(),
            status: Status::Ok,
            message: message.into(),
            remedy: None,
        }
    }

    pub fn warn(name: &str, message: impl Into<String>, remedy: impl Into<String>) -> Self {
        CheckResult {
            name: name.into(),
            status: Status::Warn,
            message: message.into(),
            remedy: Some(remedy.into()),
        }
    }

    pub fn fail(name: &str, message: impl Into<String>, remedy: impl Into<String>) -> Self {
        CheckResult {
            name: name.into(),
            status: Status::Fail,
            message: message.into(),
            remedy: Some(remedy.into()),
        }
    }

    /// ok when `problems` is empty, else `status` with the problems joined: the first
    /// [`MAX_PROBLEMS`], then a count of the rest, so that no input makes a check's
    /// message grow without bound.
    fn from_problems(name: &str, ok: String, status: Status, mut problems: Vec<String>, remedy: &str) -> Self {
        if problems.is_empty() {
            return CheckResult::ok(name, ok);
        }
        if problems.len() > MAX_PROBLEMS {
            let rest = problems.len() - MAX_PROBLEMS;
            problems.truncate(MAX_PROBLEMS);
            problems.push(format!("… and {} more", thousands(rest)));
        }
        CheckResult {
            name: name.into(),
            status,
            message: problems.join("; "),
            remedy: Some(remedy.into()),
        }
    }
}

/// Problems one check lists in its message; the rest are counted.
pub const MAX_PROBLEMS: usize = 50;

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Only the GPU checks (`--gpu`).
    pub gpu_only: bool,
    /// Stack ids to check; empty: every enabled stack.
    pub stacks: Vec<String>,
    /// Root for host files (/proc, /dev, /etc/cdi); `/` normally.
    pub root: PathBuf,
    /// Docker host; `None`: `DOCKER_HOST` or the default socket.
    pub docker_host: Option<String>,
    /// "generated units current", computed by the caller from the generator's report.
    pub units_current: Option<CheckResult>,
}

/// Exit status: 1 when any check failed, or (with `strict`) warned.
pub fn exit_code(results: &[CheckResult], strict: bool) -> u8 {
    let worst = results.iter().map(|r| r.status).max().unwrap_or(Status::Ok);
    u8::from(worst == Status::Fail || (strict && worst == Status::Warn))
}

/// Runs every check. `model` is `Err` when the config could not be loaded.
pub async fn run(model: Result<&Model, &ConfigError>, opts: &CheckOptions) -> Vec<CheckResult> {
    let host = opts.docker_host.clone().unwrap_or_else(docker::host);
    if opts.gpu_only {
        let d = docker::connect_to(&host).await;
        return match model {
            Ok(m) => gpu_checks(m, &select(m, &opts.stacks).0, &opts.root, d.as_ref()).await,
            Err(e) => vec![config_failed(e)],
        };
    }
    let (d, compose) = tokio::join!(docker::connect_to(&host), compose_version());
    let mut out = vec![docker_check(&host, d.as_ref()).await, compose];
    match model {
        Err(e) => {
            out.push(config_failed(e));
            if e.message.starts_with(hlsys_core::trust::UNTRUSTED) {
                out.push(CheckResult::fail(TRUST, e.to_string(), TRUST_REMEDY));
            }
        }
        Ok(m) => {
            let src = m
                .config
                .source
                .as_ref()
                .map_or("defaults (no config file)".into(), |p| p.display().to_string());
            out.push(CheckResult::ok("config", src));
            out.push(trust(m));
            let (stacks, unknown) = select(m, &opts.stacks);
            out.push(env_file_permissions(m, &stacks));
            out.push(stack_tree(m, &opts.stacks, unknown));
            let dr = d.as_ref();
            let (nets, gpus, restart, ports) = tokio::join!(
                networks(m, dr, &opts.root),
                gpu_checks(m, &stacks, &opts.root, dr),
                restart_policies(&stacks, dr),
                ports(m, &stacks, dr),
            );
            out.push(nets);
            out.extend(gpus);
            out.push(files(m, &stacks));
            out.push(secret_permissions(m, &stacks));
            out.push(ports);
            out.push(restart);
            out.push(bind_mounts(&stacks));
        }
    }
    out.extend(opts.units_current.clone());
    out
}

fn config_failed(e: &ConfigError) -> CheckResult {
    CheckResult::fail(
        "config",
        e.to_string(),
        "fix the config file; `hlsys stacks` shows what it resolves to",
    )
}

const TRUST: &str = "trust";
const TRUST_REMEDY: &str = "run the fix commands shown (or name the owner and group you trust with \
trusted_owner/trusted_group in hlsys.toml); see Security in hlsys.toml(5)";

/// The trust model ([`crate::trust`]): the same findings that made the generator skip
/// stacks, or the escape hatch when it is on.
fn trust(m: &Model) -> CheckResult {
    if !m.config.trust.strict {
        let file = m.config.source.clone().unwrap_or_default();
        let remedy = format!(
            "remove strict_permissions = false from {} once `hlsys check` shows no finding",
            file.display()
        );
        return CheckResult::warn(TRUST, hlsys_core::trust::hatch_line(&file), remedy);
    }
    let problems = m
        .errors
        .iter()
        .filter(|e| e.message.starts_with(hlsys_core::trust::UNTRUSTED))
        .map(|e| format!("{}: {}", e.stack, e.message))
        .collect();
    let ok =
        "the config, the stack tree and the stacks' files can be written by root (or the trusted owner and group) only";
    CheckResult::from_problems(TRUST, ok.into(), Status::Fail, problems, TRUST_REMEDY)
}

/// Env files (the config's and the stacks') that others can read: they hold secrets.
fn env_file_permissions(m: &Model, stacks: &[&Stack]) -> CheckResult {
    let files = m
        .config
        .env_files
        .iter()
        .map(|f| &f.path)
        .chain(stacks.iter().flat_map(|s| &s.env_files));
    let open = hlsys_core::trust::readable_by_others(files);
    let remedy = format!(
        "chmod o-r {}",
        open.iter()
            .map(|p| hlsys_core::trust::shell_quote(p))
            .collect::<Vec<_>>()
            .join(" ")
    );
    CheckResult::from_problems(
        "env-file-permissions",
        "no env file is readable by others".into(),
        Status::Warn,
        open.iter()
            .map(|p| format!("{} is readable by others (env files hold secrets)", p.display()))
            .collect(),
        &remedy,
    )
}

/// The stacks to check: the named ones (even disabled), else every enabled one. Also
/// returns the names that are no valid stack.
fn select<'m>(m: &'m Model, names: &[String]) -> (Vec<&'m Stack>, Vec<String>) {
    if names.is_empty() {
        return (m.stacks.iter().filter(|s| s.enabled).collect(), Vec::new());
    }
    let unknown = names
        .iter()
        .filter(|n| m.stack(n).is_none() && !m.errors.iter().any(|e| &e.stack == *n))
        .cloned()
        .collect();
    (m.stacks.iter().filter(|s| names.contains(&s.id)).collect(), unknown)
}

async fn docker_check(host: &str, d: Result<&Docker, &anyhow::Error>) -> CheckResult {
    let remedy = "start Docker (systemctl start docker) or point DOCKER_HOST at it";
    match d {
        Err(e) => CheckResult::fail("docker", format!("{e:#}"), remedy),
        Ok(d) => match d.version().await {
            Ok(v) => CheckResult::ok(
                "docker",
                format!(
                    "Docker {} (API {}) at {host}",
                    v.version.unwrap_or_default(),
                    v.api_version.unwrap_or_default()
                ),
            ),
            Err(e) => CheckResult::fail("docker", format!("cannot reach Docker at {host}: {e}"), remedy),
        },
    }
}

/// How to get Compose v2 on Debian: the package names differ by source, and Debian 12's
/// own `docker-compose` is the Python v1, which hlsys cannot use.
pub const COMPOSE_REMEDY: &str = "install the Docker Compose v2 plugin: `apt install docker-compose-plugin` \
(with Docker's apt repository and docker-ce), `apt install docker-compose` on Debian 13 or later, \
`apt install docker-compose-v2` on Ubuntu; Debian 12's docker-compose is v1 and will not do";

/// `docker compose version`, through the binary the units run (crate::compose_cli: the
/// plugin itself, or `docker compose`).
async fn compose_version() -> CheckResult {
    let remedy = COMPOSE_REMEDY;
    let run = crate::compose_cli::command()
        .arg("version")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(30), run).await {
        Err(_) => return CheckResult::fail("compose", "`docker compose version` did not answer within 30s", remedy),
        Ok(Err(e)) => return CheckResult::fail("compose", format!("cannot run `docker compose version`: {e}"), remedy),
        Ok(Ok(o)) => o,
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .last()
        .unwrap_or("")
        .trim_start_matches('v')
        .to_string();
    let major: Option<u32> = version.split('.').next().and_then(|m| m.parse().ok());
    match major {
        _ if !out.status.success() => CheckResult::fail(
            "compose",
            format!(
                "`docker compose version` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            remedy,
        ),
        Some(m) if m >= 2 => CheckResult::ok("compose", format!("Docker Compose {version}")),
        _ => CheckResult::fail(
            "compose",
            format!("Docker Compose v2 required, found {:?}", text.trim()),
            remedy,
        ),
    }
}

fn stack_tree(m: &Model, names: &[String], unknown: Vec<String>) -> CheckResult {
    let mut problems: Vec<String> = m
        .errors
        .iter()
        .filter(|e| e.stack != hlsys_core::tree::NETWORKS_PROBLEM)
        // Said once, by the trust check.
        .filter(|e| !e.message.starts_with(hlsys_core::trust::UNTRUSTED))
        .filter(|e| names.is_empty() || names.contains(&e.stack))
        .map(|e| format!("{}: {}: {}", e.stack, e.file.display(), e.message))
        .collect();
    problems.extend(unknown.iter().map(|n| format!("no stack {n:?}")));
    CheckResult::from_problems(
        "stacks",
        format!(
            "{} stacks, {} enabled",
            m.stacks.len(),
            m.stacks.iter().filter(|s| s.enabled).count()
        ),
        Status::Fail,
        problems,
        "fix the files named; `hlsys stacks` lists what was understood",
    )
}

async fn networks(m: &Model, d: Result<&Docker, &anyhow::Error>, root: &Path) -> CheckResult {
    const NAME: &str = "networks";
    if m.config.networks.is_empty() {
        return CheckResult::ok(NAME, "no networks configured");
    }
    // What is wrong whatever Docker holds, said even when Docker is down.
    let offline: Vec<String> = hlsys_core::config::netcheck::problems(&m.config.networks)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    if !offline.is_empty() {
        return CheckResult::fail(
            NAME,
            offline.join("; "),
            "fix the subnets and gateways named (valid CIDR, gateway inside, no overlaps)",
        );
    }
    let d = match d {
        Ok(d) => d,
        Err(_) => return CheckResult::warn(NAME, "not checked: Docker is unreachable", "start Docker"),
    };
    let existing = match network::list_existing(d, |_, _| false).await {
        Ok(e) => e,
        Err(e) => return CheckResult::fail(NAME, format!("{e:#}"), "check Docker's log"),
    };
    let routes = match network::read_routes(root) {
        Ok(r) => r,
        Err(e) => return CheckResult::warn(NAME, format!("{e:#}"), "check /proc is mounted"),
    };
    let plan = network::plan(&m.config, &existing, &routes);
    if !plan.problems.is_empty() {
        return CheckResult::fail(
            NAME,
            plan.problems.join("; "),
            "choose subnets that overlap neither each other, other Docker networks nor host routes",
        );
    }
    let mut problems = Vec::new();
    for np in &plan.networks {
        match np.action {
            network::Action::Create => problems.push(format!("{} does not exist", np.name)),
            network::Action::Drift => {
                let d: Vec<String> = np
                    .drift
                    .iter()
                    .map(|d| format!("{} {} (wanted {})", d.field, d.found, d.wanted))
                    .collect();
                problems.push(format!("{} differs: {}", np.name, d.join(", ")));
            }
            network::Action::Ok => {}
        }
        if !np.duplicates.is_empty() {
            problems.push(format!("{} exists {} times", np.name, np.duplicates.len() + 1));
        }
    }
    CheckResult::from_problems(
        NAME,
        format!("{} networks as configured", plan.networks.len()),
        Status::Warn,
        problems,
        "hlsys network ensure (--recreate for drift, once no container uses the network)",
    )
}

async fn gpu_checks(m: &Model, stacks: &[&Stack], root: &Path, d: Result<&Docker, &anyhow::Error>) -> Vec<CheckResult> {
    if !stacks.iter().any(|s| s.gpu) {
        return vec![CheckResult::ok("gpu", "no stack needs a GPU")];
    }
    let host = gpu::detect(root, d).await;
    gpu::assess(m, &host)
        .into_iter()
        .filter(|g| stacks.iter().any(|s| s.id == g.stack))
        .map(|g| {
            let name = format!("gpu:{}", g.stack);
            let describe = |ms: &mut dyn Iterator<Item = &gpu::MechanismStatus>| {
                ms.map(|s| {
                    format!(
                        "{}: {}",
                        serde_json::to_value(s.mechanism)
                            .unwrap_or_default()
                            .as_str()
                            .unwrap_or("?"),
                        s.reason
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
            };
            match g.mechanisms.iter().find(|s| !s.works) {
                None => CheckResult::ok(&name, describe(&mut g.mechanisms.iter())),
                Some(bad) => CheckResult::fail(
                    &name,
                    describe(&mut g.mechanisms.iter().filter(|s| !s.works)),
                    bad.remedy.clone().unwrap_or_default(),
                ),
            }
        })
        .collect()
}

/// Required env files (the config's, the stacks' `--env-file`s, services' `env_file:`)
/// and `secrets:` files must exist, or Compose refuses to start the stack.
fn files(m: &Model, stacks: &[&Stack]) -> CheckResult {
    let mut missing = BTreeSet::new();
    for f in m.config.env_files.iter().filter(|f| !f.optional) {
        if !f.path.exists() {
            missing.insert(format!("env file {}", f.path.display()));
        }
    }
    for s in stacks {
        let required = s.env_files.iter().chain(
            s.service_details
                .iter()
                .flat_map(|svc| svc.env_files.iter().filter(|(_, req)| *req).map(|(p, _)| p)),
        );
        for p in required.filter(|p| !p.exists()) {
            missing.insert(format!("{}: env file {}", s.id, p.display()));
        }
        for p in s.secret_files.iter().filter(|p| !p.exists()) {
            missing.insert(format!("{}: secret file {}", s.id, p.display()));
        }
    }
    CheckResult::from_problems(
        "files",
        "every required env file and secret file exists".into(),
        Status::Fail,
        missing.into_iter().collect(),
        "create the missing files (or mark env files optional: `required: false` / `-path`)",
    )
}

fn secret_bearing(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == ".env.local" || n.ends_with(".secret"))
}

/// `.env.local`, `*.secret` (in the tree's top, layer and stack directories) and the
/// stacks' secret files must not be readable by others.
fn secret_permissions(m: &Model, stacks: &[&Stack]) -> CheckResult {
    let mut candidates: BTreeSet<PathBuf> = BTreeSet::new();
    let mut scan = |dir: &Path| {
        if let Ok(rd) = std::fs::read_dir(dir) {
            candidates.extend(
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| secret_bearing(p)),
            );
        }
    };
    // The tree's top, each layer directory and each stack directory: env layering reads
    // files at every level in between.
    let mut dirs = BTreeSet::from([m.config.stacks_dir.clone()]);
    for s in stacks {
        dirs.extend(
            s.dir
                .ancestors()
                .take_while(|d| d.starts_with(&m.config.stacks_dir))
                .map(Path::to_path_buf),
        );
    }
    for d in &dirs {
        scan(d);
    }
    for s in stacks {
        candidates.extend(s.secret_files.iter().cloned());
        candidates.extend(s.env_files.iter().filter(|p| secret_bearing(p)).cloned());
    }
    let open: Vec<String> = candidates
        .iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|md| md.is_file() && md.permissions().mode() & 0o004 != 0))
        .map(|p| p.display().to_string())
        .collect();
    let remedy = format!("chmod o-r {}", open.join(" "));
    CheckResult::from_problems(
        "secret-permissions",
        format!("{} secret-bearing files, none readable by others", candidates.len()),
        Status::Warn,
        open.into_iter().map(|p| format!("{p} is readable by others")).collect(),
        &remedy,
    )
}

/// Whether two published ports can clash: same protocol and port, and addresses equal
/// or one of them all addresses.
#[cfg(test)]
fn clash(a: &PublishedPort, b: &PublishedPort) -> bool {
    a.protocol == b.protocol
        && a.host_port == b.host_port
        && (a.host_ip == b.host_ip || any_address(&a.host_ip) || any_address(&b.host_ip))
}

/// A host IP that stands for all addresses.
fn any_address(ip: &str) -> bool {
    ip.is_empty() || ip == "0.0.0.0" || ip == "::"
}

/// Stacks named in one port clash; the rest are counted.
const MAX_CLASH_NAMES: usize = 5;
/// Port clashes named in the ports check; the rest are counted.
const MAX_CLASHES_NAMED: usize = 10;

/// The published ports that clash ([`clash`]), grouped instead of compared pairwise
/// (linear in the ports): for each port and protocol, every stack publishing it when one
/// of them takes all addresses, else the stacks sharing each address. Each group lists
/// indices into `ports` (one entry per stack), in order.
fn clashes(ports: &[&[PublishedPort]]) -> Vec<((u16, String), Vec<usize>)> {
    // (port, protocol) → (stacks on all addresses, address → stacks), deduplicated.
    type Group<'a> = (BTreeSet<usize>, BTreeMap<&'a str, BTreeSet<usize>>);
    let mut groups: BTreeMap<(u16, &str), Group> = BTreeMap::new();
    for (i, ports) in ports.iter().enumerate() {
        for p in ports.iter() {
            let g = groups.entry((p.host_port, p.protocol.as_str())).or_default();
            if any_address(&p.host_ip) {
                g.0.insert(i);
            } else {
                g.1.entry(p.host_ip.as_str()).or_default().insert(i);
            }
        }
    }
    let mut out = Vec::new();
    for ((port, proto), (any, by_ip)) in groups {
        let key = (port, proto.to_string());
        if !any.is_empty() {
            let mut every: BTreeSet<usize> = any;
            every.extend(by_ip.into_values().flatten());
            if every.len() > 1 {
                out.push((key, every.into_iter().collect()));
            }
            continue;
        }
        for stacks in by_ip.into_values().filter(|s| s.len() > 1) {
            out.push((key.clone(), stacks.into_iter().collect()));
        }
    }
    out
}

/// "8080/tcp is published by both a and b", or by N stacks, the first few named.
fn clash_message((port, proto): &(u16, String), ids: &[&str]) -> String {
    match ids {
        [a, b] => format!("{port}/{proto} is published by both {a} and {b}"),
        _ => {
            let named = ids[..ids.len().min(MAX_CLASH_NAMES)].join(", ");
            let rest = ids.len().saturating_sub(MAX_CLASH_NAMES);
            let more = if rest > 0 {
                format!(" and {} more", thousands(rest))
            } else {
                String::new()
            };
            format!(
                "{port}/{proto} is published by {} stacks: {named}{more}",
                thousands(ids.len())
            )
        }
    }
}

/// Host ports published by two enabled stacks, or already bound on the host by
/// something other than the stack's own containers.
async fn ports(m: &Model, stacks: &[&Stack], d: Result<&Docker, &anyhow::Error>) -> CheckResult {
    let mut problems = Vec::new();
    let published = |s: &Stack| -> Vec<PublishedPort> {
        let mut v: Vec<PublishedPort> = s
            .service_details
            .iter()
            .flat_map(|svc| svc.ports.iter().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let selected: HashSet<&str> = stacks.iter().map(|s| s.id.as_str()).collect();
    let all: Vec<(&Stack, Vec<PublishedPort>)> = m
        .stacks
        .iter()
        .filter(|s| s.enabled || selected.contains(s.id.as_str()))
        .map(|s| (s, published(s)))
        .collect();
    let mut clashing = BTreeSet::new();
    let (mut named, mut unnamed) = (0usize, 0usize);
    let by_stack: Vec<&[PublishedPort]> = all.iter().map(|(_, p)| p.as_slice()).collect();
    for (key, group) in clashes(&by_stack) {
        let ids: Vec<&str> = group.iter().map(|&i| all[i].0.id.as_str()).collect();
        if !ids.iter().any(|id| selected.contains(id)) {
            continue;
        }
        if named < MAX_CLASHES_NAMED {
            problems.push(clash_message(&key, &ids));
            named += 1;
        } else {
            unnamed += 1;
        }
        clashing.insert(key);
    }
    if unnamed > 0 {
        problems.push(format!("… and {} more clashing ports", thousands(unnamed)));
    }
    // Ports Docker already publishes for each project: the stack running is no clash.
    let owned = match d {
        Ok(d) => published_by_projects(d).await.unwrap_or_default(),
        Err(_) => HashMap::new(),
    };
    let mut count = 0usize;
    for s in stacks {
        for p in published(s) {
            count += 1;
            if clashing.contains(&(p.host_port, p.protocol.clone())) {
                continue;
            }
            if owned
                .get(&s.project)
                .is_some_and(|o| o.contains(&(p.host_port, p.protocol.clone())))
            {
                continue;
            }
            if let Some(why) = bound_elsewhere(&p) {
                problems.push(format!("{}: {}", s.id, why));
            }
        }
    }
    CheckResult::from_problems(
        "ports",
        format!("{count} published ports free"),
        Status::Fail,
        problems,
        "change the host port in one of the compose files, or stop what holds it (ss -ltnup)",
    )
}

/// Tries to bind the port as Docker would; `Some(why)` when something else holds it.
fn bound_elsewhere(p: &PublishedPort) -> Option<String> {
    let ip: IpAddr = if p.host_ip.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        p.host_ip.parse().ok()?
    };
    let res = match p.protocol.as_str() {
        "udp" => UdpSocket::bind((ip, p.host_port)).map(drop),
        _ => TcpListener::bind((ip, p.host_port)).map(drop),
    };
    match res {
        Err(e) if e.kind() == ErrorKind::AddrInUse => Some(format!(
            "{}:{}/{} is already bound on the host",
            p.host_ip, p.host_port, p.protocol
        )),
        Err(e) if e.kind() == ErrorKind::AddrNotAvailable => Some(format!(
            "{} (for port {}/{}) is not an address of this host",
            p.host_ip, p.host_port, p.protocol
        )),
        // Anything else (no privilege for low ports) says nothing about a clash.
        _ => None,
    }
}

/// project → (host port, protocol) its containers publish.
async fn published_by_projects(d: &Docker) -> anyhow::Result<HashMap<String, BTreeSet<(u16, String)>>> {
    let mut out: HashMap<String, BTreeSet<(u16, String)>> = HashMap::new();
    for c in compose_containers(d, None).await? {
        let Some(project) = label_of(&c, PROJECT_LABEL).map(str::to_string) else {
            continue;
        };
        let set = out.entry(project).or_default();
        for p in c.ports.unwrap_or_default() {
            if let Some(port) = p.public_port {
                set.insert((port, p.typ.map_or("tcp".into(), |t| t.to_string())));
            }
        }
    }
    Ok(out)
}

/// Containers of the checked stacks that still carry a Docker restart policy: hlsys takes
/// each stack's containers over when it starts it (policy "no", the declared one applied
/// by its supervisor), so these come from before hlsys or from a plain `docker compose
/// up`, and dockerd would start them on its own at boot, out of order. Also containers of
/// another Compose project made from a stack's directory, which hlsys refuses to copy.
async fn restart_policies(stacks: &[&Stack], d: Result<&Docker, &anyhow::Error>) -> CheckResult {
    const NAME: &str = "restart-policies";
    let d = match d {
        Ok(d) => d,
        Err(_) => return CheckResult::warn(NAME, "not checked: Docker is unreachable", "start Docker"),
    };
    let projects: BTreeMap<&str, &str> = stacks.iter().map(|s| (s.project.as_str(), s.id.as_str())).collect();
    let dirs: BTreeMap<String, &Stack> = stacks
        .iter()
        .map(|s| (s.dir.to_string_lossy().into_owned(), *s))
        .collect();
    let containers = match compose_containers(d, None).await {
        Ok(c) => c,
        Err(e) => return CheckResult::fail(NAME, format!("cannot list containers: {e:#}"), "check Docker's log"),
    };
    let mut problems = Vec::new();
    let mut seen = 0;
    for c in containers {
        let project = label_of(&c, PROJECT_LABEL).unwrap_or_default();
        let Some(stack) = projects.get(project) else {
            let here = label_of(&c, takeover::WORKING_DIR_LABEL).and_then(|w| dirs.get(w));
            if let Some(s) = here {
                problems.push(format!(
                    "{}: container {} of Compose project {project} was made from its directory: hlsys will not start a second copy (docker compose -p {project} down, then move its data)",
                    s.id,
                    container_name(&c)
                ));
            }
            continue;
        };
        seen += 1;
        let id = c.id.clone().unwrap_or_default();
        let Ok(policy) = takeover::policy_of(d, &id).await else {
            continue;
        };
        if policy != "no" {
            problems.push(format!(
                "{stack}: container {} has restart policy {policy}, so Docker starts it on its own at boot",
                container_name(&c)
            ));
        }
    }
    CheckResult::from_problems(
        NAME,
        format!("{seen} containers of the checked stacks, none restarted by Docker itself"),
        Status::Warn,
        problems,
        "hand them over to hlsys: `hlsys start STACK` (its supervisor sets the policy to \"no\" and applies \
         the declared one itself), or for a stack left stopped `docker update --restart=no $(docker ps -aq \
         --filter label=com.docker.compose.project=STACK)`; the compose files stay as they are",
    )
}

/// Bind-mount sources that do not exist: Docker would create them as empty root-owned
/// directories, which is rarely what the stack wants.
fn bind_mounts(stacks: &[&Stack]) -> CheckResult {
    let mut problems = Vec::new();
    let mut count = 0;
    for s in stacks {
        for svc in &s.service_details {
            for src in &svc.bind_sources {
                count += 1;
                if !src.exists() {
                    problems.push(format!("{}/{}: {} does not exist", s.id, svc.name, src.display()));
                }
            }
        }
    }
    CheckResult::from_problems(
        "bind-mounts",
        format!("{count} bind-mount sources exist"),
        Status::Warn,
        problems,
        "create the directories or files (with the right owner) before starting the stack",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(ip: &str, p: u16, proto: &str) -> PublishedPort {
        PublishedPort {
            host_ip: ip.into(),
            host_port: p,
            protocol: proto.into(),
        }
    }

    #[test]
    fn port_clash_rules() {
        assert!(clash(&port("", 80, "tcp"), &port("127.0.0.1", 80, "tcp")));
        assert!(clash(&port("10.0.0.1", 80, "tcp"), &port("10.0.0.1", 80, "tcp")));
        assert!(!clash(&port("10.0.0.1", 80, "tcp"), &port("10.0.0.2", 80, "tcp")));
        assert!(!clash(&port("", 80, "tcp"), &port("", 80, "udp")));
        assert!(!clash(&port("", 80, "tcp"), &port("", 81, "tcp")));
    }

    /// Grouping finds exactly the stacks that pairwise comparison finds, port by port.
    #[test]
    fn grouped_clashes_are_the_pairwise_ones() {
        let ips = ["", "0.0.0.0", "::", "10.0.0.1", "10.0.0.2"];
        let mut seed = 11u64;
        let mut below = |n: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as usize) % n
        };
        for _ in 0..500 {
            let stacks: Vec<Vec<PublishedPort>> = (0..1 + below(6))
                .map(|_| {
                    let mut v: Vec<PublishedPort> = (0..below(3))
                        .map(|_| port(ips[below(ips.len())], 80 + below(2) as u16, ["tcp", "udp"][below(2)]))
                        .collect();
                    v.sort();
                    v.dedup();
                    v
                })
                .collect();
            let mut want: BTreeSet<((u16, String), usize)> = BTreeSet::new();
            for (i, a) in stacks.iter().enumerate() {
                for (j, b) in stacks.iter().enumerate().filter(|(j, _)| *j != i) {
                    for p in a.iter().filter(|p| b.iter().any(|q| clash(p, q))) {
                        want.insert(((p.host_port, p.protocol.clone()), i));
                        let _ = j;
                    }
                }
            }
            let refs: Vec<&[PublishedPort]> = stacks.iter().map(Vec::as_slice).collect();
            let got: BTreeSet<((u16, String), usize)> = clashes(&refs)
                .into_iter()
                .flat_map(|(k, g)| g.into_iter().map(move |i| (k.clone(), i)))
                .collect();
            assert_eq!(got, want, "{stacks:?}");
        }
    }

    #[test]
    fn a_crowd_on_one_port_is_one_short_message() {
        let ids: Vec<String> = (0..1000).map(|i| format!("s{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let key = (8080, "tcp".to_string());
        assert_eq!(
            clash_message(&key, &refs),
            "8080/tcp is published by 1,000 stacks: s0, s1, s2, s3, s4 and 995 more"
        );
        assert_eq!(
            clash_message(&key, &refs[..2]),
            "8080/tcp is published by both s0 and s1"
        );
        let many: Vec<String> = (0..200).map(|i| format!("p{i}")).collect();
        let r = CheckResult::from_problems("x", "ok".into(), Status::Fail, many, "fix");
        assert!(r.message.ends_with("; … and 150 more"), "{}", r.message);
    }

    #[test]
    fn bound_port_is_seen() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        assert!(bound_elsewhere(&port("127.0.0.1", p, "tcp")).is_some());
        drop(l);
        assert!(bound_elsewhere(&port("127.0.0.1", p, "tcp")).is_none());
        assert!(bound_elsewhere(&port("192.0.2.77", p, "tcp"))
            .unwrap()
            .contains("not an address"));
    }

    #[test]
    fn exit_codes() {
        let ok = CheckResult::ok("a", "");
        let warn = CheckResult::warn("b", "", "");
        let fail = CheckResult::fail("c", "", "");
        assert_eq!(exit_code(std::slice::from_ref(&ok), true), 0);
        assert_eq!(exit_code(&[ok.clone(), warn.clone()], false), 0);
        assert_eq!(exit_code(&[ok.clone(), warn], true), 1);
        assert_eq!(exit_code(&[ok, fail], false), 1);
    }

    #[test]
    fn secret_names() {
        assert!(secret_bearing(Path::new("/a/.env.local")));
        assert!(secret_bearing(Path::new("/a/db.secret")));
        assert!(!secret_bearing(Path::new("/a/.env")));
    }
}
