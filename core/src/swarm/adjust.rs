//! Compose → Swarm: the fully resolved project that `docker compose config --format json`
//! prints for a stack, adjusted into the document `docker stack deploy` is given.
//!
//! Pure: a JSON value in, a JSON value and notes out. Three kinds of service keys:
//! - translated: `restart` → `deploy.restart_policy`, `scale` → `deploy.replicas`, every
//!   way of asking for an NVIDIA GPU (`gpus`, `runtime: nvidia`, a device reservation, a
//!   CDI device) → a placement constraint on a node label plus, where a node advertises
//!   one, a generic-resource reservation;
//! - dropped with a note: keys Swarm ignores and whose loss changes no isolation
//!   (`container_name`, `depends_on`, `links`, …);
//! - refused: keys Swarm cannot honour and whose loss would change what runs or weaken
//!   isolation (`build`, `privileged`, `network_mode`, a port bound to one host IP, …):
//!   the stack is an error and is not deployed. A key hlsys does not know is refused too,
//!   so nothing new in Compose is dropped silently.
//!
//! Bind mounts: a source inside the stack tree exists only on the node holding the tree,
//! so such a service is pinned to that node (or refused, with `tree_binds = "refuse"`);
//! other absolute sources are kept and noted (they must exist on every eligible node).

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::config::swarm::TreeBinds;

/// Keys passed to Swarm as Compose resolved them.
const KEPT: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "healthcheck",
    "init",
    "labels",
    "networks",
    "ports",
    "volumes",
    "secrets",
    "configs",
    "user",
    "working_dir",
    "hostname",
    "stop_grace_period",
    "stop_signal",
    "tty",
    "stdin_open",
    "read_only",
    "extra_hosts",
    "dns",
    "dns_search",
    "dns_opt",
    "cap_add",
    "cap_drop",
    "sysctls",
    "ulimits",
    "logging",
    "deploy",
    "isolation",
    "tmpfs",
];

/// Keys Swarm ignores; dropping them changes no isolation. Key → why.
const DROPPED: &[(&str, &str)] = &[
    ("container_name", "Swarm names the tasks itself"),
    (
        "depends_on",
        "Swarm starts a stack's services together; hlsys orders only across layers",
    ),
    ("links", "not supported by Swarm; services reach each other by name"),
    ("external_links", "not supported by Swarm"),
    ("pull_policy", "Swarm pulls as its nodes need"),
    ("expose", "informational only"),
    ("env_file", "its variables are already in `environment`"),
    ("domainname", "not supported by Swarm"),
    ("mac_address", "not supported by Swarm"),
    ("cgroup_parent", "not supported by Swarm"),
    (
        "shm_size",
        "not supported by Swarm: /dev/shm keeps Docker's default size",
    ),
    ("userns_mode", "not supported by Swarm"),
    ("profiles", "Compose already left out inactive services"),
    ("platform", "Swarm schedules by node platform itself"),
    ("develop", "Compose watch only"),
    ("attach", "Compose output only"),
    ("annotations", "not supported by Swarm"),
];

/// Keys Swarm cannot honour. Key → why.
const REFUSED: &[(&str, &str)] = &[
    (
        "build",
        "Swarm does not build images: build and push it, then refer to it by `image`",
    ),
    ("network_mode", "Swarm services join overlay networks only"),
    ("pid", "not supported by Swarm"),
    ("ipc", "not supported by Swarm"),
    ("uts", "not supported by Swarm"),
    ("privileged", "Swarm cannot run privileged tasks"),
    (
        "security_opt",
        "not supported by Swarm (dropping it would weaken isolation)",
    ),
    ("cgroup", "not supported by Swarm"),
    ("cgroupns_mode", "not supported by Swarm"),
    ("volumes_from", "not supported by Swarm"),
    ("device_cgroup_rules", "not supported by Swarm"),
    ("oom_kill_disable", "not supported by Swarm"),
    ("oom_score_adj", "not supported by Swarm"),
    ("cpus", "use deploy.resources.limits.cpus"),
    ("cpu_shares", "use deploy.resources"),
    ("cpu_quota", "use deploy.resources.limits.cpus"),
    ("cpu_period", "use deploy.resources.limits.cpus"),
    ("cpuset", "not supported by Swarm"),
    ("mem_limit", "use deploy.resources.limits.memory"),
    ("mem_reservation", "use deploy.resources.reservations.memory"),
    ("memswap_limit", "not supported by Swarm"),
    ("pids_limit", "use deploy.resources.limits.pids"),
    ("storage_opt", "not supported by Swarm"),
    ("group_add", "not supported by Swarm"),
    ("blkio_config", "not supported by Swarm"),
];

