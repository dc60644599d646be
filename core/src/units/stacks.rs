//! The units of a tree whose stacks systemd runs.
//!
//! Unit layout (prefix `homelab`):
//! - `homelab-<stack>.service`: Type=notify, main process `hlsys supervise <stack>`; it is
//!   ordered after the layers its layer depends on and after its declared dependencies,
//!   and before its own layer target, of which it is part.
//! - `homelab-<layer>.target`: wants its enabled stacks and the layers it depends on,
//!   ordered after all of them, so reaching it means its stacks are ready (healthy).
//! - `homelab.target`: wants every layer; wanted by multi-user.target (default.target of
//!   a user manager, crate::config::scope) and by
//!   docker.service; the targets are bound to docker.service, so the stacks stop with
//!   Docker and come back when it starts again.
//! - `homelab-networks.service`, `homelab-gpu.service`: oneshots the stacks require.
//! - `homelab-tree.service`: only while the stack tree is not there (a disk mounted
//!   later): started when that mount appears, it reloads systemd so this generator runs
//!   again on the real tree, then starts `homelab.target`. Until then there are no layer
//!   targets either: an empty layer reached at boot would order nothing later.

use super::parts::{config_name, hlsys_cmd, new_unit, reads_home, Generated, WantsLink};
use super::unit_file::Section;
use super::{metrics, notify, sandbox};
use crate::escape::{check_value, path_unit_name, BadValue};
use crate::model::{Layer, Model, Stack, StackError, GPU_UNIT, NETWORKS_UNIT, TREE_UNIT};

/// Default `TimeoutStartSec=` of a stack: first pulls can be slow, and the supervisor
/// extends the timeout while it makes progress, so this only has to catch hangs.
pub const DEFAULT_TIMEOUT_START_SEC: u64 = 300;

struct Names<'a> {
    prefix: &'a str,
}

impl Names<'_> {
    fn root(&self) -> String {
        format!("{}.target", self.prefix)
    }
    fn layer(&self, l: &str) -> String {
        format!("{}-{}.target", self.prefix, l)
    }
    fn stack(&self, id: &str) -> String {
        format!("{}-{}.service", self.prefix, id)
    }
    fn prepare(&self, id: &str) -> String {
        crate::units::prepare::unit_name(self.prefix, id)
    }
    fn networks(&self) -> String {
        self.stack(NETWORKS_UNIT)
    }
    fn gpu(&self) -> String {
        self.stack(GPU_UNIT)
    }
    fn tree(&self) -> String {
        self.stack(TREE_UNIT)
    }
    fn layers(&self, names: &[String]) -> Vec<String> {
        names.iter().map(|l| self.layer(l)).collect()
    }
    fn stacks(&self, ids: &[String]) -> Vec<String> {
        ids.iter().map(|s| self.stack(s)).collect()
    }
}

/// The layers `layer` depends on: wanted (`after`) or required, ordered after either way.
fn layer_deps(u: &mut Section, n: &Names, layer: &Layer) {
    let wants = n.layers(&layer.after);
    let requires = n.layers(&layer.requires);
    u.add("Wants", wants.clone())
        .add("Requires", requires.clone())
        .merge("After", [wants, requires].concat());
}

/// What a stack and its preparation both require and come after on the host: Docker, the
/// networks and, for a GPU stack, the GPU check (a held-back GPU stack creates nothing).
fn host_requires(n: &Names, s: &Stack) -> Vec<String> {
    let mut requires = vec!["docker.service".to_string(), n.networks()];
    if s.gpu {
        requires.push(n.gpu());
    }
    requires
}

