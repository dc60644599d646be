//! Helpers of the end-to-end tests that boot a machine with hlsys installed
//! (tests/e2e_generator.rs, tests/e2e_supervise.rs): the binaries, what a machine needs
//! before boot (hlsys, the generator, a config and tree, Docker's event recorder), units'
//! properties, Docker's events and containers, and diagnostics on failure.
//!
//! Use it next to `mod common;` as `#[path = "common/e2e.rs"] mod e2e;`.
#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{repo_path, Machine};

/// The generator's report in its output directory.
pub const REPORT: &str = "/run/systemd/generator/hlsys-generator.json";
/// Written by the recorder the machines start with docker.service (see [`pre_boot`]).
pub const EVENTS: &str = "/run/e2e-docker-events.jsonl";

/// `hlsys` (Cargo built it for this test) and `hlsys-generator`.
pub fn binaries() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        (
            PathBuf::from(env!("CARGO_BIN_EXE_hlsys")),
            crate::common::generator_bin().to_path_buf(),
        )
    })
}

pub fn quote(p: &Path) -> String {
    let s = p.to_str().expect("UTF-8 path");
    assert!(!s.contains('\''), "path with a quote: {s}");
    format!("'{s}'")
}

/// Installs, on the host before boot, what a real install has: the generator, `hlsys`,
/// `tree`'s hlsys.toml as /etc/hlsys/hlsys.toml, and (`with_tree`) the tree itself at
/// /srv/compose plus `extra` (relative path → compose file). /srv/compose exists either
/// way.
///
/// The machine needs two more things no host has: docker.service (ExecStartPost) imports
/// local/busybox:latest before any unit ordered after Docker starts (stacks start at boot,
/// and there is no registry), and starts a recorder of Docker's events first, so the test
/// can read when each container was created, started and became healthy. The recorder
/// replays everything the daemon has buffered since it started (`--since 1`: dockerd keeps
/// its recent events in memory, a new daemon only its own), so it misses nothing from
/// before it subscribed, not even the containers dockerd itself starts while it restores
/// its state (their restart policy), before ExecStartPost; and it appends: Docker
/// restarted, it starts again and the file keeps the events from before, with no event
/// twice.
pub fn pre_boot(tree: &str, with_tree: bool, extra: &[(&str, &str)]) -> String {
    let (hlsys, generator) = binaries();
    let mut s = format!(
        "install -D -m755 {gen} \"$ROOT/usr/lib/systemd/system-generators/hlsys-generator\"
install -D -m755 {hlsys} \"$ROOT/usr/bin/hlsys\"
install -D -m644 {cfg} \"$ROOT/etc/hlsys/hlsys.toml\"
rm -rf \"$ROOT/srv/compose\" && mkdir -p \"$ROOT/srv/compose\"
",
        gen = quote(generator),
        hlsys = quote(hlsys),
        cfg = quote(&repo_path(tree).join("hlsys.toml")),
    );
    if with_tree {
        s += &format!("cp -R {}/. \"$ROOT/srv/compose/\"\n", quote(&repo_path(tree)));
        for (rel, content) in extra {
            assert!(!content.contains("E2E_EOF") && !rel.contains(['\'', ' ']));
            s += &format!("install -D -m644 /dev/stdin \"$ROOT/srv/compose/{rel}\" <<'E2E_EOF'\n{content}E2E_EOF\n");
        }
    }
    s += DOCKER_READY;
    s
}

/// The part of [`pre_boot`] every e2e machine needs, hlsys installed or not: docker.service
/// imports local/busybox:latest and starts the recorder of Docker's events (see there).
pub const DOCKER_READY: &str = r#"install -D -m755 /dev/stdin "$ROOT/usr/local/libexec/e2e-docker-ready" <<'E2E_EOF'
#!/bin/bash
# ExecStartPost of docker.service in the e2e test machines (tests/common/e2e.rs).
set -euo pipefail
# The recorder of the Docker that stopped (if any) is gone with it.
systemctl stop e2e-docker-events.service 2>/dev/null || true
systemctl reset-failed e2e-docker-events.service 2>/dev/null || true
systemd-run --quiet --collect --unit=e2e-docker-events -p StandardOutput=append:/run/e2e-docker-events.jsonl \
  -p StandardError=journal docker events --since 1 --format '{{json .}}' || true