/// What the adjustment needs to know besides the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement<'a> {
    /// Node label a GPU service is constrained to: `node.labels.<label> == true`.
    pub gpu_label: &'a str,
    /// Generic resource kind a GPU node advertises (e.g. `NVIDIA-GPU`), when one does.
    pub gpu_resource: Option<&'a str>,
    /// The stack tree: bind sources under it exist on this node only.
    pub stacks_dir: &'a Path,
    pub tree_binds: TreeBinds,
    /// Swarm node id of the node holding the tree (the manager deploying), for pinning.
    pub tree_node: &'a str,
}

/// A document ready for `docker stack deploy`, with what was changed on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Adjusted {
    pub document: Value,
    /// "service web: container_name dropped (Swarm names the tasks itself)", …
    pub notes: Vec<String>,
    /// Services that need a GPU node.
    pub gpu_services: Vec<String>,
}

/// Why a stack cannot go to Swarm: every problem found, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot deploy to Swarm: {}", .problems.join("; "))]
pub struct Unsupported {
    pub problems: Vec<String>,
}

/// Adjusts one stack's resolved Compose project for `docker stack deploy`.
pub fn adjust(project: &Value, at: &Placement) -> Result<Adjusted, Unsupported> {
    let mut out = Adjusted {
        document: json!({}),
        notes: Vec::new(),
        gpu_services: Vec::new(),
    };
    let mut problems = Vec::new();
    let Some(top) = project.as_object() else {
        return Err(Unsupported {
            problems: vec!["the Compose project is not a mapping".into()],
        });
    };
    let mut doc = Map::new();
    let mut services = Map::new();
    for (name, def) in top.get("services").and_then(Value::as_object).into_iter().flatten() {
        let mut ctx = ServiceCtx {
            name,
            notes: &mut out.notes,
            problems: &mut problems,
        };
        let (svc, gpu) = adjust_service(def, at, &mut ctx);
        if gpu {
            out.gpu_services.push(name.clone());
        }
        services.insert(name.clone(), Value::Object(svc));
    }
    doc.insert("services".into(), Value::Object(services));
    for key in ["volumes", "secrets", "configs"] {
        if let Some(v) = top.get(key).filter(|v| !v.is_null()) {
            doc.insert(key.into(), v.clone());
        }
    }
    if let Some(nets) = top.get("networks").and_then(Value::as_object) {
        doc.insert("networks".into(), Value::Object(adjust_networks(nets, &mut problems)));
    }
    if !problems.is_empty() {
        return Err(Unsupported { problems });
    }
    out.document = Value::Object(doc);
    Ok(out)
}

/// Where a service's notes and problems go, prefixed with its name.
struct ServiceCtx<'a> {
    name: &'a str,
    notes: &'a mut Vec<String>,
    problems: &'a mut Vec<String>,
}

impl ServiceCtx<'_> {
    fn note(&mut self, text: String) {
        self.notes.push(format!("service {}: {text}", self.name));
    }
    fn problem(&mut self, text: String) {
        self.problems.push(format!("service {}: {text}", self.name));
    }
}

/// One service: keys sorted into kept, translated, dropped and refused. Returns the new
/// definition and whether it needs a GPU.
fn adjust_service(def: &Value, at: &Placement, ctx: &mut ServiceCtx) -> (Map<String, Value>, bool) {
    let mut svc = Map::new();
    let Some(def) = def.as_object() else {
        ctx.problem("not a mapping".into());
        return (svc, false);
    };
    for (key, value) in def {
        if value.is_null() {
            continue; // Compose prints unset keys as null; Swarm's schema refuses them
        }
        if KEPT.contains(&key.as_str()) {
            svc.insert(key.clone(), value.clone());
        } else if let Some((_, why)) = DROPPED.iter().find(|(k, _)| k == key) {
            ctx.note(format!("{key} dropped ({why})"));
        } else if let Some((_, why)) = REFUSED.iter().find(|(k, _)| k == key) {
            ctx.problem(format!("{key} is not supported: {why}"));
        } else if !matches!(key.as_str(), "restart" | "scale" | "gpus" | "runtime" | "devices") {
            ctx.problem(format!("{key} is not supported by hlsys swarm"));
        }
    }
    translate_restart(def, &mut svc, ctx);
    translate_scale(def, &mut svc, ctx);
    let gpu = translate_gpu(def, &mut svc, at, ctx);
    if let Some(ports) = svc.get_mut("ports") {
        adjust_ports(ports, ctx);
    }
    if let Some(volumes) = svc.get_mut("volumes") {
        if adjust_binds(volumes, at, ctx) {
            add_constraint(&mut svc, format!("node.id == {}", at.tree_node));
        }
    }
    (svc, gpu)
}