fn stack_unit(model: &Model, n: &Names, s: &Stack, layer: &Layer) -> Result<String, BadValue> {
    let dir = s.dir.to_string_lossy();
    let file = s.compose_file.to_string_lossy();
    check_value("stack directory", &dir)?;
    check_value("compose file", &file)?;
    let mut uf = new_unit(&file, &format!("hlsys stack {} (layer {})", s.id, s.layer));
    let u = uf.section("Unit");
    u.set("SourcePath", file.as_ref());
    let mut requires = host_requires(n, s);
    // Its images pulled and containers created beforehand (crate::units::prepare) when it has
    // to wait for its turn: only the start is left then.
    if crate::units::prepare::has_unit(layer, s) {
        requires.push(n.prepare(&s.id));
    }
    u.add("Requires", requires.clone()).merge("After", requires);
    u.add("Wants", ["network-online.target"])
        .merge("After", ["network-online.target"]);
    layer_deps(u, n, layer);
    let (req, wants) = (n.stacks(&s.requires), n.stacks(&s.wants));
    u.add("Requires", req.clone())
        .add("Wants", wants.clone())
        .merge("After", [req, wants].concat());
    if s.enabled {
        // Part of its layer: stopping or restarting the layer (or homelab.target) takes
        // the stack with it; the layer target is reached once the stack is ready.
        u.set("Before", n.layer(&s.layer)).set("PartOf", n.layer(&s.layer));
    }
    u.set("RequiresMountsFor", dir.as_ref());
    // A stack that keeps failing stops being restarted instead of looping forever. The
    // limit counts every start (boot, by hand, after a Docker restart), not only
    // restarts, so it leaves room for ordinary use: a crash loop (a start every ~5 s)
    // still hits it within a minute.
    u.set("StartLimitIntervalSec", "10min").set("StartLimitBurst", "10");
    report_failure(model, u);
    let sv = uf.section("Service");
    // No EnvironmentFile=: the env files go to Compose only (`--env-file`), never into
    // the environment of this root process (see sandbox.rs).
    sv.set("Type", "notify").set("NotifyAccess", "main");
    sv.set("WorkingDirectory", dir.as_ref())
        .add("ExecStart", hlsys_cmd(model, &["supervise", &s.id]))
        .add("ExecStop", hlsys_cmd(model, &["supervise", "--down", &s.id]))
        // ExecStop runs only after a successful start; a start that failed or timed out
        // would leave half a stack running without this.
        .add("ExecStopPost", hlsys_cmd(model, &["supervise", "--cleanup", &s.id]))
        .set("Restart", "on-failure")
        .set("RestartSec", "5s")
        .set(
            "TimeoutStartSec",
            s.timeout_start_sec.unwrap_or(DEFAULT_TIMEOUT_START_SEC).to_string(),
        )
        .set("TimeoutStopSec", "2min")
        .set("SyslogIdentifier", s.unit.trim_end_matches(".service"));
    // An image missing at start (no preparation unit, or removed since) is pulled by the
    // supervisor under a pull slot (src/supervise/prepare.rs).
    pull_slots_dir(sv);
    sandbox::harden(sv, sandbox::Kind::Stack, reads_home(model), model.config.scope);
    Ok(uf.to_string())
}

/// The pull slots (src/supervise/pull_slots.rs) are the one thing a preparation, or a supervisor
/// pulling a missing image itself, writes outside its state directory; ProtectSystem=strict
/// makes /run read-only otherwise. Preserved: the slots are shared by every stack, and
/// removing the directory when one unit stops would hand out a slot that another still
/// holds.
fn pull_slots_dir(sv: &mut Section) {
    sv.set("RuntimeDirectory", "hlsys/pull-slots")
        .set("RuntimeDirectoryMode", "0700")
        .set("RuntimeDirectoryPreserve", "yes");
}

