//! `hlsys status [NAME…]`: the tree layer → stack → containers, with each unit's state
//! and since when, the supervisor's STATUS text, and each container's state, health,
//! ports and networks.
//!
//! Read-only and fast: one `ListUnitsByNames` for every unit, then the timestamps and
//! `StatusText`s concurrently over the same connection, while Docker is asked (one
//! container list, one network list) at the same time. Works for any user: reading
//! systemd's state is allowed to everyone; when the Docker socket is not (a non-root
//! user outside the docker group), containers show as unavailable and the rest stands.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use futures_util::future::join_all;
use serde::Serialize;

use super::global::model_and_targets;
use super::global::Global;
use super::output::{color_enabled, paint, stack_error_cause, term};
use crate::docker::{compose_containers, container_name, label_of, PROJECT_LABEL, SERVICE_LABEL};
use crate::health::Health;
use crate::resolve::{rel_path, Target};
use crate::systemd::{self, UnitState};
use hlsys_core::exit::{EXIT_FAILURE, EXIT_OK};
use hlsys_core::model::{Model, Stack, StackError};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Stacks, layers, tree paths or units to show [default: everything]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Print the tree as JSON
    #[arg(long)]
    pub json: bool,
}

/// A unit's state, as `status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnitStatus {
    pub unit: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// Since when it is in this state: ActiveEnterTimestamp for an active unit, else the
    /// last state change (RFC 3339, UTC); null when it never was.
    pub since: Option<String>,
    /// The same in µs since the epoch.
    pub since_usec: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerStatus {
    pub name: String,
    /// The Compose service.
    pub service: String,
    /// created, running, exited, …
    pub state: String,
    /// Docker's status text ("Up 3 minutes (healthy)").
    pub status: String,
    /// healthy, unhealthy, starting; null without a healthcheck.
    pub health: Option<String>,
    /// Published ports, "0.0.0.0:8080->80/tcp".
    pub ports: Vec<String>,
    pub networks: Vec<String>,
}

/// A stack's preparation unit (pull missing images, create containers): its progress
/// while it runs, why when it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrepareStatus {
    pub unit: String,
    pub active_state: String,
    pub status_text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackStatus {
    pub id: String,
    pub path: String,
    pub enabled: bool,
    #[serde(flatten)]
    pub unit: UnitStatus,
    /// The service's StatusText: what the supervisor last reported.
    pub status_text: Option<String>,
    /// null when the unit is not loaded (units generated before there were any).
    pub prepare: Option<PrepareStatus>,
    /// The containers' health as the supervisor last reported it, read from
    /// `status_text` (see health.rs): shown without access to the Docker socket. null
    /// when the text is not a health line (starting, failed, stopped).
    pub health: Option<Health>,
    /// Docker networks the stack joins.
    pub networks: Vec<String>,
    /// The shared (configured) ones among them that do not exist (null when Docker is
    /// unavailable).
    pub missing_networks: Option<Vec<String>>,
    /// null when Docker is unavailable (see `containers_error`).
    pub containers: Option<Vec<ContainerStatus>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerStatus {
    pub name: String,
    #[serde(flatten)]
    pub unit: UnitStatus,
    pub stacks: Vec<StackStatus>,
}

/// What `status --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusDoc {
    /// homelab.target
    #[serde(flatten)]
    pub root: UnitStatus,
    /// Why containers are not shown ("permission denied"); null when they are.
    pub containers_error: Option<String>,
    pub layers: Vec<LayerStatus>,
    /// Other units named on the command line.
    pub units: Vec<UnitStatus>,
    /// Stacks left out of the model.
    pub errors: Vec<StackError>,
}

/// The part of the tree to show.
struct Selection<'m> {
    /// Layer name → stacks shown (in model order).
    layers: Vec<(String, Vec<&'m Stack>)>,
    units: Vec<String>,
}

