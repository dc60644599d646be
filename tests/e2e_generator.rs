//! End to end: `hlsys-generator` and the units it writes, in a real systemd 252 booted as
//! PID 1 with docker.service inside (tests/harness/machine.sh), on the layered tree
//! `tests/fixtures/trees/e2e` (panel → database → genai; every container runs
//! local/busybox:latest, the only image there is: no registry).
//!
//! - `boot_starts_layers_in_order_and_reload_picks_up_new_stacks`: the tree is there at
//!   boot, next to a broken stack. The boot is not failed, the broken stack is skipped,
//!   multi-user.target brings every stack up in layer order (the genai container is only
//!   created once both database containers are healthy), stop + `systemctl start
//!   homelab-genai.target` does it again, and a stack added to the tree gets its unit on
//!   `systemctl daemon-reload`.
//! - `tree_mounted_after_boot_starts_without_manual_step`: /srv/compose is empty at boot;
//!   `homelab-tree.service` waits unmet, and a `mount` of the tree after boot starts every
//!   stack, in layer order, with no manual step.
//!
//! Both need root, systemd-nspawn and Docker (skipped otherwise, failing when CI=true).
//! On failure they print the units' status, the journal, the containers and the console
//! log; the machine is stopped in any case.
mod common;
#[path = "common/e2e.rs"]
mod e2e;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{repo_path, require_root_and, Machine};
use e2e::{
    all_active, assert_recorder_saw_import, containers, events, now_ns, show, show_u64, states, timed, wait_for,
    with_diagnostics, Event, REPORT,
};

const TREE: &str = "tests/fixtures/trees/e2e";
/// The stack units of the tree, in start order.
const STACKS: [&str; 3] = [
    "homelab-panel.service",
    "homelab-database.service",
    "homelab-genai-webui.service",
];

/// A stack in the genai layer with malformed YAML (an unclosed flow sequence).
const BROKEN_STACK: &str = "services:\n  broken:\n    image: local/busybox:latest\n    command: [sleep, 3600\n";
/// A stack added to the tree while the machine runs.
const ADDED_STACK: &str = "services:
  embed:
    image: local/busybox:latest
    command: [\"sleep\", \"3600\"]
    init: true
    restart: \"no\"
    networks: [database]

networks:
  database: { external: true }
";

/// One machine at a time: booted with --keep-unit and the host's /sys/fs/cgroup, every
/// machine's systemd uses the same host cgroups (/init.scope, /system.slice/docker.service,
/// …), so two machines at once would share their units' cgroups.
static ONE_MACHINE: Mutex<()> = Mutex::new(());

fn one_machine() -> std::sync::MutexGuard<'static, ()> {
    ONE_MACHINE.lock().unwrap_or_else(|e| e.into_inner())
}

const CONTAINERS: [&str; 4] = [
    "panel-httpd-1",
    "database-postgres-1",
    "database-qdrant-1",
    "genai-webui-webui-1",
];

/// Every container of the tree runs, and those with a healthcheck are healthy (which
/// `compose up --wait` promised before the units became active).
fn assert_containers_up(m: &Machine) {
    let c = containers(m);
    for name in CONTAINERS {
        let status = c
            .get(name)
            .unwrap_or_else(|| panic!("container {name} is not running: {c:?}"));
        assert!(status.starts_with("Up"), "{name}: {status}");
        if name != "panel-httpd-1" {
            assert!(status.contains("(healthy)"), "{name} is not healthy: {status}");
        }
    }
}

/// The product's promise, read from Docker's own clock: each layer's containers are
/// started only once the previous layer is ready — panel running before the database
/// containers start, both database containers healthy before the genai container starts
/// (the stacks' preparation units may create them earlier). Only events after `since`
/// (ns) count.
fn assert_layer_order_in_docker(m: &Machine, since: i64) {
    let all = events(m);
    assert_recorder_saw_import(&all);
    let evs: Vec<&Event> = all.iter().filter(|e| e.ns >= since && e.kind == "container").collect();
    let first = |project: &str, action: &str, name: &str| -> i64 {
        evs.iter()
            .filter(|e| e.project == project && e.action == action && (name.is_empty() || e.name == name))
            .map(|e| e.ns)
            .min()
            .unwrap_or_else(|| panic!("no {action:?} event of {project} {name} since {since}: {evs:#?}"))
    };
    let panel_started = first("panel", "start", "");
    let db_started = first("database", "start", "");
    let db_healthy = ["database-postgres-1", "database-qdrant-1"]
        .iter()
        .map(|n| first("database", "health_status: healthy", n))
        .max()
        .unwrap();
    let genai_started = first("genai-webui", "start", "");
    eprintln!(
        "docker (ms after the panel container started): database started +{}, healthy +{}, genai started +{}",
        (db_started - panel_started) / 1_000_000,
        (db_healthy - panel_started) / 1_000_000,
        (genai_started - panel_started) / 1_000_000
    );
    assert!(
        panel_started < db_started,
        "database containers started before the panel container started"
    );
    assert!(
        db_healthy < genai_started,
        "the genai container started {} ms before both database containers were healthy",
        (db_healthy - genai_started) / 1_000_000
    );
}