/// The preparation unit of a stack (crate::units::prepare says why it looks like this): after
/// Docker, the networks and (for a GPU stack) the GPU check, never after another stack.
fn prepare_unit(model: &Model, n: &Names, s: &Stack) -> String {
    let file = s.compose_file.to_string_lossy();
    let dir = s.dir.to_string_lossy();
    let mut uf = new_unit(
        &file,
        &format!("hlsys stack {}: pull missing images, create containers", s.id),
    );
    let u = uf.section("Unit");
    u.set("SourcePath", file.as_ref());
    let requires = host_requires(n, s);
    u.add("Requires", requires.clone()).merge("After", requires);
    u.add("Wants", ["network-online.target"])
        .merge("After", ["network-online.target"]);
    u.set("PartOf", n.stack(&s.id)).set("RequiresMountsFor", dir.as_ref());
    let sv = uf.section("Service");
    sv.set("Type", "oneshot")
        .set("RemainAfterExit", "yes")
        // Progress on STATUS= ("pulling 1/3 images, …").
        .set("NotifyAccess", "main")
        .set("WorkingDirectory", dir.as_ref())
        .add("ExecStart", hlsys_cmd(model, &["supervise", "--prepare", &s.id]))
        // A pull that moves extends this (EXTEND_TIMEOUT_USEC); only a hang hits it.
        .set(
            "TimeoutStartSec",
            s.timeout_start_sec.unwrap_or(DEFAULT_TIMEOUT_START_SEC).to_string(),
        )
        .set("SyslogIdentifier", n.prepare(&s.id).trim_end_matches(".service"))
        // Background work: at a start, the preparations of later layers run at once with
        // the first layer's start, which is the critical path (on 2 cores they delayed its
        // first container by about 150 ms). The pull itself is dockerd's, not affected.
        .set("Nice", "10")
        .set("CPUWeight", "20");
    pull_slots_dir(sv);
    // The same sandbox as the stack unit: it too only talks to dockerd over its socket
    // (dockerd does the pulling).
    sandbox::harden(sv, sandbox::Kind::Stack, reads_home(model), model.config.scope);
    uf.to_string()
}

/// The targets go down with Docker, whatever stops it (a crash too), taking their
/// stacks with them (PartOf=). That is what makes the stacks come back: when Docker
/// starts again, `docker.service.wants/homelab.target` starts an *inactive* target, which
/// pulls its layers and stacks in again; starting a target that is still active would
/// pull in nothing.
fn bind_to_docker(u: &mut Section) {
    u.set("BindsTo", "docker.service").merge("After", ["docker.service"]);
}

fn layer_unit(model: &Model, n: &Names, layer: &Layer) -> String {
    let mut uf = new_unit(&config_name(model), &format!("hlsys layer {}", layer.name));
    let u = uf.section("Unit");
    bind_to_docker(u);
    layer_deps(u, n, layer);
    let stacks = n.stacks(&layer.stacks);
    u.add("Wants", stacks.clone()).merge("After", stacks);
    u.set("PartOf", n.root());
    uf.to_string()
}

fn root_unit(model: &Model, n: &Names, layers: &[Layer], extra_wants: &[String]) -> String {
    let mut uf = new_unit(&config_name(model), "hlsys homelab: every layer of Compose stacks");
    let u = uf.section("Unit");
    bind_to_docker(u);
    let layers: Vec<String> = layers.iter().map(|l| n.layer(&l.name)).collect();
    u.add("Wants", [layers.clone(), extra_wants.to_vec()].concat())
        .merge("After", layers);
    uf.to_string()
}

/// With `[notify]` targets: `OnFailure=` to the notifier (crate::units::notify), which
/// systemd 252 starts once the unit is `failed` for good (its restarts given up).
fn report_failure(model: &Model, u: &mut Section) {
    if model.config.notify.enabled() {
        u.set("OnFailure", notify::on_failure(&model.config.unit_prefix));
    }
}

fn oneshot_unit(model: &Model, description: &str, args: &[&str], kind: sandbox::Kind) -> String {
    let mut uf = new_unit(&config_name(model), description);
    uf.section("Unit")
        .set("Requires", "docker.service")
        .set("After", "docker.service");
    report_failure(model, uf.section("Unit"));
    uf.section("Service")
        .set("Type", "oneshot")
        .set("RemainAfterExit", "yes")
        .add("ExecStart", hlsys_cmd(model, args));
    sandbox::harden(uf.section("Service"), kind, reads_home(model), model.config.scope);
    uf.to_string()
}

fn tree_unit(model: &Model, n: &Names) -> String {
    let dir = model.config.stacks_dir.to_string_lossy();
    let mut uf = new_unit(
        &config_name(model),
        "hlsys: regenerate units once the stack tree is mounted",
    );
    // Waits for a mount unit of the tree when there is one (fstab, nofail/automount);
    // the .wants links on every prefix's mount unit start it again when the tree is
    // mounted later by any means, since systemd starts the wants of a mount that appears.
    uf.section("Unit")
        .set("RequiresMountsFor", dir.as_ref())
        .set("ConditionDirectoryNotEmpty", dir.as_ref())
        .set("Before", n.root());
    uf.section("Service")
        .set("Type", "oneshot")
        .add("ExecStart", hlsys_cmd(model, &["reload", "--start"]));
    sandbox::harden(
        uf.section("Service"),
        sandbox::Kind::Oneshot,
        reads_home(model),
        model.config.scope,
    );
    uf.to_string()
}

