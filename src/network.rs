//! The Docker networks the config declares: plan (pure), ensure, status.
//!
//! Docker (before 25) happily creates two networks with the same name, so concurrent
//! `hlsys network ensure` runs settle duplicates afterwards: every run orders the
//! same-named networks the same way (oldest first, then lowest ID) and removes the rest
//! when they are hlsys-managed and unused. Nobody removes the first of that order, so
//! exactly one survives however the runs interleave. Networks without the managed label
//! are never removed, and a network with containers attached is never removed or changed.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest, NetworkInspect};
use bollard::Docker;
use ipnet::IpNet;

use hlsys_core::config::netcheck::{overlap, parse_subnet};
use serde::Serialize;

use crate::docker::status_code;
use hlsys_core::config::{Config, NetworkConfig};

/// Label every network hlsys creates carries; only such networks are ever removed.
pub const MANAGED_LABEL: &str = "io.hlsys.managed";

/// A network as Docker reports it, reduced to what hlsys compares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Existing {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub subnets: Vec<String>,
    pub gateways: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Creation time as Docker reports it (RFC 3339).
    pub created: Option<String>,
    /// Names of the attached containers.
    pub containers: Vec<String>,
}

impl Existing {
    pub fn managed(&self) -> bool {
        self.labels.get(MANAGED_LABEL).is_some_and(|v| v == "true")
    }

    pub fn in_use(&self) -> bool {
        !self.containers.is_empty()
    }

    fn from_inspect(n: NetworkInspect) -> Existing {
        let ipam = n.ipam.and_then(|i| i.config).unwrap_or_default();
        let mut containers: Vec<String> = n
            .containers
            .unwrap_or_default()
            .into_iter()
            .map(|(id, ep)| ep.name.filter(|s| !s.is_empty()).unwrap_or(id))
            .collect();
        containers.sort();
        Existing {
            id: n.id.unwrap_or_default(),
            name: n.name.unwrap_or_default(),
            driver: n.driver.unwrap_or_default(),
            internal: n.internal.unwrap_or(false),
            subnets: ipam.iter().filter_map(|c| c.subnet.clone()).collect(),
            gateways: ipam.iter().filter_map(|c| c.gateway.clone()).collect(),
            labels: n.labels.unwrap_or_default().into_iter().collect(),
            created: n.created,
            containers,
        }
    }

    /// The order all concurrent runs agree on: oldest first, then lowest ID. Unparsable
    /// times sort last so a well-formed network always beats them.
    fn settle_order(&self, other: &Existing) -> Ordering {
        let (a, b) = (self.created_key(), other.created_key());
        match (a, b) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then_with(|| self.id.cmp(&other.id))
    }

    fn created_key(&self) -> Option<(i64, u32)> {
        self.created.as_deref().and_then(parse_rfc3339)
    }
}

/// A host route (from /proc/net/route or /proc/net/ipv6_route).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub iface: String,
    #[serde(serialize_with = "serialize_display")]
    pub net: IpNet,
}

fn serialize_display<S: serde::Serializer>(v: &IpNet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// One field where the existing network differs from the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub field: String,
    pub wanted: String,
    pub found: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Ok,
    Drift,
}

/// What to do about one configured network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkPlan {
    pub name: String,
    pub action: Action,
    pub drift: Vec<Drift>,
    /// The network that counts (the first in settle order), when one exists.
    pub existing: Option<Existing>,
    /// Other networks with the same name (left by a race or by hand).
    pub duplicates: Vec<Existing>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub networks: Vec<NetworkPlan>,
    /// Invalid subnets and overlaps: when any, nothing may be created.
    pub problems: Vec<String>,
}