fn select<'m>(model: &'m Model, targets: &[Target]) -> Selection<'m> {
    let all = targets.contains(&Target::Root);
    let mut layers: Vec<(String, Vec<&'m Stack>)> = Vec::new();
    let mut units = Vec::new();
    for l in &model.layers {
        let members: Vec<&Stack> = model.stacks.iter().filter(|s| s.layer == l.name).collect();
        let shown: Vec<&Stack> = if all || targets.contains(&Target::Layer(l.name.clone())) {
            members
        } else {
            members
                .into_iter()
                .filter(|s| targets.contains(&Target::Stack(s.id.clone())))
                .collect()
        };
        if all || targets.contains(&Target::Layer(l.name.clone())) || !shown.is_empty() {
            layers.push((l.name.clone(), shown));
        }
    }
    for t in targets {
        if let Target::Unit(u) = t {
            units.push(u.clone());
        }
    }
    Selection { layers, units }
}

pub fn run(global: &Global, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let (model, targets) = match model_and_targets(global, &args.names) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let rt = crate::docker::runtime()?;
    let t0 = std::time::Instant::now();
    let doc = rt.block_on(collect(&model, &targets))?;
    tracing::debug!("status collected in {:?}", t0.elapsed());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_text(&doc);
    }
    Ok(ExitCode::from(if healthy(&doc) { EXIT_OK } else { EXIT_FAILURE }))
}

/// False when an enabled stack's unit failed, one of its containers is unhealthy, or a
/// stack of the tree is in error (left out of the units).
pub fn healthy(doc: &StatusDoc) -> bool {
    doc.layers.iter().flat_map(|l| &l.stacks).all(|s| {
        !(s.enabled && s.unit.active_state == "failed")
            && s.containers
                .iter()
                .flatten()
                .all(|c| c.health.as_deref() != Some("unhealthy"))
    }) && doc.units.iter().all(|u| u.active_state != "failed")
        && doc.errors.is_empty()
}

/// Gathers the whole document: systemd and Docker at the same time.
pub async fn collect(model: &Model, targets: &[Target]) -> Result<StatusDoc> {
    let sel = select(model, targets);
    let prefix = &model.config.unit_prefix;
    let mut names = vec![model.root_target()];
    for (l, stacks) in &sel.layers {
        names.push(hlsys_core::model::layer_target(prefix, l));
        names.extend(stacks.iter().map(|s| s.unit.clone()));
        names.extend(
            stacks
                .iter()
                .filter(|s| hlsys_core::units::prepare::stack_has_unit(model, s))
                .map(|s| hlsys_core::units::prepare::unit_name(prefix, &s.id)),
        );
    }
    names.extend(sel.units.iter().cloned());
    let projects: Vec<String> = sel
        .layers
        .iter()
        .flat_map(|(_, s)| s.iter().map(|s| s.project.clone()))
        .collect();
    let (units, docker) = tokio::join!(unit_states(&names), docker_state(!projects.is_empty()));
    let units = units?;
    let unit = |name: &str| -> (UnitStatus, Option<String>) {
        match units.get(name) {
            Some((u, text)) => (u.clone(), text.clone()),
            None => (
                UnitStatus {
                    unit: name.to_string(),
                    load_state: "not-found".into(),
                    ..Default::default()
                },
                None,
            ),
        }
    };
    let (containers, networks, containers_error) = match docker {
        Ok((c, n)) => (Some(c), Some(n), None),
        Err(e) => (None, None, Some(format!("{e:#}"))),
    };
    let mut layers = Vec::new();
    for (l, stacks) in &sel.layers {
        let mut out = Vec::new();
        for s in stacks {
            let (u, text) = unit(&s.unit);
            out.push(StackStatus {
                id: s.id.clone(),
                path: rel_path(model, s),
                enabled: s.enabled,
                unit: u,
                health: text.as_deref().and_then(Health::parse),
                status_text: text.filter(|t| !t.is_empty()),
                prepare: prepare_status(&units, prefix, &s.id),
                networks: s.networks.clone(),
                // Only the shared networks hlsys ensures: Compose creates the others on up.
                missing_networks: networks.as_ref().map(|have: &Vec<String>| {
                    s.networks
                        .iter()
                        .filter(|n| model.config.networks.contains_key(*n) && !have.contains(n))
                        .cloned()
                        .collect()
                }),
                containers: containers
                    .as_ref()
                    .map(|c: &HashMap<String, Vec<ContainerStatus>>| c.get(&s.project).cloned().unwrap_or_default()),
            });
        }
        layers.push(LayerStatus {
            name: l.clone(),
            unit: unit(&hlsys_core::model::layer_target(prefix, l)).0,
            stacks: out,
        });
    }
    Ok(StatusDoc {
        root: unit(&model.root_target()).0,
        containers_error,
        layers,
        units: sel.units.iter().map(|u| unit(u).0).collect(),
        // Stacks in error belong to the whole tree, not to a NAME.
        errors: if targets.contains(&Target::Root) {
            model.errors.clone()
        } else {
            Vec::new()
        },
    })
}