/// The units of a tree whose stacks systemd runs. Never fails as a whole: a stack whose
/// values cannot be written is left out (in `skipped`) together with its unit.
pub fn render(model: &Model) -> Generated {
    let n = Names {
        prefix: &model.config.unit_prefix,
    };
    let mut g = Generated::default();
    let dropped = render_stacks(model, &n, &mut g);
    // No tree, no layer targets: reached empty at boot, they would still be active when
    // the tree appears, and an active target orders nothing, so `reload --start` would
    // start every layer at once. Created by that reload instead, they start with (and
    // order) their stacks as at boot.
    let layers: &[Layer] = if model.tree_available { &model.layers } else { &[] };
    for layer in layers {
        let mut l = layer.clone();
        l.stacks.retain(|s| !dropped.contains(s));
        g.add(n.layer(&l.name), layer_unit(model, &n, &l));
    }
    let mut extra_wants = Vec::new();
    render_notify_and_metrics(model, &mut g, &mut extra_wants);
    if !model.tree_available {
        extra_wants.push(n.tree());
        render_tree_wait(model, &n, &mut g);
    }
    g.add(n.root(), root_unit(model, &n, layers, &extra_wants));
    let networks = oneshot_unit(
        model,
        "hlsys: ensure the configured Docker networks",
        &["network", "ensure"],
        sandbox::Kind::Oneshot,
    );
    g.add(n.networks(), networks);
    // Every GPU stack unit requires the GPU check unit, a disabled one too (it can be
    // started by hand), so the check unit exists whenever such a unit does.
    if model.stacks.iter().any(|s| s.gpu && !dropped.contains(&s.id)) {
        // Failing here holds back exactly the stacks that require this unit.
        let gpu = oneshot_unit(
            model,
            "hlsys: check the GPU path for GPU stacks",
            &["check", "--gpu"],
            sandbox::Kind::GpuCheck,
        );
        g.add(n.gpu(), gpu);
    }
    let boot = format!("{}.wants", model.config.scope.boot_target());
    for dir in [boot.as_str(), "docker.service.wants"] {
        g.links.push(WantsLink {
            dir: dir.to_string(),
            unit: n.root(),
        });
    }
    g.units.sort_by(|a, b| a.name.cmp(&b.name));
    g
}

/// `[notify]` and `[metrics]`: nothing unless configured.
fn render_notify_and_metrics(model: &Model, g: &mut Generated, root_wants: &mut Vec<String>) {
    let prefix = &model.config.unit_prefix;
    if model.config.notify.enabled() {
        g.add(notify::template_name(prefix), notify::template_unit(model));
        if model.config.notify.on_ready {
            g.add(notify::ready_name(prefix), notify::ready_unit(model));
            root_wants.push(notify::ready_name(prefix));
        }
    }
    if let Some(m) = &model.config.metrics {
        g.add(metrics::socket_name(prefix), metrics::socket_unit(model, &m.listen));
        g.add(metrics::service_name(prefix), metrics::service_unit(model));
        g.links.push(WantsLink {
            dir: "sockets.target.wants".to_string(),
            unit: metrics::socket_name(prefix),
        });
    }
}

/// The stack units; returns the ids of the stacks left out (in `g.skipped`).
fn render_stacks(model: &Model, n: &Names, g: &mut Generated) -> Vec<String> {
    let mut dropped = Vec::new();
    let clashes = crate::units::prepare::name_clashes(model);
    for s in &model.stacks {
        let clash = clashes.iter().find(|e| e.stack == s.id);
        let unit = match model.layer(&s.layer) {
            _ if clash.is_some() => Err(clash.map(|e| e.message.clone()).unwrap_or_default()),
            Some(layer) => stack_unit(model, n, s, layer)
                .map(|u| (u, crate::units::prepare::has_unit(layer, s)))
                .map_err(|e| e.to_string()),
            None => Err(format!("unknown layer {:?}", s.layer)),
        };
        match unit {
            Ok((content, prepared)) => {
                g.add(n.stack(&s.id), content);
                if prepared {
                    g.add(n.prepare(&s.id), prepare_unit(model, n, s));
                }
            }
            Err(message) => {
                dropped.push(s.id.clone());
                g.skipped.push(StackError {
                    stack: s.id.clone(),
                    file: s.compose_file.clone(),
                    message,
                });
            }
        }
    }
    dropped
}