/// Compares the configured networks with what exists. Pure: `existing` is every Docker
/// network (for the overlap check), `routes` the host's routes.
pub fn plan(config: &Config, existing: &[Existing], routes: &[Route]) -> Plan {
    let mut out = Plan::default();
    let mut wanted: Vec<(&str, IpNet)> = Vec::new();
    for (name, net) in &config.networks {
        match parse_subnet(net) {
            Ok(Some(s)) => wanted.push((name, s)),
            Ok(None) => {}
            Err(e) => out.problems.push(format!("network {name}: {e}")),
        }
        let mut same: Vec<&Existing> = existing.iter().filter(|e| e.name == *name).collect();
        same.sort_by(|a, b| a.settle_order(b));
        let Some(first) = same.first() else {
            out.networks.push(NetworkPlan {
                name: name.clone(),
                action: Action::Create,
                drift: Vec::new(),
                existing: None,
                duplicates: Vec::new(),
            });
            continue;
        };
        let drift = drift(net, first);
        out.networks.push(NetworkPlan {
            name: name.clone(),
            action: if drift.is_empty() { Action::Ok } else { Action::Drift },
            drift,
            existing: Some((*first).clone()),
            duplicates: same[1..].iter().map(|e| (*e).clone()).collect(),
        });
    }
    out.problems.extend(overlaps(&wanted, existing, routes));
    out
}

/// The drift of `found` against `net`: only what the config pins down counts (no subnet
/// configured means Docker's choice is fine).
pub fn drift(net: &NetworkConfig, found: &Existing) -> Vec<Drift> {
    let mut d = Vec::new();
    let mut push = |field: &str, wanted: String, found: String| {
        d.push(Drift {
            field: field.into(),
            wanted,
            found,
        })
    };
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(",")
        }
    };
    if let Some(s) = &net.subnet {
        let want = s.parse::<IpNet>().ok();
        let same = found
            .subnets
            .iter()
            .any(|f| f == s || (want.is_some() && f.parse::<IpNet>().ok() == want));
        if !same {
            push("subnet", s.clone(), list(&found.subnets));
        }
    }
    if let Some(g) = &net.gateway {
        let want = g.parse::<IpAddr>().ok();
        // Some engines report the gateway with a prefix length.
        let same = found.gateways.iter().any(|f| {
            let f = f.split('/').next().unwrap_or(f);
            f == g || (want.is_some() && f.parse::<IpAddr>().ok() == want)
        });
        if !same {
            push("gateway", g.clone(), list(&found.gateways));
        }
    }
    if net.internal != found.internal {
        push("internal", net.internal.to_string(), found.internal.to_string());
    }
    if net.driver != found.driver {
        push("driver", net.driver.clone(), found.driver.clone());
    }
    d
}

/// Configured subnets overlapping each other, another Docker network, or a host route.
fn overlaps(wanted: &[(&str, IpNet)], existing: &[Existing], routes: &[Route]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, (a, sa)) in wanted.iter().enumerate() {
        for (b, sb) in &wanted[i + 1..] {
            if overlap(sa, sb) {
                problems.push(format!("networks {a} ({sa}) and {b} ({sb}) overlap"));
            }
        }
        for e in existing.iter().filter(|e| e.name != *a) {
            for s in e.subnets.iter().filter_map(|s| s.parse::<IpNet>().ok()) {
                // A configured network that exists as configured is covered above.
                let as_configured = wanted.iter().any(|(n, w)| *n == e.name && *w == s);
                if overlap(sa, &s) && !as_configured {
                    problems.push(format!("network {a} ({sa}) overlaps Docker network {} ({s})", e.name));
                }
            }
        }
        for r in routes.iter().filter(|r| !docker_route(r, existing)) {
            if overlap(sa, &r.net) {
                problems.push(format!(
                    "network {a} ({sa}) overlaps the host route {} on {}",
                    r.net, r.iface
                ));
            }
        }
    }
    problems
}

