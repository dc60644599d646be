//! End to end: a first boot at the speed of the slowest pull. The tree
//! `tests/fixtures/trees/supervise` (panel 3 s → database 4 s → genai 3 s of health
//! delays) in a real systemd 252 machine (tests/harness/machine.sh), its images served
//! by a **real local registry** inside the machine (Debian's docker-registry, started
//! there as a service), through a proxy that slows each download
//! (tests/harness/slow-proxy.py) so that pulls take seconds. Every stack has its own
//! image (local busybox plus a generated, incompressible layer), pushed to the registry
//! and removed locally before the tree appears.
//!
//! In order:
//! 1. each image pulled alone, timed (the bound: slowest single pull + health chain);
//! 2. the serialized baseline, measured: `max_parallel_pulls = 0` turns the preparation
//!    units off, so each stack pulls and creates at its turn (the code before them);
//! 3. the same start with the preparation units (default `max_parallel_pulls = 3`, four
//!    stacks to pull: one waits for a slot): boot-to-ready against the bound and against
//!    the baseline, with a per-layer breakdown; no container starts before what its
//!    stack requires is healthy (Docker's events);
//! 4. a second start with every image present pulls nothing (Docker's `pull` events and
//!    the registry's log), and its start-to-ready against the critical path, next to
//!    the same start without preparation units (`max_parallel_pulls = 0`);
//! 5. the registry down: stacks whose images are present start; a stack whose image is
//!    missing fails its preparation with a clear status (`systemctl`, `hlsys status`),
//!    and only that stack is held back.
//!
//! Needs root, systemd-nspawn, Docker and docker-registry (skipped otherwise, failing when
//! CI=true).
mod common;
#[path = "common/e2e.rs"]
mod e2e;

use std::time::{Duration, Instant};

use common::{repo_path, require_root_and, Machine};
use e2e::{
    all_active, assert_starts_after_healthy, events, idle, journal, mono_us, now_ns, pre_boot, realtime_offset_ns,
    show, show_u64, states, timed, wait_for, with_diagnostics, Event, HOMELAB_JOURNAL,
};

const TREE: &str = "tests/fixtures/trees/supervise";
const WANTED: [&str; 4] = [
    "homelab-panel.service",
    "homelab-database.service",
    "homelab-genai-webui.service",
    "homelab-genai-embed.service",
];
/// The chain the tree starts along: (project, unit, health delay in s, image).
const CHAIN: [(&str, &str, f64, &str); 3] = [
    ("panel", WANTED[0], 3.0, "panel"),
    ("database", WANTED[1], 4.0, "database"),
    ("genai-webui", WANTED[2], 3.0, "genai"),
];
/// The containers of each layer of the chain, as the Docker floor starts them (genai's
/// two stacks start together, as their units do).
const FLOOR_LAYERS: [&str; 3] = [
    "panel-httpd-1,panel-status-1",
    "database-postgres-1,database-qdrant-1",
    "genai-webui-webui-1,genai-embed-embed-1",
];
/// (project, directory under /srv/compose) of every wanted stack.
const PROJECTS: [(&str, &str); 4] = [
    ("panel", "panel"),
    ("database", "database"),
    ("genai-webui", "genai/webui"),
    ("genai-embed", "genai/embed"),
];

/// Each connection's download rate through the proxy, bytes/s.
const RATE: u64 = 10_000_000;
/// (image, MB of generated layer, the stack's compose files): the first layer's image
/// is the largest, so the slowest pull is on the critical path and the later layers'
/// pulls have to hide under it and the health waits.
const IMAGES: [(&str, u32, &[&str]); 4] = [
    ("panel", 60, &["panel/compose.yaml", "panel/compose.override.yaml"]),
    ("database", 40, &["database/compose.yaml"]),
    ("genai", 40, &["genai/webui/compose.yaml"]),
    ("embed", 20, &["genai/embed/compose.yaml"]),
];
/// Pulled through the slow proxy; pushed straight to the registry.
const PULL_FROM: &str = "127.0.0.1:5001/e2e";
const PUSH_TO: &str = "127.0.0.1:5000/e2e";