/// The stack's preparation unit, if loaded.
fn prepare_status(
    units: &HashMap<String, (UnitStatus, Option<String>)>,
    prefix: &str,
    stack: &str,
) -> Option<PrepareStatus> {
    let (u, text) = units.get(&hlsys_core::units::prepare::unit_name(prefix, stack))?;
    Some(PrepareStatus {
        unit: u.unit.clone(),
        active_state: u.active_state.clone(),
        status_text: text.clone().filter(|t| !t.is_empty()),
    })
}

/// Every unit's state (one call), then its timestamp and, for a service that is not
/// inactive, its StatusText (all at once).
async fn unit_states(names: &[String]) -> Result<HashMap<String, (UnitStatus, Option<String>)>> {
    let conn = systemd::system_bus().await?;
    let states = systemd::list_units_by_names(&conn, names).await?;
    let loaded: Vec<&UnitState> = states.iter().filter(|s| s.load_state != "not-found").collect();
    let conn = &conn;
    let since = join_all(
        loaded
            .iter()
            .map(|s| async move { systemd::state_since(conn, &s.path, s.is_active()).await.ok().flatten() }),
    );
    let texts = join_all(loaded.iter().map(|s| async move {
        if !s.name.ends_with(".service") || s.active_state == "inactive" {
            return None;
        }
        systemd::status_text(conn, &s.path).await.ok()
    }));
    let (since, texts) = tokio::join!(since, texts);
    let mut out = HashMap::new();
    for s in &states {
        out.insert(
            s.name.clone(),
            (
                UnitStatus {
                    unit: s.name.clone(),
                    load_state: s.load_state.clone(),
                    active_state: s.active_state.clone(),
                    sub_state: s.sub_state.clone(),
                    since: None,
                    since_usec: None,
                },
                None,
            ),
        );
    }
    for ((s, t), text) in loaded.iter().zip(since).zip(texts) {
        if let Some(e) = out.get_mut(&s.name) {
            e.0.since_usec = t;
            e.0.since = t.map(rfc3339);
            e.1 = text;
        }
    }
    Ok(out)
}

/// Containers by Compose project, and the names of the Docker networks.
type DockerState = (HashMap<String, Vec<ContainerStatus>>, Vec<String>);