/// Docker's own bridges carry routes for Docker networks, which the Docker-network check
/// already covers (with the same-name exception a route check could not make). Any
/// `br-<12 hex>` counts, not only those of listed networks: a concurrent run may create
/// or remove one between reading the routes and listing the networks.
fn docker_route(r: &Route, existing: &[Existing]) -> bool {
    let bridge = r.iface == "docker0"
        || r.iface
            .strip_prefix("br-")
            .is_some_and(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    bridge
        || existing
            .iter()
            .flat_map(|e| &e.subnets)
            .any(|s| s.parse::<IpNet>().ok() == Some(r.net))
}

/// Reads the host's routes below `root` (`/` in production, a fixture tree in tests).
/// Default routes, loopback and link-local/multicast ranges cannot sensibly clash with a
/// Docker subnet and are left out. A missing file (no IPv6) means no routes.
pub fn read_routes(root: &Path) -> Result<Vec<Route>> {
    let read = |rel: &str| -> Result<String> {
        let p = root.join(rel);
        match std::fs::read_to_string(&p) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    };
    let mut routes = parse_ipv4_routes(&read("proc/net/route")?);
    routes.extend(parse_ipv6_routes(&read("proc/net/ipv6_route")?));
    Ok(routes)
}

/// `/proc/net/route`: addresses are the kernel's u32 in host byte order, printed in hex.
pub fn parse_ipv4_routes(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (iface, dest, mask) = (f.first()?, f.get(1)?, f.get(7)?);
            let dest = Ipv4Addr::from(u32::from_str_radix(dest, 16).ok()?.to_ne_bytes());
            let prefix = u32::from_str_radix(mask, 16).ok()?.count_ones() as u8;
            let net = IpNet::new(IpAddr::V4(dest), prefix).ok()?;
            (prefix > 0 && *iface != "lo").then(|| Route {
                iface: iface.to_string(),
                net,
            })
        })
        .collect()
}

/// `/proc/net/ipv6_route`: destination in network order hex, prefix length in hex, iface last.
pub fn parse_ipv6_routes(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dest, prefix, iface) = (f.first()?, f.get(1)?, f.get(9)?);
            let dest = Ipv6Addr::from(u128::from_str_radix(dest, 16).ok()?);
            let prefix = u8::from_str_radix(prefix, 16).ok()?;
            let net = IpNet::new(IpAddr::V6(dest), prefix).ok()?;
            let seg = dest.segments()[0];
            let skip = prefix == 0 || *iface == "lo" || (seg & 0xffc0) == 0xfe80 || (seg & 0xff00) == 0xff00;
            (!skip).then(|| Route {
                iface: iface.to_string(),
                net,
            })
        })
        .collect()
}

/// Every Docker network; inspected (for attached containers) when `inspect` says so.
/// A network removed between list and inspect is simply left out.
pub async fn list_existing(docker: &Docker, inspect: impl Fn(&str, bool) -> bool) -> Result<Vec<Existing>> {
    let list = docker
        .list_networks(None)
        .await
        .context("cannot list Docker networks")?;
    let mut out = Vec::new();
    for n in list {
        let name = n.name.clone().unwrap_or_default();
        let managed = n
            .labels
            .as_ref()
            .and_then(|l| l.get(MANAGED_LABEL))
            .is_some_and(|v| v == "true");
        let id = n.id.clone().unwrap_or_default();
        if inspect(&name, managed) {
            match inspect_network(docker, &id).await? {
                Some(e) => out.push(e),
                None => continue,
            }
        } else {
            out.push(Existing::from_inspect(NetworkInspect {
                name: n.name,
                id: n.id,
                created: n.created,
                driver: n.driver,
                ipam: n.ipam,
                internal: n.internal,
                labels: n.labels,
                ..Default::default()
            }));
        }
    }
    Ok(out)
}

async fn inspect_network(docker: &Docker, id: &str) -> Result<Option<Existing>> {
    match docker.inspect_network(id, None).await {
        Ok(n) => Ok(Some(Existing::from_inspect(n))),
        Err(e) if status_code(&e) == Some(404) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot inspect Docker network {id}")),
    }
}