/// Registry (port 5000) and slow proxy (5001) as transient services, then the images
/// built, pushed and removed locally.
const SETUP: &str = r#"set -euo pipefail
mkdir -p /run/e2e-registry/data
cat >/run/e2e-registry/config.yml <<EOF
version: 0.1
log: {level: info}
storage: {filesystem: {rootdirectory: /run/e2e-registry/data}, delete: {enabled: true}}
http: {addr: "127.0.0.1:5000"}
EOF
systemd-run --quiet --unit=e2e-registry /usr/bin/docker-registry serve /run/e2e-registry/config.yml
systemd-run --quiet --unit=e2e-slow-proxy /usr/bin/python3 /usr/local/lib/hlsys-e2e/slow-proxy.py 5001 5000 "$1"
for _ in $(seq 100); do curl -sf http://127.0.0.1:5000/v2/ >/dev/null && break; sleep 0.1; done
shift
while (($#)); do
  ref=$1 mb=$2; shift 2
  d=$(mktemp -d); mkdir -p "$d/bin" "$d/tmp"; chmod 1777 "$d/tmp"; cp /bin/busybox "$d/bin/"
  for a in sh sleep true echo touch test wget nc httpd cat; do ln -sf busybox "$d/bin/$a"; done
  head -c "${mb}M" /dev/urandom >"$d/payload"
  tar -C "$d" -c . | docker import - "$ref" >/dev/null
  rm -rf "$d"
  docker push -q "$ref" >/dev/null
  docker rmi -f "$ref" >/dev/null
done
"#;

fn start_registry_and_push(m: &Machine) {
    for script in ["slow-proxy.py", "docker-floor.py"] {
        m.copy_in(
            repo_path(&format!("tests/harness/{script}")),
            &format!("/usr/local/lib/hlsys-e2e/{script}"),
        );
    }
    let mut args = vec![
        "bash".to_string(),
        "-c".into(),
        SETUP.into(),
        "setup".into(),
        RATE.to_string(),
    ];
    for (name, mb, _) in IMAGES {
        args.push(format!("{PUSH_TO}/{name}:1"));
        args.push(mb.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    m.exec_ok(&args);
}

/// Each image pulled alone through the proxy, then removed: seconds per image.
fn single_pulls(m: &Machine) -> Vec<(&'static str, f64)> {
    IMAGES
        .iter()
        .map(|(name, _, _)| {
            let image = format!("{PULL_FROM}/{name}:1");
            let t = Instant::now();
            m.exec_ok(&["docker", "pull", "-q", &image]);
            let s = t.elapsed().as_secs_f64();
            m.exec_ok(&["docker", "rmi", &image]);
            (*name, s)
        })
        .collect()
}

/// The tree at /srv/compose with every stack on its own registry image, then the units.
fn install_tree(m: &Machine) {
    m.copy_in(repo_path(TREE), "/srv/compose");
    for (name, _, files) in IMAGES {
        for f in files {
            let sed = format!("s#local/busybox:latest#{PULL_FROM}/{name}:1#");
            m.exec_ok(&["sed", "-i", &sed, &format!("/srv/compose/{f}")]);
        }
    }
    m.exec_ok(&["systemctl", "daemon-reload"]);
    m.exec_ok(&["timeout", "60", "systemctl", "stop", "homelab.target"]);
}

fn set_max_parallel_pulls(m: &Machine, n: Option<u32>) {
    // A top-level key: before the first table.
    m.exec_ok(&["sed", "-i", "/^max_parallel_pulls/d", "/etc/hlsys/hlsys.toml"]);
    if let Some(n) = n {
        m.exec_ok(&[
            "sed",
            "-i",
            &format!("1i max_parallel_pulls = {n}"),
            "/etc/hlsys/hlsys.toml",
        ]);
    }
}

fn stop_all(m: &Machine) {
    m.exec_ok(&["timeout", "120", "systemctl", "stop", "homelab.target"]);
    wait_for("every stack stopped", Duration::from_secs(60), || {
        states(m, &WANTED) == ["inactive"; 4] && idle(m)
    });
}

fn remove_images(m: &Machine, names: &[&str]) {
    for name in names {
        let image = format!("{PULL_FROM}/{name}:1");
        let _ = m.exec(&["docker", "rmi", "-f", &image]);
        let (st, _, _) = m.exec(&["docker", "image", "inspect", &image]);
        assert!(!st.success(), "{image} still present");
    }
}

/// `systemctl start homelab.target`: seconds from the call until every wanted stack was
/// active, and the per-layer breakdown.
fn start_and_measure(m: &Machine) -> (f64, String) {
    let offset = realtime_offset_ns();
    let t0 = mono_us();
    m.exec_ok(&["timeout", "300", "systemctl", "start", "homelab.target"]);
    assert!(all_active(m, &WANTED), "wanted stacks: {:?}", states(m, &WANTED));
    let ready = WANTED
        .iter()
        .map(|u| show_u64(m, u, "ActiveEnterTimestampMonotonic"))
        .max()
        .unwrap();
    assert!(ready > t0, "a stack was active before the start");
    ((ready - t0) as f64 / 1e6, breakdown(m, &events(m), t0, offset))
}

/// Per layer of the chain, in ms from the start: the preparation (pull and create) from
/// its start to its end (`-`: the stack has no preparation unit, its supervisor prepares);
/// its image pulled (Docker's `pull` event; `-`: present); the stack's main process
/// started (after the previous layer was ready and its preparation done); its first
/// container started; its last healthy; the unit ready.
fn breakdown(m: &Machine, evs: &[Event], t0: u64, offset: i64) -> String {
    let at = |unit: &str, prop: &str| (show_u64(m, unit, prop) as f64 - t0 as f64) / 1000.0;
    let mono = |ns: i64| ((ns - offset) as f64 / 1000.0 - t0 as f64) / 1000.0;
    let since = t0 as i64 * 1000 + offset;
    let mut rows = String::new();
    for (project, unit, delay, image) in CHAIN {
        let prep = unit.replace(".service", "-prepare.service");
        let mine = |action: &str| {
            evs.iter()
                .filter(|e| e.ns >= since && e.kind == "container" && e.project == project && e.action == action)
                .map(|e| mono(e.ns))
                .collect::<Vec<f64>>()
        };
        let started = mine("start").into_iter().fold(f64::MAX, f64::min);
        let healthy = mine("health_status: healthy").into_iter().fold(0.0, f64::max);
        // Docker names the image without its tag in a pull event's attributes.
        let reference = format!("{PULL_FROM}/{image}");
        let pulled = evs
            .iter()
            .find(|e| e.ns >= since && e.kind == "image" && e.action == "pull" && e.name == reference)
            .map_or("     -".to_string(), |e| format!("{:>6.0}", mono(e.ns)));
        // The preparation is "active" when it is done (RemainAfterExit); when the units
        // are off (max_parallel_pulls = 0) it ends at once.
        let prepare = if show(m, &prep, "LoadState") == "loaded" {
            format!(
                "{:>6.0}..{:>6.0}",
                at(&prep, "ExecMainStartTimestampMonotonic"),
                at(&prep, "ActiveEnterTimestampMonotonic")
            )
        } else {
            format!("{:>14}", "-")
        };
        rows += &format!(
            "  {project:<12} prepare {prepare}  pulled {pulled}  exec {:>6.0}  first start {:>6.0}  healthy {:>6.0} (delay {:>4.0})  ready {:>6.0}\n",
            at(unit, "ExecMainStartTimestampMonotonic"),
            started,
            healthy,
            delay * 1000.0,
            at(unit, "ActiveEnterTimestampMonotonic"),
        );
    }
    rows
}

/// The promise on Docker's clock: no database container starts before both panel
/// containers are healthy, no genai container before both database containers are.
fn assert_order(evs: &[Event], since: i64) {
    let panel = [("panel", "panel-httpd-1"), ("panel", "panel-status-1")];
    let db = [("database", "database-postgres-1"), ("database", "database-qdrant-1")];
    assert_starts_after_healthy(evs, since, &panel, &["database"]);
    assert_starts_after_healthy(evs, since, &db, &["genai-webui", "genai-embed"]);
}

/// Requests for the e2e images the registry logged so far.
fn registry_requests(m: &Machine) -> usize {
    journal(m, "e2e-registry.service")
        .lines()
        .filter(|l| l.contains("/v2/e2e/"))
        .count()
}

/// The journal of every stack's preparation unit and of every stack unit (a stack with no
/// preparation unit prepares in its own start), one after the other.
fn prepare_journals(m: &Machine) -> String {
    WANTED
        .iter()
        .flat_map(|u| [journal(m, &u.replace(".service", "-prepare.service")), journal(m, u)])
        .collect()
}

/// The Docker floor of the chain (tests/harness/docker-floor.py): every stack's containers
/// created by `docker compose create`, then each layer's started over the Engine API the
/// moment the layer before is healthy, with nothing of systemd, hlsys or Compose on the
/// way. Returns its seconds and its per-layer rows; removes the containers again.
fn docker_floor(m: &Machine) -> (f64, String) {
    for (project, dir) in PROJECTS {
        m.exec_ok(&[
            "sh",
            "-c",
            &format!("cd /srv/compose/{dir} && docker compose -p {project} create --pull never"),
        ]);
    }
    let mut args = vec!["python3", "/usr/local/lib/hlsys-e2e/docker-floor.py"];
    args.extend(FLOOR_LAYERS);
    let out = m.exec_ok(&args);
    for (project, dir) in PROJECTS {
        m.exec_ok(&[
            "sh",
            "-c",
            &format!("cd /srv/compose/{dir} && docker compose -p {project} down"),
        ]);
    }
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("floor output {out:?}: {e}"));
    let secs = v["seconds"].as_f64().expect("seconds");
    let mut rows = String::new();
    for (layer, r) in FLOOR_LAYERS.iter().zip(v["layers"].as_array().expect("layers")) {
        let ms = |i: usize| r[i].as_f64().unwrap_or_default() * 1000.0;
        rows += &format!(
            "  {layer:<40} start called {:>6.0}  answered {:>6.0}  healthy {:>6.0}\n",
            ms(0),
            ms(1),
            ms(2)
        );
    }
    (secs, rows)
}

#[test]
fn first_boot_pulls_in_parallel_and_starts_in_order() {
    if !require_root_and(&["systemd-nspawn", "nsenter", "docker", "dockerd", "docker-registry"]) {
        return;
    }
    let t0 = Instant::now();
    let pre = pre_boot(TREE, false, &[]);
    let m = Machine::start("hlsys-e2e-prepare", Some(&pre));
    let extra: [&[&str]; 3] = [
        HOMELAB_JOURNAL,
        &[
            "journalctl",
            "-b",
            "--no-pager",
            "-n",
            "50",
            "-u",
            "e2e-registry",
            "-u",
            "e2e-slow-proxy",
        ],
        &["docker", "images"],
    ];
    with_diagnostics(&m, &extra, || {
        m.wait_docker();
        start_registry_and_push(&m);
        timed(t0, "registry up, images pushed and removed locally");
        first_boot(&m, t0);
        second_start_pulls_nothing(&m, t0);
        registry_down(&m, t0);
    });
    drop(m);
    timed(t0, "machine stopped");
}

fn first_boot(m: &Machine, t0: Instant) {
    let pulls = single_pulls(m);
    let (slowest_name, slowest) = pulls
        .iter()
        .cloned()
        .fold(("", 0.0), |a, b| if b.1 > a.1 { b } else { a });
    let per_image: Vec<String> = pulls.iter().map(|(n, s)| format!("{n} {s:.2} s")).collect();
    eprintln!(
        "pulls alone (each image through the proxy at {} MB/s): {}",
        RATE / 1_000_000,
        per_image.join(", ")
    );
    install_tree(m);
    let health: f64 = CHAIN.iter().map(|c| c.2).sum();
    let bound = slowest + health;

    // The serialized baseline: no preparation units at work.
    set_max_parallel_pulls(m, Some(0));
    let (serial, serial_rows) = start_and_measure(m);
    eprintln!("serialized (max_parallel_pulls = 0), ms from the start:\n{serial_rows}");
    stop_all(m);
    remove_images(m, &IMAGES.map(|i| i.0));
    timed(t0, "measured the serialized baseline");

    set_max_parallel_pulls(m, None);
    let since = now_ns(m);
    let (took, rows) = start_and_measure(m);
    eprintln!(
        "MEASURE boot-to-ready (images missing, registry at {} MB/s a download): {took:.2} s; bound = slowest single pull \
         ({slowest_name} {slowest:.2} s) + critical path of health delays {health:.1} s = {bound:.2} s; ratio {:.3} \
         (goal <= 1.10); serialized baseline (max_parallel_pulls = 0, measured) {serial:.2} s, ratio to it {:.3}\n  \
         per layer, ms from the start:\n{rows}",
        RATE / 1_000_000,
        took / bound,
        took / serial,
    );
    assert_order(&events(m), since);
    // The first layer waits for nothing: no preparation unit, its supervisor pulled.
    assert_eq!(show(m, "homelab-panel-prepare.service", "LoadState"), "not-found");
    let panel = journal(m, WANTED[0]);
    assert!(
        panel.contains("looking for missing images") && panel.contains("pulling "),
        "panel's supervisor did not pull its missing image:\n{panel}"
    );
    let prep = prepare_journals(m);
    assert!(
        prep.contains("waiting for a pull slot"),
        "four stacks to pull and three slots, but none waited:\n{prep}"
    );
    assert!(
        prep.lines().any(|l| l.contains("pulling ") && l.contains(" MB")),
        "no pull progress with sizes:\n{prep}"
    );
    assert!(
        took < serial,
        "parallel preparation ({took:.2} s) is not faster than serialized ({serial:.2} s)"
    );
    assert!(took / bound < 1.5, "boot-to-ready is {:.2} × the bound", took / bound);
    timed(t0, "measured boot-to-ready with the preparation units");
}

fn second_start_pulls_nothing(m: &Machine, t0: Instant) {
    stop_all(m);
    // What Docker alone takes for this chain, on this machine, right before.
    let (floor, floor_rows) = docker_floor(m);
    let since = now_ns(m);
    let requests = registry_requests(m);
    let (took, rows) = start_and_measure(m);
    let health: f64 = CHAIN.iter().map(|c| c.2).sum();
    eprintln!(
        "MEASURE start-to-ready (images present, containers created by the preparation units): {took:.2} s; critical \
         path {health:.1} s; ratio {:.3} (target <= 1.10)\n  per layer, ms from the start:\n{rows}\
         MEASURE Docker floor of the same chain (containers created, each layer started over the Engine API the moment \
         the one before is healthy; no systemd, hlsys or Compose): {floor:.2} s; ratio {:.3} to the critical path; \
         hlsys's start-to-ready is {:.3} x the floor ({:+.0} ms)\n  per layer, ms from the first start call:\n{floor_rows}",
        took / health,
        floor / health,
        took / floor,
        (took - floor) * 1000.0,
    );
    let evs = events(m);
    let pulls: Vec<&Event> = evs
        .iter()
        .filter(|e| e.ns >= since && e.kind == "image" && e.action == "pull")
        .collect();
    assert!(pulls.is_empty(), "images pulled although all were present: {pulls:?}");
    assert_eq!(registry_requests(m), requests, "the registry was asked for images");
    assert_order(&events(m), since);
    // The same start on the path before the preparation units, under the same load.
    stop_all(m);
    set_max_parallel_pulls(m, Some(0));
    let (old, old_rows) = start_and_measure(m);
    set_max_parallel_pulls(m, None);
    eprintln!(
        "MEASURE start-to-ready without preparation (max_parallel_pulls = 0: create and start at each turn): \
         {old:.2} s; ratio {:.3}\n  per layer, ms from the start:\n{old_rows}",
        old / health
    );
    timed(t0, "second start: nothing pulled");
}

fn registry_down(m: &Machine, t0: Instant) {
    m.exec_ok(&["systemctl", "stop", "e2e-slow-proxy.service", "e2e-registry.service"]);
    stop_all(m);
    remove_images(m, &["embed"]);
    let embed = WANTED[3];
    let embed_prep = "homelab-genai-embed-prepare.service";
    // The target's job succeeds (its layers only want their stacks), whatever embed does.
    let _ = m.exec(&["timeout", "120", "systemctl", "start", "homelab.target"]);
    wait_for("every other stack active", Duration::from_secs(60), || {
        all_active(m, &WANTED[..3]) && idle(m)
    });
    assert_eq!(show(m, embed_prep, "ActiveState"), "failed");
    assert_eq!(show(m, embed, "ActiveState"), "inactive");
    let status = show(m, embed_prep, "StatusText");
    assert_eq!(
        status,
        "failed: genai-embed: cannot pull the images of embed (registry unreachable)",
        "{embed_prep} StatusText\n{}",
        journal(m, embed_prep)
    );
    let (_, out, _) = m.exec(&["hlsys", "status", "genai-embed"]);
    assert!(
        out.contains(&format!("prepare ({embed_prep}): failed {status}")),
        "hlsys status does not say why:\n{out}"
    );
    timed(
        t0,
        "registry down: present images start, the missing one fails its stack alone",
    );
}