/// The `deploy` mapping of a service, created when missing.
fn deploy_of(svc: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let d = svc.entry("deploy").or_insert_with(|| json!({}));
    if !d.is_object() {
        *d = json!({});
    }
    d.as_object_mut().expect("just made an object")
}

/// `restart` → `deploy.restart_policy.condition` (and `max_attempts` for `on-failure:N`),
/// unless the service sets its own restart policy.
fn translate_restart(def: &Map<String, Value>, svc: &mut Map<String, Value>, ctx: &mut ServiceCtx) {
    let Some(restart) = def.get("restart").and_then(Value::as_str) else {
        return;
    };
    let deploy = deploy_of(svc);
    if deploy.contains_key("restart_policy") {
        ctx.note("restart dropped (deploy.restart_policy is set)".into());
        return;
    }
    let (cond, attempts) = match restart.split_once(':') {
        Some(("on-failure", n)) => ("on-failure", n.trim().parse::<u64>().ok()),
        _ => match restart {
            "no" => ("none", None),
            "always" | "unless-stopped" => ("any", None),
            "on-failure" => ("on-failure", None),
            other => {
                ctx.problem(format!("restart: {other:?} is not a restart policy"));
                return;
            }
        },
    };
    let mut policy = json!({ "condition": cond });
    if let Some(n) = attempts {
        policy["max_attempts"] = json!(n);
    }
    deploy.insert("restart_policy".into(), policy);
}

/// `scale` → `deploy.replicas` unless that is set.
fn translate_scale(def: &Map<String, Value>, svc: &mut Map<String, Value>, ctx: &mut ServiceCtx) {
    let Some(scale) = def.get("scale").filter(|v| !v.is_null()) else {
        return;
    };
    let deploy = deploy_of(svc);
    if deploy.contains_key("replicas") {
        ctx.note("scale dropped (deploy.replicas is set)".into());
    } else {
        deploy.insert("replicas".into(), scale.clone());
    }
}

/// Every way a service asks for an NVIDIA GPU becomes one placement constraint on the GPU
/// node label and, where a node advertises it, a generic-resource reservation. Other
/// runtimes and devices are refused: Swarm has no way to pass them.
fn translate_gpu(def: &Map<String, Value>, svc: &mut Map<String, Value>, at: &Placement, ctx: &mut ServiceCtx) -> bool {
    let mut count: Option<u64> = None; // None: all GPUs, or unknown
    let mut gpu = false;
    if let Some(gpus) = def.get("gpus").filter(|v| !v.is_null()) {
        gpu = true;
        count = gpu_count(gpus);
    }
    match def.get("runtime").and_then(Value::as_str) {
        Some("nvidia") => gpu = true,
        Some(other) => ctx.problem(format!("runtime: {other:?} is not supported by Swarm")),
        None => {}
    }
    if let Some(devices) = def.get("devices").and_then(Value::as_array) {
        for d in devices {
            let src = d
                .as_str()
                .or_else(|| d.get("source").and_then(Value::as_str))
                .unwrap_or("");
            if src.starts_with("nvidia.com/gpu") {
                gpu = true;
            } else {
                ctx.problem(format!("device {src:?} is not supported by Swarm"));
            }
        }
    }
    if let Some(reserved) = take_device_reservations(svc, ctx) {
        gpu = true;
        count = count.or(reserved);
    }
    if !gpu {
        return false;
    }
    add_constraint(svc, format!("node.labels.{} == true", at.gpu_label));
    match at.gpu_resource {
        Some(kind) => {
            let n = count.unwrap_or(1);
            if count.is_none() {
                ctx.note(format!(
                    "all GPUs asked for; Swarm reserves a count, so 1 {kind} is reserved"
                ));
            }
            let res = deploy_of(svc)
                .entry("resources")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|r| r.entry("reservations").or_insert_with(|| json!({})));
            if let Some(Value::Object(r)) = res {
                r.insert(
                    "generic_resources".into(),
                    json!([{ "discrete_resource_spec": { "kind": kind, "value": n } }]),
                );
            }
        }
        None => ctx.note(format!(
            "needs a GPU: placed on nodes labelled {}=true (no node advertises a GPU generic resource)",
            at.gpu_label
        )),
    }
    true
}