/// [`DockerState`], or why Docker cannot be asked ("permission denied"), shown as is.
async fn docker_state(wanted: bool) -> Result<DockerState> {
    if !wanted {
        return Ok((HashMap::new(), Vec::new()));
    }
    // A socket the user may not open: say so plainly (bollard's error hides the errno).
    let host = crate::docker::host();
    if let Some(path) = host
        .strip_prefix("unix://")
        .or_else(|| host.starts_with('/').then_some(host.as_str()))
    {
        if let Err(e) = std::os::unix::net::UnixStream::connect(path) {
            anyhow::bail!(match e.kind() {
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                std::io::ErrorKind::NotFound => format!("no Docker socket at {path}"),
                _ => format!("cannot reach Docker at {path}: {e}"),
            });
        }
    }
    let work = async {
        let docker = crate::docker::connect().await?;
        let (cs, ns) = tokio::join!(compose_containers(&docker, None), docker.list_networks(None));
        let mut by_project: HashMap<String, Vec<ContainerStatus>> = HashMap::new();
        for c in &cs? {
            if let Some(project) = label_of(c, PROJECT_LABEL) {
                by_project
                    .entry(project.to_string())
                    .or_default()
                    .push(container_status(c));
            }
        }
        for v in by_project.values_mut() {
            v.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let mut networks: Vec<String> = ns
            .context("listing networks")?
            .into_iter()
            .filter_map(|n| n.name)
            .collect();
        networks.sort();
        Ok((by_project, networks))
    };
    match tokio::time::timeout(Duration::from_secs(5), work).await {
        Ok(r) => r,
        Err(_) => anyhow::bail!("Docker did not answer within 5s"),
    }
}

/// Health from the summary's health field (newer engines) or the status text.
pub fn health_of(health: Option<&str>, status: &str) -> Option<String> {
    match health {
        Some(h) if !h.is_empty() && h != "none" => return Some(h.to_string()),
        _ => {}
    }
    if status.contains("(unhealthy)") {
        Some("unhealthy".into())
    } else if status.contains("(healthy)") {
        Some("healthy".into())
    } else if status.contains("(health: starting)") {
        Some("starting".into())
    } else {
        None
    }
}

fn container_status(c: &bollard::models::ContainerSummary) -> ContainerStatus {
    let status = c.status.clone().unwrap_or_default();
    let health = c.health.as_ref().and_then(|h| h.status).map(|s| s.to_string());
    let mut ports: Vec<String> = c
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let public = p.public_port?;
            let proto = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
            let ip = p.ip.clone().unwrap_or_default();
            let host = if ip.contains(':') { format!("[{ip}]") } else { ip };
            Some(format!("{host}:{public}->{}/{proto}", p.private_port))
        })
        .collect();
    ports.sort();
    ports.dedup();
    let mut networks: Vec<String> = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    ContainerStatus {
        name: container_name(c),
        service: label_of(c, SERVICE_LABEL).unwrap_or_default().to_string(),
        state: c.state.map(|s| s.to_string()).unwrap_or_default(),
        health: health_of(health.as_deref(), &status),
        status,
        ports,
        networks,
    }
}