/// Networks named `name` (Docker's name filter matches substrings, so filter here).
async fn same_named(docker: &Docker, name: &str) -> Result<Vec<Existing>> {
    let mut v = list_existing(docker, |n, _| n == name).await?;
    v.retain(|e| e.name == name);
    v.sort_by(|a, b| a.settle_order(b));
    Ok(v)
}

#[derive(Debug, Clone, Default)]
pub struct EnsureOptions {
    pub dry_run: bool,
    pub recreate: bool,
    /// Where `/proc/net/route` is read from (`/` normally).
    pub root: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnsureAction {
    Created,
    Exists,
    Recreated,
    WouldCreate,
    WouldRecreate,
    /// Drift found and left alone (no --recreate, in use, or not managed by hlsys).
    DriftKept,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnsureResult {
    pub name: String,
    pub outcome: EnsureAction,
    pub id: Option<String>,
    pub drift: Vec<Drift>,
    /// Why drift was kept, duplicates removed or left, and the like.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkReport {
    pub networks: Vec<EnsureResult>,
    /// Invalid config or overlaps: when any, nothing was created.
    pub problems: Vec<String>,
}

impl NetworkReport {
    /// No problems and no drift left behind.
    pub fn success(&self) -> bool {
        self.problems.is_empty() && self.networks.iter().all(|n| n.outcome != EnsureAction::DriftKept)
    }
}

/// Brings Docker in line with the configured networks. Idempotent; safe to run many
/// times at once.
pub async fn ensure(docker: &Docker, config: &Config, opts: &EnsureOptions) -> Result<NetworkReport> {
    let existing = list_existing(docker, |n, _| config.networks.contains_key(n)).await?;
    let routes = read_routes(&opts.root)?;
    let plan = plan(config, &existing, &routes);
    let mut report = NetworkReport {
        problems: plan.problems,
        ..Default::default()
    };
    if !report.problems.is_empty() {
        return Ok(report);
    }
    for np in plan.networks {
        let net = &config.networks[&np.name];
        let mut r = EnsureResult {
            name: np.name.clone(),
            outcome: EnsureAction::Exists,
            id: np.existing.as_ref().map(|e| e.id.clone()),
            drift: np.drift.clone(),
            notes: Vec::new(),
        };
        match np.action {
            Action::Create if opts.dry_run => r.outcome = EnsureAction::WouldCreate,
            Action::Create => {
                let (id, mine) = create_and_settle(docker, &np.name, net, &mut r.notes).await?;
                r.id = Some(id);
                r.outcome = if mine {
                    EnsureAction::Created
                } else {
                    EnsureAction::Exists
                };
            }
            Action::Ok if !np.duplicates.is_empty() && !opts.dry_run => {
                r.id = Some(keep_one(docker, &np.name, net, &mut r.notes).await?);
            }
            Action::Ok => {}
            Action::Drift => {
                let e = np.existing.as_ref().expect("drift implies an existing network");
                fix_drift(docker, e, net, opts, &mut r).await?;
            }
        }
        report.networks.push(r);
    }
    recheck_created(docker, &mut report.networks).await;
    Ok(report)
}

/// Settles duplicates of `name` on one network and returns its id (creating it again
/// when someone else removed it meanwhile).
async fn keep_one(docker: &Docker, name: &str, net: &NetworkConfig, notes: &mut Vec<String>) -> Result<String> {
    match settle(docker, name, notes).await {
        Ok(w) => Ok(w.id),
        Err(SettleError::Other(e)) => Err(e),
        // Removed meanwhile by someone else: create it again.
        Err(SettleError::Vanished) => Ok(create_and_settle(docker, name, net, notes).await?.0),
    }
}

/// Recreates a drifted network when asked to and safe (`--recreate`, not in use, managed
/// by hlsys); otherwise keeps it and notes why.
async fn fix_drift(
    docker: &Docker,
    e: &Existing,
    net: &NetworkConfig,
    opts: &EnsureOptions,
    r: &mut EnsureResult,
) -> Result<()> {
    let keep = if !opts.recreate {
        Some("run with --recreate to replace it".to_string())
    } else if e.in_use() {
        Some(format!("in use by {}; not touched", e.containers.join(", ")))
    } else if !e.managed() {
        Some(format!(
            "not managed by hlsys (no {MANAGED_LABEL}=true label); not touched"
        ))
    } else {
        None
    };
    if let Some(why) = keep {
        r.outcome = EnsureAction::DriftKept;
        r.notes.push(why);
        return Ok(());
    }
    if opts.dry_run {
        r.outcome = EnsureAction::WouldRecreate;
        return Ok(());
    }
    match remove(docker, &e.id).await? {
        Removed::Yes | Removed::Gone => {
            let (id, _) = create_and_settle(docker, &r.name, net, &mut r.notes).await?;
            r.id = Some(id);
            r.outcome = EnsureAction::Recreated;
        }
        Removed::InUse(msg) => {
            r.outcome = EnsureAction::DriftKept;
            r.notes
                .push(format!("Docker refused to remove it ({msg}); not touched"));
        }
    }
    Ok(())
}

/// Docker lists a new network a moment after creating it, so a concurrent run's older
/// duplicate can show up only now: settle once more, and whoever's network lost says
/// "exists" rather than "created".
async fn recheck_created(docker: &Docker, results: &mut [EnsureResult]) {
    for r in results.iter_mut().filter(|r| r.outcome == EnsureAction::Created) {
        if let Ok(winner) = settle(docker, &r.name, &mut r.notes).await {
            if r.id.as_deref() != Some(winner.id.as_str()) {
                r.notes
                    .push("a concurrent run created it too; that one was kept".into());
                r.outcome = EnsureAction::Exists;
                r.id = Some(winner.id);
            }
        }
    }
}

fn create_request(name: &str, net: &NetworkConfig) -> NetworkCreateRequest {
    let mut labels: HashMap<String, String> = net.labels.clone().into_iter().collect();
    labels.insert(MANAGED_LABEL.into(), "true".into());
    NetworkCreateRequest {
        name: name.to_string(),
        driver: Some(net.driver.clone()),
        internal: Some(net.internal),
        // Overlays (hlsys swarm) must take standalone containers too, as bridges do.
        attachable: (net.driver == "overlay").then_some(true),
        labels: Some(labels),
        ipam: net.subnet.as_ref().map(|s| Ipam {
            driver: Some("default".into()),
            config: Some(vec![IpamConfig {
                subnet: Some(s.clone()),
                gateway: net.gateway.clone(),
                ..Default::default()
            }]),
            options: None,
        }),
        ..Default::default()
    }
}

/// Creates the network, then settles duplicates. A failed create is fine when the network
/// shows up afterwards: a concurrent run got there first (409 on engines that refuse
/// duplicate names, "pool overlaps" when both asked for the same subnet).
/// Returns the surviving ID and whether it is the one this call created.
async fn create_and_settle(
    docker: &Docker,
    name: &str,
    net: &NetworkConfig,
    notes: &mut Vec<String>,
) -> Result<(String, bool)> {
    const ATTEMPTS: usize = 4;
    for attempt in 1..=ATTEMPTS {
        let created = match docker.create_network(create_request(name, net)).await {
            Ok(resp) => Some(resp.id),
            // The other run's network holds the name or the pool before it is listed, and
            // its creation may still fail and roll back: wait for it, else try again.
            Err(e) if !appears(docker, name).await? => {
                if attempt == ATTEMPTS {
                    return Err(e).with_context(|| format!("cannot create Docker network {name}"));
                }
                continue;
            }
            Err(_) => None,
        };
        match settle(docker, name, notes).await {
            Ok(winner) => {
                let mine = created.as_deref() == Some(winner.id.as_str());
                return Ok((winner.id, mine));
            }
            // Removed by someone outside hlsys meanwhile: create it again.
            Err(SettleError::Vanished) => continue,
            Err(SettleError::Other(e)) => return Err(e),
        }
    }
    bail!("Docker network {name} keeps disappearing right after creation; is something removing it?")
}

/// Whether a network named `name` is listed within about two seconds.
async fn appears(docker: &Docker, name: &str) -> Result<bool> {
    for _ in 0..20 {
        if !same_named(docker, name).await?.is_empty() {
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(false)
}

/// Keeps the first network named `name` in settle order and removes the other managed,
/// unused ones. Another run removing the same duplicate first is fine (404).
async fn settle(docker: &Docker, name: &str, notes: &mut Vec<String>) -> Result<Existing, SettleError> {
    let all = same_named(docker, name).await.map_err(SettleError::Other)?;
    let mut it = all.into_iter();
    let Some(winner) = it.next() else {
        return Err(SettleError::Vanished);
    };
    for dup in it {
        let short = &dup.id[..dup.id.len().min(12)];
        if !dup.managed() {
            notes.push(format!("duplicate {short} is not managed by hlsys; left alone"));
        } else if dup.in_use() {
            notes.push(format!(
                "duplicate {short} is in use by {}; left alone",
                dup.containers.join(", ")
            ));
        } else {
            match remove(docker, &dup.id).await.map_err(SettleError::Other)? {
                Removed::Yes => notes.push(format!("removed duplicate {short}")),
                Removed::Gone => {}
                Removed::InUse(m) => notes.push(format!("duplicate {short} kept: {m}")),
            }
        }
    }
    Ok(winner)
}

enum SettleError {
    Vanished,
    Other(anyhow::Error),
}

enum Removed {
    Yes,
    /// Already gone (another run removed it).
    Gone,
    /// Docker refused, normally because a container got attached meanwhile.
    InUse(String),
}

async fn remove(docker: &Docker, id: &str) -> Result<Removed> {
    match docker.remove_network(id).await {
        Ok(()) => Ok(Removed::Yes),
        Err(e) => match status_code(&e) {
            Some(404) => Ok(Removed::Gone),
            Some(403 | 409) => Ok(Removed::InUse(e.to_string())),
            // Some engines answer 500 for "has active endpoints".
            Some(500) if e.to_string().contains("active endpoints") => Ok(Removed::InUse(e.to_string())),
            _ => Err(e).with_context(|| format!("cannot remove Docker network {id}")),
        },
    }
}

/// One row of `hlsys network status`.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkStatus {
    pub name: String,
    /// Declared in the config (else: an hlsys-managed network the config no longer has).
    pub configured: bool,
    pub exists: bool,
    pub id: Option<String>,
    pub managed: bool,
    pub drift: Vec<Drift>,
    pub containers: Vec<String>,
    /// How many other networks carry the same name.
    pub duplicates: usize,
}

/// Every configured network and every other hlsys-managed network.
pub async fn status(docker: &Docker, config: &Config) -> Result<Vec<NetworkStatus>> {
    let existing = list_existing(docker, |n, managed| managed || config.networks.contains_key(n)).await?;
    let p = plan(config, &existing, &[]);
    let mut out: Vec<NetworkStatus> = p
        .networks
        .into_iter()
        .map(|np| NetworkStatus {
            configured: true,
            exists: np.existing.is_some(),
            id: np.existing.as_ref().map(|e| e.id.clone()),
            managed: np.existing.as_ref().is_some_and(Existing::managed),
            containers: np.existing.map(|e| e.containers).unwrap_or_default(),
            drift: np.drift,
            duplicates: np.duplicates.len(),
            name: np.name,
        })
        .collect();
    for e in existing {
        if e.managed() && !config.networks.contains_key(&e.name) {
            out.push(NetworkStatus {
                name: e.name,
                configured: false,
                exists: true,
                id: Some(e.id),
                managed: true,
                drift: Vec::new(),
                containers: e.containers,
                duplicates: 0,
            });
        }
    }
    Ok(out)
}

/// Parses Docker's RFC 3339 timestamps ("2024-05-01T10:00:00.123456789+02:00") into
/// (UTC seconds, nanoseconds); a string compare would misorder trimmed fractions.
fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = s.get(19..)?;
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac.find(|c: char| !c.is_ascii_digit()).unwrap_or(frac.len());
        let digits = &frac[..len.min(9)];
        nanos = format!("{digits:0<9}").parse().ok()?;
        rest = &frac[len..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o.get(1..3)?.parse::<i64>().ok()? * 3600 + o.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(nets: &[(&str, Option<&str>, Option<&str>)]) -> Config {
        let mut c = Config::default();
        for (name, subnet, gw) in nets {
            c.networks.insert(
                name.to_string(),
                NetworkConfig {
                    driver: "bridge".into(),
                    internal: false,
                    subnet: subnet.map(String::from),
                    gateway: gw.map(String::from),
                    labels: BTreeMap::new(),
                },
            );
        }
        c
    }

    fn ex(id: &str, name: &str, subnet: &str, created: &str) -> Existing {
        Existing {
            id: id.into(),
            name: name.into(),
            driver: "bridge".into(),
            subnets: vec![subnet.into()],
            gateways: vec![],
            created: Some(created.into()),
            labels: [(MANAGED_LABEL.to_string(), "true".to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn plan_create_ok_and_drift() {
        let c = cfg(&[
            ("a", Some("10.1.0.0/24"), None),
            ("b", Some("10.2.0.0/24"), Some("10.2.0.1")),
            ("c", None, None),
        ]);
        let mut b = ex("bb", "b", "10.2.0.0/24", "2024-01-01T00:00:00Z");
        b.gateways = vec!["10.2.0.254".into()];
        b.internal = true;
        let p = plan(&c, &[b, ex("cc", "c", "172.30.0.0/16", "2024-01-01T00:00:00Z")], &[]);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let act: Vec<_> = p.networks.iter().map(|n| (n.name.as_str(), n.action.clone())).collect();
        assert_eq!(
            act,
            vec![("a", Action::Create), ("b", Action::Drift), ("c", Action::Ok)]
        );
        let fields: Vec<_> = p.networks[1].drift.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, vec!["gateway", "internal"]);
        assert_eq!(p.networks[1].drift[0].found, "10.2.0.254");
    }

    #[test]
    fn plan_subnet_and_driver_drift() {
        let c = cfg(&[("a", Some("10.1.0.0/24"), None)]);
        let mut e = ex("aa", "a", "10.9.0.0/24", "2024-01-01T00:00:00Z");
        e.driver = "macvlan".into();
        let p = plan(&c, &[e], &[]);
        let d: Vec<_> = p.networks[0]
            .drift
            .iter()
            .map(|d| (d.field.as_str(), d.wanted.as_str(), d.found.as_str()))
            .collect();
        assert_eq!(
            d,
            vec![
                ("subnet", "10.1.0.0/24", "10.9.0.0/24"),
                ("driver", "bridge", "macvlan")
            ]
        );
    }

    #[test]
    fn overlaps_are_problems() {
        let c = cfg(&[
            ("a", Some("10.1.0.0/16"), None),
            ("b", Some("10.1.2.0/24"), None),
            ("d", Some("192.168.5.0/24"), None),
        ]);
        let other = ex("x1", "other", "192.168.0.0/16", "2024-01-01T00:00:00Z");
        // Same name: its subnet is drift, not an overlap.
        let same = ex("x2", "a", "10.1.0.0/16", "2024-01-01T00:00:00Z");
        let p = plan(&c, &[other, same], &[]);
        assert_eq!(p.problems.len(), 2, "{:?}", p.problems);
        assert!(p.problems[0].contains("networks a (10.1.0.0/16) and b (10.1.2.0/24) overlap"));
        assert!(p.problems[1].contains("d (192.168.5.0/24) overlaps Docker network other"));
    }

    #[test]
    fn invalid_subnets_are_problems() {
        let c = cfg(&[
            ("a", Some("10.1.0.0/33"), None),
            ("b", Some("10.1.0.1/24"), None),
            ("c", Some("10.3.0.0/24"), Some("10.4.0.1")),
            ("d", None, Some("10.5.0.1")),
        ]);
        let p = plan(&c, &[], &[]);
        assert_eq!(p.problems.len(), 4, "{:?}", p.problems);
        assert!(p.problems[1].contains("host bits"));
        assert!(p.problems[2].contains("outside"));
    }

    const ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
        docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
        br-0123456789ab\t0000FB0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        wg0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n\
        eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
    const ROUTE6: &str = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
        fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001  docker0\n\
        00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n\
        00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo\n";

    #[test]
    fn routes_from_fixture_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("proc/net")).unwrap();
        std::fs::write(d.path().join("proc/net/route"), ROUTE).unwrap();
        std::fs::write(d.path().join("proc/net/ipv6_route"), ROUTE6).unwrap();
        let r = read_routes(d.path()).unwrap();
        let got: Vec<String> = r.iter().map(|r| format!("{} {}", r.iface, r.net)).collect();
        assert_eq!(
            got,
            vec![
                "docker0 172.17.0.0/16",
                "br-0123456789ab 10.251.0.0/24",
                "wg0 10.0.0.0/8",
                "eth0 192.0.2.0/24",
                "eth0 fd00::/64",
            ]
        );
        // No route files at all (e.g. a container without /proc/net): no routes.
        assert!(read_routes(&d.path().join("none")).unwrap().is_empty());
    }

    #[test]
    fn host_routes_overlap_except_docker_bridges() {
        let mut routes = parse_ipv4_routes(ROUTE);
        routes.extend(parse_ipv6_routes(ROUTE6));
        let existing = [ex("0123456789abcdef", "mine", "10.251.0.0/24", "2024-01-01T00:00:00Z")];
        // 10.x collides with wg0's 10.0.0.0/8; the br- route is Docker's own (and "mine"
        // is the same name, so no Docker-network overlap either).
        let c = cfg(&[("mine", Some("10.251.0.0/24"), None)]);
        let p = plan(&c, &existing, &routes);
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert!(p.problems[0].contains("host route 10.0.0.0/8 on wg0"));
        let c = cfg(&[("v6", Some("fd00::/80"), None), ("free", Some("172.31.0.0/24"), None)]);
        let p = plan(&c, &existing, &routes);
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert!(p.problems[0].contains("fd00::/64 on eth0"));
    }

    #[test]
    fn duplicates_settle_oldest_then_lowest_id() {
        let c = cfg(&[("a", None, None)]);
        let e = [
            ex("ff", "a", "172.30.0.0/16", "2024-01-01T10:00:00.12345Z"),
            ex("ee", "a", "172.30.0.0/16", "2024-01-01T10:00:00.1234Z"),
            ex("00", "a", "172.30.0.0/16", "2024-01-01T11:00:00.1234+02:00"),
            ex("dd", "a", "172.30.0.0/16", "2024-01-01T10:00:00.1234Z"),
        ];
        let p = plan(&c, &e, &[]);
        assert_eq!(p.networks[0].existing.as_ref().unwrap().id, "00");
        let dups: Vec<_> = p.networks[0].duplicates.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(dups, vec!["dd", "ee", "ff"]);
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:00.5Z"),
            Some((951_868_800, 500_000_000))
        );
        assert_eq!(parse_rfc3339("2000-03-01T02:00:00+02:00"), Some((951_868_800, 0)));
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