/// Sum of the `count`s of Compose's `gpus` entries (`device_ids` count one each);
/// `None` for "all" (count -1).
fn gpu_count(gpus: &Value) -> Option<u64> {
    let mut total = 0u64;
    for g in gpus.as_array().into_iter().flatten() {
        if let Some(ids) = g.get("device_ids").and_then(Value::as_array) {
            total += ids.len() as u64;
        } else {
            match g.get("count").and_then(Value::as_i64) {
                Some(n) if n > 0 => total += n as u64,
                _ => return None,
            }
        }
    }
    (total > 0).then_some(total)
}

/// Removes `deploy.resources.reservations.devices`: Swarm has no device requests. GPU
/// entries are translated by the caller (`Some(count)`); any other device is refused.
fn take_device_reservations(svc: &mut Map<String, Value>, ctx: &mut ServiceCtx) -> Option<Option<u64>> {
    let reservations = svc
        .get_mut("deploy")
        .and_then(|d| d.get_mut("resources"))
        .and_then(|r| r.get_mut("reservations"))
        .and_then(Value::as_object_mut)?;
    let devices = reservations.remove("devices")?;
    prune_empty(svc);
    let mut found = None;
    for d in devices.as_array().into_iter().flatten() {
        let nvidia = d.get("driver").and_then(Value::as_str) == Some("nvidia")
            || d.get("capabilities")
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|c| c == "gpu"));
        if !nvidia {
            ctx.problem("deploy.resources.reservations.devices: only NVIDIA GPUs can be placed".into());
            continue;
        }
        let n = match d.get("device_ids").and_then(Value::as_array) {
            Some(ids) => Some(ids.len() as u64),
            None => d
                .get("count")
                .and_then(Value::as_i64)
                .filter(|n| *n > 0)
                .map(|n| n as u64),
        };
        found = Some(found.flatten().or(n));
    }
    found
}

/// Drops the `reservations` and `resources` mappings left empty once devices are gone.
fn prune_empty(svc: &mut Map<String, Value>) {
    let Some(resources) = svc
        .get_mut("deploy")
        .and_then(|d| d.get_mut("resources"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if resources
        .get("reservations")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        resources.remove("reservations");
    }
    if resources.is_empty() {
        svc.get_mut("deploy")
            .and_then(Value::as_object_mut)
            .map(|d| d.remove("resources"));
    }
}

/// Appends to `deploy.placement.constraints`.
fn add_constraint(svc: &mut Map<String, Value>, constraint: String) {
    let placement = deploy_of(svc).entry("placement").or_insert_with(|| json!({}));
    if let Some(p) = placement.as_object_mut() {
        let list = p.entry("constraints").or_insert_with(|| json!([]));
        if let Some(l) = list.as_array_mut() {
            if !l.iter().any(|c| c.as_str() == Some(constraint.as_str())) {
                l.push(Value::String(constraint));
            }
        }
    }
}

/// Ports: `published` as a number (Compose prints a string), `host_ip` refused: Swarm
/// publishes on every address, and a port meant for 127.0.0.1 must not quietly become
/// public. `name` and `app_protocol` are dropped (Swarm has no such fields).
fn adjust_ports(ports: &mut Value, ctx: &mut ServiceCtx) {
    for p in ports.as_array_mut().into_iter().flatten() {
        let Some(p) = p.as_object_mut() else { continue };
        if let Some(ip) = p.get("host_ip").and_then(Value::as_str) {
            if !ip.is_empty() && ip != "0.0.0.0" && ip != "::" {
                ctx.problem(format!(
                    "port published on {ip}: Swarm publishes on every address of every node"
                ));
            }
        }
        p.remove("host_ip");
        p.remove("name");
        p.remove("app_protocol");
        if let Some(n) = p
            .get("published")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<u64>().ok())
        {
            p.insert("published".into(), json!(n));
        }
    }
}