/// The same order as systemd saw it: a stack's main process starts only after the stacks
/// of the layers before it became active (READY=1).
fn assert_layer_order_in_systemd(m: &Machine) {
    for pair in STACKS.windows(2) {
        let ready = show_u64(m, pair[0], "ActiveEnterTimestampMonotonic");
        let started = show_u64(m, pair[1], "ExecMainStartTimestampMonotonic");
        assert!(ready > 0 && started > 0, "{pair:?} never ran");
        assert!(
            ready <= started,
            "{} started {} ms before {} was ready",
            pair[1],
            (ready - started) / 1000,
            pair[0]
        );
    }
}

/// What the generator reported in its output directory.
fn report(m: &Machine) -> serde_json::Value {
    serde_json::from_str(&m.exec_ok(&["cat", REPORT])).expect("generator report is JSON")
}

fn report_units(r: &serde_json::Value) -> Vec<String> {
    r["units"]
        .as_array()
        .expect("units")
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect()
}

/// systemd logs "PATH failed with exit status N" for a failing generator: on the
/// console while booting, in the journal on daemon-reload.
fn assert_generator_never_failed(m: &Machine) {
    let journal = m.exec_ok(&["journalctl", "-b", "--no-pager"]);
    for (what, text) in [("journal", journal), ("console log", m.log())] {
        if let Some(l) = text.lines().find(|l| l.contains("hlsys-generator failed")) {
            panic!("the generator failed ({what}): {l}");
        }
    }
}

#[test]
fn boot_starts_layers_in_order_and_reload_picks_up_new_stacks() {
    if !require_root_and(&["systemd-nspawn", "nsenter", "docker", "dockerd"]) {
        return;
    }
    let _one = one_machine();
    let t0 = Instant::now();
    let pre = e2e::pre_boot(TREE, true, &[("genai/broken/compose.yaml", BROKEN_STACK)]);
    timed(t0, "binaries built");
    let m = Machine::start("hlsys-e2e-boot", Some(&pre));
    timed(t0, "booted (stacks started by multi-user.target)");
    with_diagnostics(&m, &[], || {
        // A broken stack fails neither the generator nor the boot.
        let (_, state, _) = m.exec(&["systemctl", "is-system-running"]);
        assert_eq!(state.trim(), "running", "system state (a failed unit?)");
        assert_generator_never_failed(&m);
        let rep = report(&m);
        let units = report_units(&rep);
        let targets = [
            "homelab.target",
            "homelab-panel.target",
            "homelab-database.target",
            "homelab-genai.target",
        ];
        for u in STACKS.iter().chain(&targets).chain(&["homelab-networks.service"]) {
            assert!(units.iter().any(|x| x == u), "{u} not in the report: {units:?}");
        }
        let skipped = rep["skipped"].as_array().expect("skipped");
        assert!(
            skipped.len() == 1
                && skipped[0]["stack"] == "genai-broken"
                && skipped[0]["file"] == "/srv/compose/genai/broken/compose.yaml",
            "skipped: {skipped:?}"
        );
        let (st, _, _) = m.exec(&["systemctl", "cat", "homelab-genai-broken.service"]);
        assert!(!st.success(), "a unit was written for the broken stack");
        // Its log line: inside nspawn there is no /dev/kmsg and PID 1's stderr is
        // /dev/null, so systemd's runs leave no trace; run it by hand to see it.
        let gen = "/usr/lib/systemd/system-generators/hlsys-generator";
        let (st, _, err) = m.exec(&[
            "env",
            "-i",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            gen,
            "/run/e2e-generator",
        ]);
        assert!(st.success(), "generator by hand: {st}\n{err}");
        assert!(
            err.lines().any(|l| l.starts_with("hlsys-generator[")
                && l.contains("skipping genai-broken: /srv/compose/genai/broken/compose.yaml")),
            "no skipping line: {err}"
        );

        // The layer graph as systemd sees it.
        let deps = m.exec_ok(&[
            "systemctl",
            "list-dependencies",
            "--plain",
            "--no-pager",
            "homelab-genai.target",
        ]);
        for u in ["homelab-panel.target", "homelab-database.target"]
            .iter()
            .chain(&STACKS)
        {
            assert!(
                deps.lines().any(|l| l.trim() == *u),
                "{u} not a dependency of homelab-genai.target:\n{deps}"
            );
        }

        // multi-user.target → homelab.target started everything at boot, in layer order.
        m.wait_docker();
        wait_for("every stack active after boot", Duration::from_secs(60), || {
            all_active(&m, &STACKS)
        });
        assert_containers_up(&m);
        assert_layer_order_in_docker(&m, 0);
        assert_layer_order_in_systemd(&m);
        assert_eq!(show(&m, "homelab-networks.service", "ActiveState"), "active");
        e2e::assert_networks(
            &m,
            &[
                ("proxy", "false 172.20.0.0/24 true"),
                ("database", "true 172.20.2.0/24 true"),
            ],
        );
        timed(t0, "boot checked: order, health, networks, broken stack skipped");

        // Stopped, then started through the genai layer alone: it pulls in its layers.
        // `systemctl stop` waits for the target alone, which stops before its layers.
        m.exec_ok(&["timeout", "120", "systemctl", "stop", "homelab.target"]);
        wait_for("every stack stopped", Duration::from_secs(60), || {
            states(&m, &STACKS) == ["inactive"; 3]
        });
        assert_eq!(
            containers(&m),
            BTreeMap::new(),
            "containers left after stopping homelab.target"
        );
        timed(t0, "stopped homelab.target");
        let since = now_ns(&m);
        m.exec_ok(&["timeout", "120", "systemctl", "start", "homelab-genai.target"]);
        assert!(
            all_active(&m, &STACKS),
            "after starting homelab-genai.target: {:?}",
            states(&m, &STACKS)
        );
        assert_containers_up(&m);
        assert_layer_order_in_docker(&m, since);
        assert_layer_order_in_systemd(&m);
        timed(t0, "started homelab-genai.target: order and health checked");

        // A stack added to the tree gets its unit on daemon-reload.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), ADDED_STACK).unwrap();
        m.copy_in(dir.path(), "/srv/compose/genai/embed");
        m.exec_ok(&["systemctl", "daemon-reload"]);
        let unit = m.exec_ok(&["systemctl", "cat", "homelab-genai-embed.service"]);
        assert!(
            unit.contains("ExecStart=/usr/bin/hlsys supervise genai-embed"),
            "{unit}"
        );
        assert!(
            report_units(&report(&m))
                .iter()
                .any(|u| u == "homelab-genai-embed.service"),
            "not in the report"
        );
        let wants = show(&m, "homelab-genai.target", "Wants");
        assert!(
            wants.split_whitespace().any(|u| u == "homelab-genai-embed.service"),
            "genai layer wants: {wants}"
        );
        m.exec_ok(&["timeout", "60", "systemctl", "start", "homelab-genai-embed.service"]);
        assert!(
            containers(&m).contains_key("genai-embed-embed-1"),
            "{:?}",
            containers(&m)
        );
        assert_generator_never_failed(&m);
        timed(t0, "added stack: unit after daemon-reload, started");
    });
    drop(m);
    timed(t0, "machine stopped");
}