/// µs since the epoch → "2024-05-01T10:00:00Z".
pub fn rfc3339(usec: u64) -> String {
    let secs = (usec / 1_000_000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// "3min ago", "2h 5min ago", "4s ago".
pub fn ago(usec: u64, now: SystemTime) -> String {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64;
    let s = now.saturating_sub(usec) / 1_000_000;
    let text = match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}min {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}min", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    };
    format!("{text} ago")
}

fn state_text(u: &UnitStatus, color: bool) -> String {
    let st = match (u.load_state.as_str(), u.active_state.as_str()) {
        ("not-found", _) => return paint(color, 33, "not loaded (run hlsys reload?)"),
        (_, a) if u.sub_state.is_empty() || u.sub_state == a => a.to_string(),
        (_, a) => format!("{a} ({})", u.sub_state),
    };
    let code = match u.active_state.as_str() {
        "active" => 32,
        "failed" => 31,
        "activating" | "deactivating" | "reloading" => 33,
        _ => 0,
    };
    let mut s = if code == 0 { st } else { paint(color, code, &st) };
    if let (Some(since), Some(us)) = (&u.since, u.since_usec) {
        s.push_str(&format!(
            " since {} ({})",
            since.replace('T', " ").replace('Z', " UTC"),
            ago(us, SystemTime::now())
        ));
    }
    s
}

/// Shown while it pulls or creates, and when it failed (the stack then did not start);
/// once done, the stack's own status says it all.
fn print_prepare(p: &PrepareStatus, color: bool) {
    let state = match p.active_state.as_str() {
        "failed" => paint(color, 31, "failed"),
        "activating" => paint(color, 33, "activating"),
        _ => return,
    };
    let text = term(p.status_text.as_deref().unwrap_or(""));
    println!("      prepare ({}): {state} {text}", p.unit);
}

fn print_text(doc: &StatusDoc) {
    let color = color_enabled(&std::io::stdout());
    println!("{}: {}", doc.root.unit, state_text(&doc.root, color));
    for l in &doc.layers {
        println!("  layer {} ({}): {}", l.name, l.unit.unit, state_text(&l.unit, color));
        if l.stacks.is_empty() {
            println!("    (no stacks)");
        }
        for s in &l.stacks {
            let disabled = if s.enabled { "" } else { " [disabled]" };
            println!(
                "    stack {}{} ({}): {}",
                s.id,
                disabled,
                s.unit.unit,
                state_text(&s.unit, color)
            );
            if let Some(t) = &s.status_text {
                println!("      status: {}", term(t));
            }
            if let Some(p) = &s.prepare {
                print_prepare(p, color);
            }
            if !s.networks.is_empty() {
                let mut n = s.networks.join(", ");
                if let Some(missing) = s.missing_networks.as_ref().filter(|m| !m.is_empty()) {
                    n.push_str(&paint(color, 31, &format!(" (missing: {})", missing.join(", "))));
                }
                println!("      networks: {n}");
            }
            match &s.containers {
                None => {}
                Some(cs) if cs.is_empty() => println!("      containers: none"),
                Some(cs) => {
                    for c in cs {
                        let mut line = format!("      {} [{}]: {}", term(&c.name), term(&c.service), c.state);
                        if let Some(h) = &c.health {
                            let code = match h.as_str() {
                                "healthy" => 32,
                                "unhealthy" => 31,
                                _ => 33,
                            };
                            line.push_str(&format!(", {}", paint(color, code, h)));
                        }
                        if !c.ports.is_empty() {
                            line.push_str(&format!(", ports {}", c.ports.join(" ")));
                        }
                        println!("{line}");
                    }
                }
            }
        }
    }
    for u in &doc.units {
        println!("  {}: {}", u.unit, state_text(u, color));
    }
    if let Some(e) = &doc.containers_error {
        println!("containers: unavailable ({})", term(e));
    }
    for e in &doc.errors {
        println!(
            "{}",
            paint(
                color,
                31,
                &format!("stack {} in error: {}", term(&e.stack), stack_error_cause(e))
            )
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_714_557_600_123_456), "2024-05-01T10:00:00Z");
        assert_eq!(rfc3339(951_782_400_000_000), "2000-02-29T00:00:00Z");
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(ago(9_996 * 1_000_000, now), "4s ago");
        assert_eq!(ago((10_000 - 185) * 1_000_000, now), "3min 5s ago");
        assert_eq!(ago(0, now), "2h 46min ago");
    }

    #[test]
    fn health_comes_from_the_field_or_the_status_text() {
        assert_eq!(health_of(Some("healthy"), "Up 1 minute"), Some("healthy".into()));
        assert_eq!(health_of(None, "Up 1 minute (unhealthy)"), Some("unhealthy".into()));
        assert_eq!(
            health_of(Some("none"), "Up 2 seconds (health: starting)"),
            Some("starting".into())
        );
        assert_eq!(health_of(Some(""), "Up 1 minute"), None);
    }

    fn unit(name: &str, state: &str) -> UnitStatus {
        UnitStatus {
            unit: name.into(),
            load_state: "loaded".into(),
            active_state: state.into(),
            sub_state: if state == "active" {
                "running".into()
            } else {
                "dead".into()
            },
            since: Some("2024-05-01T10:00:00Z".into()),
            since_usec: Some(1_714_557_600_000_000),
        }
    }

    fn doc() -> StatusDoc {
        StatusDoc {
            root: unit("homelab.target", "active"),
            containers_error: None,
            layers: vec![LayerStatus {
                name: "genai".into(),
                unit: unit("homelab-genai.target", "active"),
                stacks: vec![StackStatus {
                    id: "genai-webui".into(),
                    path: "genai/webui".into(),
                    enabled: true,
                    unit: unit("homelab-genai-webui.service", "active"),
                    status_text: Some("ready: 1/1 healthy".into()),
                    health: Health::parse("ready: 1/1 healthy"),
                    prepare: Some(PrepareStatus {
                        unit: "homelab-genai-webui-prepare.service".into(),
                        active_state: "active".into(),
                        status_text: Some("prepared: no image missing, 1 containers created".into()),
                    }),
                    networks: vec!["proxy".into()],
                    missing_networks: Some(vec![]),
                    containers: Some(vec![ContainerStatus {
                        name: "genai-webui-webui-1".into(),
                        service: "webui".into(),
                        state: "running".into(),
                        status: "Up 3 minutes (healthy)".into(),
                        health: Some("healthy".into()),
                        ports: vec!["0.0.0.0:8080->8080/tcp".into()],
                        networks: vec!["proxy".into()],
                    }]),
                }],
            }],
            units: vec![],
            errors: vec![],
        }
    }

    #[test]
    fn json_shape_of_status() {
        let v = serde_json::to_value(doc()).unwrap();
        let expected: serde_json::Value = serde_json::from_str(
            r#"{
                "unit": "homelab.target",
                "load_state": "loaded",
                "active_state": "active",
                "sub_state": "running",
                "since": "2024-05-01T10:00:00Z",
                "since_usec": 1714557600000000,
                "containers_error": null,
                "layers": [{
                    "name": "genai",
                    "unit": "homelab-genai.target",
                    "load_state": "loaded",
                    "active_state": "active",
                    "sub_state": "running",
                    "since": "2024-05-01T10:00:00Z",
                    "since_usec": 1714557600000000,
                    "stacks": [{
                        "id": "genai-webui",
                        "path": "genai/webui",
                        "enabled": true,
                        "unit": "homelab-genai-webui.service",
                        "load_state": "loaded",
                        "active_state": "active",
                        "sub_state": "running",
                        "since": "2024-05-01T10:00:00Z",
                        "since_usec": 1714557600000000,
                        "status_text": "ready: 1/1 healthy",
                        "health": {"phase": "ready", "healthy": 1, "total": 1, "not_healthy": [], "restarts": []},
                        "prepare": {
                            "unit": "homelab-genai-webui-prepare.service",
                            "active_state": "active",
                            "status_text": "prepared: no image missing, 1 containers created"
                        },
                        "networks": ["proxy"],
                        "missing_networks": [],
                        "containers": [{
                            "name": "genai-webui-webui-1",
                            "service": "webui",
                            "state": "running",
                            "status": "Up 3 minutes (healthy)",
                            "health": "healthy",
                            "ports": ["0.0.0.0:8080->8080/tcp"],
                            "networks": ["proxy"]
                        }]
                    }]
                }],
                "units": [],
                "errors": []
            }"#,
        )
        .unwrap();
        assert_eq!(v, expected);
    }

    #[test]
    fn failed_units_and_unhealthy_containers_make_status_fail() {
        let mut d = doc();
        assert!(healthy(&d));
        d.layers[0].stacks[0].containers.as_mut().unwrap()[0].health = Some("unhealthy".into());
        assert!(!healthy(&d));
        let mut d = doc();
        d.layers[0].stacks[0].unit.active_state = "failed".into();
        assert!(!healthy(&d));
        d.layers[0].stacks[0].enabled = false;
        assert!(healthy(&d), "a disabled stack that failed is not the tree's failure");
        let mut d = doc();
        d.layers[0].stacks[0].unit.active_state = "inactive".into();
        d.layers[0].stacks[0].prepare.as_mut().unwrap().active_state = "failed".into();
        // Like a stack held back by any failed dependency: shown (the preparation's line
        // says why), not a failure of the tree; the start that hit it failed. A failed
        // unit stays failed after the stack is stopped, so counting it would fail status
        // until someone runs reset-failed.
        assert!(healthy(&d), "a stack held back by its failed preparation");
        let mut d = doc();
        d.layers[0].stacks[0].unit.active_state = "inactive".into();
        d.layers[0].stacks[0].containers = None;
        d.containers_error = Some("permission denied".into());
        assert!(healthy(&d), "stopped is not failed");
        d.errors.push(StackError {
            stack: "x".into(),
            file: "/srv/compose/x/compose.yaml".into(),
            message: "bad".into(),
        });
        assert!(!healthy(&d), "a stack in error is a failure");
    }
}