/// Bind mounts: `create_host_path` removed (Swarm never creates a source); sources in
/// the tree pinned or refused by policy; others noted. Returns whether to pin.
fn adjust_binds(volumes: &mut Value, at: &Placement, ctx: &mut ServiceCtx) -> bool {
    let mut pin = false;
    for v in volumes.as_array_mut().into_iter().flatten() {
        if v.get("type").and_then(Value::as_str) != Some("bind") {
            continue;
        }
        if let Some(b) = v.get_mut("bind").and_then(Value::as_object_mut) {
            b.remove("create_host_path");
            b.remove("selinux");
            if b.is_empty() {
                v.as_object_mut().map(|o| o.remove("bind"));
            }
        }
        let src = v.get("source").and_then(Value::as_str).unwrap_or("").to_string();
        if Path::new(&src).starts_with(at.stacks_dir) {
            match at.tree_binds {
                TreeBinds::Pin => pin = true,
                TreeBinds::Refuse => ctx.problem(format!(
                    "bind mount of {src} in the stack tree (tree_binds = \"refuse\")"
                )),
            }
        } else {
            ctx.note(format!(
                "bind mount of {src}: it must exist on every node that may run the service"
            ));
        }
    }
    if pin {
        ctx.note("bind-mounts files of the stack tree: pinned to the node that deploys (the tree's node)".into());
    }
    pin
}

/// Networks: external ones stay as they are (hlsys creates them as overlays); a
/// stack's own network becomes an overlay (Swarm's default), and any other driver is
/// refused. Compose's empty `ipam: {}` is left out.
fn adjust_networks(nets: &Map<String, Value>, problems: &mut Vec<String>) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, def) in nets {
        let mut def = def.as_object().cloned().unwrap_or_default();
        if def.get("ipam").and_then(Value::as_object).is_some_and(Map::is_empty) {
            def.remove("ipam");
        }
        let external = def.get("external").and_then(Value::as_bool).unwrap_or(false);
        match def.get("driver").and_then(Value::as_str) {
            Some("overlay") | None => {}
            Some(d) if !external => problems.push(format!(
                "network {name}: driver {d:?}; Swarm services join overlay networks only"
            )),
            Some(_) => {}
        }
        out.insert(name.clone(), Value::Object(def));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Placement<'static> {
        Placement {
            gpu_label: "hlsys.gpu",
            gpu_resource: None,
            stacks_dir: Path::new("/srv/compose"),
            tree_binds: TreeBinds::Pin,
            tree_node: "node1",
        }
    }

    #[test]
    fn restart_policies() {
        for (restart, want) in [
            ("no", json!({"condition": "none"})),
            ("always", json!({"condition": "any"})),
            ("unless-stopped", json!({"condition": "any"})),
            ("on-failure", json!({"condition": "on-failure"})),
            ("on-failure:3", json!({"condition": "on-failure", "max_attempts": 3})),
        ] {
            let p = json!({"services": {"a": {"image": "x", "restart": restart}}});
            let a = adjust(&p, &at()).unwrap();
            assert_eq!(
                a.document["services"]["a"]["deploy"]["restart_policy"], want,
                "{restart}"
            );
        }
    }

    #[test]
    fn refused_keys_are_all_reported() {
        let p = json!({"services": {
            "a": {"image": "x", "build": {"context": "."}, "privileged": true},
            "b": {"image": "x", "network_mode": "host", "some_new_key": 1}}});
        let e = adjust(&p, &at()).unwrap_err();
        assert_eq!(e.problems.len(), 4, "{e}");
        assert!(e.to_string().contains("service a: build is not supported"), "{e}");
        assert!(
            e.to_string()
                .contains("service b: some_new_key is not supported by hlsys swarm"),
            "{e}"
        );
    }

    #[test]
    fn gpu_counts() {
        assert_eq!(gpu_count(&json!([{"count": -1}])), None);
        assert_eq!(gpu_count(&json!([{"count": 2}])), Some(2));
        assert_eq!(gpu_count(&json!([{"device_ids": ["0", "1", "2"]}])), Some(3));
    }

    #[test]
    fn localhost_port_is_refused() {
        let p = json!({"services": {"a": {"image": "x", "ports": [
            {"mode": "ingress", "host_ip": "127.0.0.1", "target": 80, "published": "8080", "protocol": "tcp"}]}}});
        let e = adjust(&p, &at()).unwrap_err();
        assert!(e.to_string().contains("port published on 127.0.0.1"), "{e}");
    }

    #[test]
    fn other_devices_and_runtimes_are_refused() {
        let p = json!({"services": {"a": {"image": "x", "runtime": "runsc",
            "devices": [{"source": "/dev/ttyUSB0", "target": "/dev/ttyUSB0", "permissions": "rwm"}]}}});
        let e = adjust(&p, &at()).unwrap_err();
        assert_eq!(e.problems.len(), 2, "{e}");
    }
}