#[test]
fn tree_mounted_after_boot_starts_without_manual_step() {
    if !require_root_and(&["systemd-nspawn", "nsenter", "docker", "dockerd"]) {
        return;
    }
    let _one = one_machine();
    let t0 = Instant::now();
    let pre = e2e::pre_boot(TREE, false, &[]);
    let m = Machine::start("hlsys-e2e-mount", Some(&pre));
    timed(t0, "booted with an empty /srv/compose");
    with_diagnostics(&m, &[], || {
        m.wait_docker();
        let rep = report(&m);
        assert_eq!(rep["tree_available"], false, "{rep}");
        assert_eq!(show(&m, "homelab-tree.service", "LoadState"), "loaded");
        assert_eq!(
            show(&m, "homelab-tree.service", "ConditionResult"),
            "no",
            "the tree was empty at boot"
        );
        assert_eq!(show(&m, "homelab-tree.service", "ActiveState"), "inactive");
        for link in ["srv.mount.wants", "srv-compose.mount.wants"] {
            m.exec_ok(&[
                "test",
                "-L",
                &format!("/run/systemd/generator/{link}/homelab-tree.service"),
            ]);
        }
        assert_eq!(
            show(&m, STACKS[0], "LoadState"),
            "not-found",
            "a stack unit without a tree"
        );

        // The tree appears; nothing else is done by hand.
        m.copy_in(repo_path(TREE), "/var/tmp/tree");
        let since = now_ns(&m);
        m.exec_ok(&["mount", "--bind", "/var/tmp/tree", "/srv/compose"]);
        timed(t0, "tree mounted");
        wait_for("every stack active after the mount", Duration::from_secs(60), || {
            all_active(&m, &STACKS)
        });
        timed(t0, "every stack active");
        // The unit is gone from the generator's output now; its journal tells what it did.
        let log = m.exec_ok(&["journalctl", "-b", "--no-pager", "-u", "homelab-tree.service"]);
        assert!(
            log.contains("systemd reloaded"),
            "homelab-tree.service did not reload:\n{log}"
        );
        assert_eq!(report(&m)["tree_available"], true);
        assert_containers_up(&m);
        assert_layer_order_in_docker(&m, since);
        assert_layer_order_in_systemd(&m);
        assert_generator_never_failed(&m);
    });
    drop(m);
    timed(t0, "machine stopped");
}