/// The unit that waits for a missing tree, wanted by the mount unit of every prefix of
/// the tree's path (any of them could be the mount point that brings it).
fn render_tree_wait(model: &Model, n: &Names, g: &mut Generated) {
    g.add(n.tree(), tree_unit(model, n));
    let dir = model.config.stacks_dir.to_string_lossy().into_owned();
    let mut prefix = String::new();
    for comp in dir.split('/').filter(|c| !c.is_empty()) {
        prefix.push('/');
        prefix.push_str(comp);
        let wants = format!("{}.mount.wants", path_unit_name(&prefix));
        // A mount unit's name is limited like any unit's: a prefix too long to be a
        // mount unit cannot be one, and its directory could not be created.
        if wants.len() <= crate::tree::MAX_UNIT_NAME {
            g.links.push(WantsLink {
                dir: wants,
                unit: n.tree(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, DEFAULT_CONFIG};
    use crate::units::unit_file::UnitFile;
    use std::path::Path;

    fn model(source: &str) -> Model {
        Model {
            config: Config {
                source: Some(source.into()),
                ..Config::default()
            },
            stacks: Vec::new(),
            errors: Vec::new(),
            layers: Vec::new(),
            tree_available: true,
            inputs: Default::default(),
        }
    }

    #[test]
    fn notify_and_metrics_units_only_when_configured() {
        let plain = render(&model(DEFAULT_CONFIG));
        assert!(plain
            .units
            .iter()
            .all(|u| !u.content.contains("OnFailure") && !u.name.contains("notify")));
        let mut m = model("/srv/lab/hlsys.toml");
        m.config = Config::from_str_at(
            "[notify]\non_ready = true\n[[notify.target]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n[metrics]\nlisten = \"172.21.0.1:9464\"\n",
            Path::new("/srv/lab/hlsys.toml"),
        )
        .unwrap();
        let g = render(&m);
        let get = |name: &str| {
            let u = g
                .units
                .iter()
                .find(|u| u.name == name)
                .unwrap_or_else(|| panic!("{name}"));
            UnitFile::parse(&u.content).unwrap()
        };
        assert_eq!(
            get("homelab-networks.service").values("Unit", "OnFailure"),
            ["homelab-notify@%n.service"]
        );
        let t = g.units.iter().find(|u| u.name == "homelab-notify@.service").unwrap();
        assert!(t.content.contains("notify --failed %i\n"), "{}", t.content);
        let t = get("homelab-notify@.service");
        assert!(t.values("Service", "PrivateNetwork").is_empty());
        assert_eq!(
            get("homelab.target").values("Unit", "Wants"),
            ["homelab-notify-ready.service"]
        );
        assert_eq!(
            get("homelab-metrics.socket").values("Socket", "ListenStream"),
            ["172.21.0.1:9464"]
        );
        assert_eq!(
            get("homelab-metrics@.service").values("Service", "StandardInput"),
            ["socket"]
        );
        assert!(g
            .links
            .iter()
            .any(|l| l.dir == "sockets.target.wants" && l.unit == "homelab-metrics.socket"));
    }

    #[test]
    fn the_config_is_named_in_units_unless_it_is_the_default_one() {
        for (source, want) in [
            (DEFAULT_CONFIG, vec!["/usr/bin/hlsys", "network", "ensure"]),
            (
                "/srv/lab/hlsys.toml",
                vec!["/usr/bin/hlsys", "--config", "/srv/lab/hlsys.toml", "network", "ensure"],
            ),
        ] {
            let g = render(&model(source));
            let unit = g.units.iter().find(|u| u.name == "homelab-networks.service").unwrap();
            let parsed = UnitFile::parse(&unit.content).unwrap();
            assert_eq!(parsed.values("Service", "ExecStart"), want);
        }
    }
}