docker image inspect local/busybox:latest >/dev/null 2>&1 && exit 0
# As tests/harness/machine.sh wait-docker does: an image from the host's static busybox.
bb=$(mktemp -d); trap 'rm -rf "$bb"' EXIT
mkdir -p "$bb/bin" "$bb/tmp" && chmod 1777 "$bb/tmp" && cp /bin/busybox "$bb/bin/"
for a in sh sleep true echo touch test wget nc httpd cat; do ln -sf busybox "$bb/bin/$a"; done
tar -C "$bb" -c . | docker import - local/busybox:latest >/dev/null
for _ in $(seq 100); do grep -qs '"Action":"import"' /run/e2e-docker-events.jsonl && break; sleep 0.05; done
E2E_EOF
install -D -m644 /dev/stdin "$ROOT/etc/systemd/system/docker.service.d/e2e.conf" <<'E2E_EOF'
[Service]
ExecStartPost=/usr/local/libexec/e2e-docker-ready
E2E_EOF
"#;

/// The hlsys units' journal of this boot, for a test's diagnostics (see [`with_diagnostics`]).
pub const HOMELAB_JOURNAL: &[&str] = &[
    "journalctl",
    "-b",
    "--no-pager",
    "-o",
    "short-precise",
    "-n",
    "300",
    "-u",
    "homelab*",
];

/// Runs `body`; if it panics, prints what explains the failure (the commands in
/// `extra` too) before the machine guard (dropped by the caller afterwards) stops the
/// machine.
pub fn with_diagnostics(m: &Machine, extra: &[&[&str]], body: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(body)) {
        eprintln!("===== diagnostics of machine {} =====", m.name);
        let common: [&[&str]; 7] = [
            &["systemctl", "list-units", "--all", "--no-pager", "homelab*"],
            &["systemctl", "status", "--no-pager", "-n", "15", "homelab*"],
            &["systemctl", "--failed", "--no-pager"],
            &["systemctl", "list-jobs", "--no-pager"],
            &["docker", "ps", "-a"],
            &["cat", REPORT],
            &["journalctl", "-b", "-n", "100", "--no-pager"],
        ];
        for cmd in common.iter().chain(extra) {
            let (_, out, err) = m.exec(cmd);
            eprintln!("--- {} ---\n{out}{err}", cmd.join(" "));
        }
        let log = m.log();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        eprintln!("--- console log (last 60 lines) ---");
        for l in tail.iter().rev() {
            eprintln!("{l}");
        }
        resume_unwind(panic);
    }
}

pub fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `systemctl is-active` of each unit.
pub fn states(m: &Machine, units: &[&str]) -> Vec<String> {
    let (_, out, _) = m.exec(&[&["systemctl", "is-active"][..], units].concat());
    out.lines().map(str::to_string).collect()
}

pub fn all_active(m: &Machine, units: &[&str]) -> bool {
    states(m, units).iter().filter(|s| *s == "active").count() == units.len()
}

/// No job queued or running in systemd.
pub fn idle(m: &Machine) -> bool {
    m.exec_ok(&["systemctl", "list-jobs", "--no-legend", "--no-pager"])
        .trim()
        .is_empty()
}

/// A property of a unit (`systemctl show -p`).
pub fn show(m: &Machine, unit: &str, prop: &str) -> String {
    m.exec_ok(&["systemctl", "show", "--value", "-p", prop, unit])
        .trim()
        .to_string()
}

pub fn show_u64(m: &Machine, unit: &str, prop: &str) -> u64 {
    let v = show(m, unit, prop);
    v.parse().unwrap_or_else(|_| panic!("{unit} {prop}={v:?}"))
}

/// A unit's journal of this boot.
pub fn journal(m: &Machine, unit: &str) -> String {
    m.exec_ok(&["journalctl", "-b", "--no-pager", "-o", "short-precise", "-u", unit])
}

/// Nanoseconds since the epoch, inside the machine (the clock Docker's events use).
pub fn now_ns(m: &Machine) -> i64 {
    m.exec_ok(&["date", "+%s%N"]).trim().parse().expect("date +%s%N")
}

/// Running containers: name → status ("Up 3 seconds (healthy)").
pub fn containers(m: &Machine) -> BTreeMap<String, String> {
    m.exec_ok(&["docker", "ps", "--format", "{{.Names}}\t{{.Status}}"])
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

/// Every container of a Compose project, running or not: name → full id.
pub fn project_containers(m: &Machine, project: &str) -> BTreeMap<String, String> {
    let label = format!("label=com.docker.compose.project={project}");
    m.exec_ok(&[
        "docker",
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        &label,
        "--format",
        "{{.Names}}\t{{.ID}}",
    ])
    .lines()
    .filter_map(|l| l.split_once('\t'))
    .map(|(n, s)| (n.to_string(), s.to_string()))
    .collect()
}

#[derive(Debug, Clone)]
pub struct Event {
    /// Docker's clock, ns since the epoch.
    pub ns: i64,
    pub kind: String,
    pub action: String,
    pub project: String,
    pub name: String,
    /// `exitCode` of a `die` event.
    pub exit_code: Option<i64>,
}

/// Everything the recorder wrote.
pub fn events(m: &Machine) -> Vec<Event> {
    m.exec_ok(&["cat", EVENTS])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("event {l:?}: {e}"));
            let attr = |k: &str| v["Actor"]["Attributes"][k].as_str().unwrap_or_default().to_string();
            Event {
                ns: v["timeNano"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("event without timeNano: {l}")),
                kind: v["Type"].as_str().unwrap_or_default().to_string(),
                action: v["Action"].as_str().unwrap_or_default().to_string(),
                project: attr("com.docker.compose.project"),
                name: attr("name"),
                exit_code: attr("exitCode").parse().ok(),
            }
        })
        .collect()
}

/// The recorder saw the image import (done by ExecStartPost at the first start of Docker
/// on a fresh /var/lib/docker), so it has seen everything since Docker first started.
pub fn assert_recorder_saw_import(all: &[Event]) {
    assert!(
        all.iter().any(|e| e.kind == "image" && e.action == "import"),
        "the event recorder did not see the image import, so it may have missed containers: {all:?}"
    );
}

/// The first container event `action` of `project` (of container `name`, unless empty)
/// at or after `since` (ns).
pub fn first_event(evs: &[Event], since: i64, project: &str, action: &str, name: &str) -> Option<i64> {
    evs.iter()
        .filter(|e| e.ns >= since && e.kind == "container" && e.project == project && e.action == action)
        .filter(|e| name.is_empty() || e.name == name)
        .map(|e| e.ns)
        .min()
}

/// The ordering promise on Docker's own clock, for what happened at or after `since`
/// (ns): no container of the `dependents` projects starts (`start` event) before every
/// `(project, container)` of `required` turned healthy (`health_status: healthy`).
/// Creating earlier is allowed (the stacks' preparation does). Returns (the last of
/// those healthy events, the first of those starts).
pub fn assert_starts_after_healthy(
    evs: &[Event],
    since: i64,
    required: &[(&str, &str)],
    dependents: &[&str],
) -> (i64, i64) {
    let at = |project: &str, action: &str, name: &str| {
        first_event(evs, since, project, action, name)
            .unwrap_or_else(|| panic!("no {action:?} event of {project} {name} since {since}"))
    };
    let healthy = required
        .iter()
        .map(|(p, n)| at(p, "health_status: healthy", n))
        .max()
        .expect("something required");
    let started = dependents
        .iter()
        .map(|p| at(p, "start", ""))
        .min()
        .expect("a dependent");
    assert!(
        healthy < started,
        "a container of {dependents:?} started {} ms before {required:?} were all healthy",
        (healthy - started) / 1_000_000
    );
    (healthy, started)
}

/// CLOCK_MONOTONIC in µs: the same clock inside the machine (systemd-nspawn makes no time
/// namespace), so it compares with systemd's `*TimestampMonotonic` properties.
pub fn mono_us() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec for clock_gettime to fill.
    assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) }, 0);
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns: turns Docker's event times into the
/// monotonic clock.
pub fn realtime_offset_ns() -> i64 {
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    real - mono_us() as i64 * 1000
}

pub fn timed(t0: Instant, phase: &str) {
    eprintln!("[{:>6.1} s] {phase}", t0.elapsed().as_secs_f64());
}

/// The networks homelab-networks.service made, as `docker network inspect` shows them:
/// `(name, "INTERNAL SUBNET MANAGED")`, e.g. `("proxy", "false 172.20.0.0/24 true")`.
pub fn assert_networks(m: &Machine, want: &[(&str, &str)]) {
    for (net, want) in want {
        let got = m.exec_ok(&[
            "docker",
            "network",
            "inspect",
            "-f",
            r#"{{.Internal}} {{range .IPAM.Config}}{{.Subnet}}{{end}} {{index .Labels "io.hlsys.managed"}}"#,
            net,
        ]);
        assert_eq!(got.trim(), *want, "network {net}: internal, subnet, managed");
    }
}
