//! End to end: hlsys owns the restarts of the stacks it runs, on a tree written the way
//! homelab trees are (`tests/fixtures/trees/restart`: every service `restart:
//! unless-stopped`, one `restart: always`), in a real systemd 252 booted as PID 1 with
//! docker.service inside (tests/harness/machine.sh) whose /var/lib/docker is a real
//! directory (DOCKER_STATE), so it outlives a power cut. Layers panel → database → genai
//! (genai requires database), each container healthy about 2 s after it starts.
//!
//! One machine, in order:
//! 1. migration: booted without /etc/hlsys/hlsys.toml (no hlsys unit), the stacks are
//!    started with a plain `docker compose up -d` in each stack directory (project =
//!    directory = stack id) and a marker is written into the database's named volume;
//!    then the config is installed and `systemctl start homelab.target` takes them over:
//!    the same containers (ids), none created or removed, every one with Docker restart
//!    policy "no", the marker kept, and `docker compose config` still saying what the
//!    files say. A nested stack (media/player: hlsys project media-player) whose
//!    directory already has the containers of a plain `docker compose up -d` (project
//!    player) is refused, naming that project, and no second copy is created;
//! 2. power cut (SIGKILL of PID 1, no shutdown) and boot: judged on this boot's Docker
//!    events, dockerd starts no container of a stack by itself (while the plain player
//!    container, which kept its policy, is started by dockerd: the recorder does see such
//!    starts), no database container starts before panel's is healthy, no genai container
//!    before database's are; every stack is up with the same containers and the marker;
//!    the timeline is printed (`MEASURE`, `TIMELINE` lines);
//! 3. `systemctl restart docker.service`: the stacks go down with Docker and come back in
//!    order, none left failed;
//! 4. the `restart: always` container's main process is killed (SIGKILL from inside the
//!    machine, not through Docker): the supervisor starts that container again after its
//!    back-off, healthy within 30 s, with no other container touched and no stack restart
//!    (same InvocationID, NRestarts), and the unit's status and `hlsys status --json`
//!    show the restart.
//!
//! A container whose policy does not restart it (`restart: "no"`) failing its stack is
//! tests/e2e_supervise.rs's step 5.
//!
//! Needs root, systemd-nspawn and Docker (skipped otherwise, failing when CI=true). On
//! failure it prints the units' status, the journal, the containers and the console log;
//! the machine is stopped, and its Docker state removed, in any case.
mod common;
#[path = "common/e2e.rs"]
mod e2e;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{require_root_and, Machine};
use e2e::{
    all_active, assert_starts_after_healthy, containers, events, first_event, idle, journal, now_ns, pre_boot,
    project_containers, realtime_offset_ns, show, show_u64, states, timed, wait_for, with_diagnostics, Event,
    HOMELAB_JOURNAL,
};

const TREE: &str = "tests/fixtures/trees/restart";
/// Where the machine keeps the config until the migration installs it.
const LATER_CONFIG: &str = "/usr/local/lib/hlsys-e2e/hlsys.toml";

const PANEL: &str = "homelab-panel.service";
const DATABASE: &str = "homelab-database.service";
const GENAI: &str = "homelab-genai.service";
const PLAYER: &str = "homelab-media-player.service";

/// The stack units homelab.target starts, in start order, and their projects (= stack
/// ids = the directories' names, as a plain `docker compose` names them).
const WANTED: [&str; 3] = [PANEL, DATABASE, GENAI];
const PROJECTS: [&str; 3] = ["panel", "database", "genai"];
/// Their containers, all with a healthcheck.
const CONTAINERS: [&str; 4] = [
    "panel-httpd-1",
    "database-postgres-1",
    "database-cache-1",
    "genai-webui-1",
];
/// The service with `restart: always`, killed in step 4, and its container.
const KILLED_SERVICE: &str = "cache";
const KILLED: &str = "database-cache-1";
/// The plain Compose project of the nested stack media/player (hlsys's is media-player).
const PLAIN_NESTED: &str = "player";
/// The restart delay of every stack unit (core/src/units/stacks.rs).
const RESTART_SEC: Duration = Duration::from_secs(5);

fn bash(m: &Machine, script: &str) -> String {
    m.exec_ok(&["bash", "-c", script])
}

/// Every container of `project`: name → Docker restart policy (HostConfig.RestartPolicy).
fn restart_policies(m: &Machine, project: &str) -> BTreeMap<String, String> {
    let ids: Vec<String> = project_containers(m, project).into_values().collect();
    if ids.is_empty() {
        return BTreeMap::new();
    }
    let mut args = vec![
        "docker",
        "inspect",
        "-f",
        "{{.Name}} {{.HostConfig.RestartPolicy.Name}}",
    ];
    args.extend(ids.iter().map(String::as_str));
    m.exec_ok(&args)
        .lines()
        .filter_map(|l| l.trim().trim_start_matches('/').split_once(' '))
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .collect()
}

/// Every container of the stacks has Docker restart policy "no": dockerd never starts
/// one on its own.
fn assert_policies_no(m: &Machine, when: &str) {
    for p in PROJECTS {
        let pol = restart_policies(m, p);
        assert!(!pol.is_empty(), "{when}: no container of {p}");
        assert!(
            pol.values().all(|v| v == "no"),
            "{when}: containers of {p} with a Docker restart policy: {pol:?}"
        );
    }
}

/// The containers of every stack: project → (name → id).
fn stack_ids(m: &Machine) -> BTreeMap<&'static str, BTreeMap<String, String>> {
    PROJECTS.iter().map(|p| (*p, project_containers(m, p))).collect()
}

/// The policies the user's files declare, as the user's `docker compose config` reads
/// them in the stack directory: service → `restart`.
fn declared_restart(m: &Machine, dir: &str) -> BTreeMap<String, String> {
    let out = bash(
        m,
        &format!("cd /srv/compose/{dir} && docker compose config --format json"),
    );
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("compose config of {dir}: {e}\n{out}"));
    v["services"]
        .as_object()
        .unwrap_or_else(|| panic!("compose config of {dir} without services: {out}"))
        .iter()
        .map(|(s, d)| (s.clone(), d["restart"].as_str().unwrap_or_default().to_string()))
        .collect()
}

/// `docker compose config` as the user runs it is untouched: the files' policies.
fn assert_declared_untouched(m: &Machine) {
    let want = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(s, r)| (s.to_string(), r.to_string())).collect()
    };
    assert_eq!(declared_restart(m, "panel"), want(&[("httpd", "unless-stopped")]));
    assert_eq!(
        declared_restart(m, "database"),
        want(&[("cache", "always"), ("postgres", "unless-stopped")])
    );
    assert_eq!(declared_restart(m, "genai"), want(&[("webui", "unless-stopped")]));
}

fn marker(m: &Machine) -> String {
    m.exec_ok(&["docker", "exec", "database-postgres-1", "cat", "/data/marker"])
        .trim()
        .to_string()
}

/// Every wanted stack active, every container of theirs up and healthy.
fn assert_all_up(m: &Machine) {
    assert!(all_active(m, &WANTED), "wanted stacks: {:?}", states(m, &WANTED));
    let c = containers(m);
    for name in CONTAINERS {
        let status = c
            .get(name)
            .unwrap_or_else(|| panic!("container {name} is not running: {c:?}"));
        assert!(
            status.starts_with("Up") && status.contains("(healthy)"),
            "{name}: {status}"
        );
    }
}

fn all_up_and_idle(m: &Machine) -> bool {
    all_active(m, &WANTED) && idle(m)
}

/// The promise on Docker's clock, for what happened at or after `since` (ns): no database
/// container starts before panel's is healthy, no genai container before both database
/// containers are. Returns ((panel healthy, database started), (database healthy, genai
/// started)).
fn assert_layer_order(evs: &[Event], since: i64) -> ((i64, i64), (i64, i64)) {
    let panel = assert_starts_after_healthy(evs, since, &[("panel", "panel-httpd-1")], &["database"]);
    let db = assert_starts_after_healthy(
        evs,
        since,
        &[("database", "database-postgres-1"), ("database", "database-cache-1")],
        &["genai"],
    );
    (panel, db)
}

/// Whether `text` names `word` on its own: not inside a longer name such as
/// `media-player`, `player-player-1` or a path `…/media/player`.
fn names_alone(text: &str, word: &str) -> bool {
    let part = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| part(c) || c == '/') && !after.is_some_and(part)
    })
}

/// Container events other than health probes (`exec_*`), for the timeline.
fn container_events(evs: &[Event], since: i64) -> Vec<&Event> {
    evs.iter()
        .filter(|e| e.ns >= since && e.kind == "container" && !e.action.starts_with("exec_"))
        .collect()
}

/// Docker's own account of the second boot: per stack the first start and first healthy
/// event, in ms since the first event of the boot, then every container event.
fn print_boot_timeline(evs: &[Event], units_at: &[(&str, i64)]) {
    let first = evs.iter().map(|e| e.ns).min().expect("events of the boot");
    let ms = |ns: i64| (ns - first) as f64 / 1e6;
    for p in PROJECTS {
        let start = first_event(evs, 0, p, "start", "").expect("start");
        let healthy = evs
            .iter()
            .filter(|e| e.kind == "container" && e.project == p && e.action == "health_status: healthy")
            .map(|e| e.ns)
            .max()
            .expect("healthy");
        let unit = units_at
            .iter()
            .find(|(u, _)| *u == p)
            .map(|(_, t)| ms(*t))
            .unwrap_or(f64::NAN);
        eprintln!(
            "MEASURE second boot (ms since its first Docker event): {p:<9} unit started +{unit:>7.0}  first start +{:>7.0}  healthy +{:>7.0}",
            ms(start),
            ms(healthy)
        );
    }
    for e in container_events(evs, 0) {
        let exit = e.exit_code.map(|c| format!(" (exit {c})")).unwrap_or_default();
        eprintln!(
            "TIMELINE +{:>7.0} ms  {:<9} {:<22} {}{exit}",
            ms(e.ns),
            e.project,
            e.name,
            e.action
        );
    }
}

/// Looks through `hlsys status --json` for the restarts list of `service`: its count and
/// last exit code.
fn status_restarts(v: &serde_json::Value, service: &str) -> Option<(u64, i64)> {
    match v {
        serde_json::Value::Object(o) => {
            if let Some(serde_json::Value::Array(rs)) = o.get("restarts") {
                for r in rs {
                    if r["service"] == service {
                        return Some((r["count"].as_u64()?, r["last_exit"].as_i64()?));
                    }
                }
            }
            o.values().find_map(|x| status_restarts(x, service))
        }
        serde_json::Value::Array(a) => a.iter().find_map(|x| status_restarts(x, service)),
        _ => None,
    }
}

/// A unit's start of its main process on Docker's clock (ns since the epoch).
fn main_start_ns(m: &Machine, unit: &str, offset: i64) -> i64 {
    show_u64(m, unit, "ExecMainStartTimestampMonotonic") as i64 * 1000 + offset
}

#[test]
fn hlsys_owns_restarts_through_migration_power_cut_and_deaths() {
    if !require_root_and(&["systemd-nspawn", "nsenter", "docker", "dockerd"]) {
        return;
    }
    let t0 = Instant::now();
    // The machine boots without a config (the generator writes no unit: hlsys installed,
    // not yet configured); the config waits at LATER_CONFIG.
    let pre = format!(
        "{}install -D -m644 \"$ROOT/etc/hlsys/hlsys.toml\" \"$ROOT{LATER_CONFIG}\" && rm \"$ROOT/etc/hlsys/hlsys.toml\"\n",
        pre_boot(TREE, true, &[])
    );
    timed(t0, "binaries built");
    // Docker's state on a real filesystem (overlay2 cannot sit on the machine's overlay);
    // removed with the machine.
    let state = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-restart-docker-{}", std::process::id()));
    let m = Machine::start_with_state("hlsys-e2e-restart", Some(&pre), &state);
    timed(t0, "booted without a config");
    let extra: [&[&str]; 4] = [
        HOMELAB_JOURNAL,
        &["cat", "/run/e2e-docker-events.jsonl"],
        &["hlsys", "status"],
        &["bash", "-c", "docker inspect -f '{{.Name}} {{.HostConfig.RestartPolicy.Name}} {{.State.Status}} {{.RestartCount}}' $(docker ps -aq)"],
    ];
    with_diagnostics(&m, &extra, || {
        // 1. Migration: the stacks run under plain `docker compose up -d`, then hlsys.
        m.wait_docker();
        assert_eq!(
            show(&m, "homelab.target", "LoadState"),
            "not-found",
            "hlsys units before the config"
        );
        for dir in ["panel", "database", "genai", "media/player"] {
            bash(&m, &format!("cd /srv/compose/{dir} && docker compose up -d --wait"));
        }
        let by_hand = stack_ids(&m);
        for (p, c) in &by_hand {
            assert!(!c.is_empty(), "plain compose started nothing of {p}");
        }
        let nested = project_containers(&m, PLAIN_NESTED);
        assert_eq!(nested.len(), 1, "plain compose in media/player: {nested:?}");
        // Docker's policies as the files say: what hlsys has to take over.
        assert_eq!(restart_policies(&m, "database")[KILLED], "always");
        assert_eq!(restart_policies(&m, "panel")["panel-httpd-1"], "unless-stopped");
        m.exec_ok(&[
            "docker",
            "exec",
            "database-postgres-1",
            "sh",
            "-c",
            "echo kept > /data/marker",
        ]);
        timed(t0, "stacks up under plain docker compose");

        let since = now_ns(&m);
        bash(&m, &format!("install -m644 {LATER_CONFIG} /etc/hlsys/hlsys.toml"));
        m.exec_ok(&["systemctl", "daemon-reload"]);
        m.exec_ok(&["timeout", "120", "systemctl", "start", "homelab.target"]);
        wait_for("every stack active after the takeover", Duration::from_secs(60), || {
            all_up_and_idle(&m)
        });
        assert_all_up(&m);
        assert_eq!(stack_ids(&m), by_hand, "the takeover replaced or added containers");
        let evs = events(&m);
        for action in ["create", "destroy"] {
            let bad: Vec<_> = container_events(&evs, since)
                .into_iter()
                .filter(|e| e.action == action)
                .map(|e| e.name.clone())
                .collect();
            assert!(bad.is_empty(), "the takeover made {action} events: {bad:?}");
        }
        let restarted: Vec<_> = container_events(&evs, since)
            .into_iter()
            .filter(|e| e.action == "die" || e.action == "start")
            .map(|e| format!("{} {}", e.name, e.action))
            .collect();
        eprintln!("takeover: container die/start events: {restarted:?}");
        assert_policies_no(&m, "after the takeover");
        assert_declared_untouched(&m);
        assert_eq!(marker(&m), "kept", "the volume's data after the takeover");
        timed(t0, "taken over: same containers, policies \"no\", marker kept");

        // The nested stack: its directory holds another project's containers.
        let (status, out, err) = m.exec(&["timeout", "90", "hlsys", "start", "media-player"]);
        let log = journal(&m, PLAYER);
        let said = format!("{out}{err}\n{log}");
        eprintln!("hlsys start media-player: {status}\n{out}{err}");
        assert!(!status.success(), "hlsys start media-player succeeded:\n{said}");
        assert_ne!(status.code(), Some(124), "hlsys start media-player hung:\n{said}");
        assert!(
            names_alone(&said, PLAIN_NESTED),
            "the refusal does not name project {PLAIN_NESTED}:\n{said}"
        );
        m.exec_ok(&["timeout", "60", "systemctl", "stop", PLAYER]);
        let _ = m.exec(&["systemctl", "reset-failed", PLAYER]);
        assert_eq!(
            project_containers(&m, "media-player").len(),
            0,
            "a second copy of the nested stack"
        );
        assert_eq!(
            project_containers(&m, PLAIN_NESTED),
            nested,
            "the refused start touched the other project's containers"
        );
        // Not hlsys's: its policy stays, so dockerd starts it after the power cut below.
        assert_eq!(restart_policies(&m, PLAIN_NESTED)["player-player-1"], "unless-stopped");
        timed(t0, "nested stack with another project's containers: refused");

        // 2. Power cut, and the boot after it.
        let before = stack_ids(&m);
        m.crash();
        timed(t0, "power cut");
        m.boot();
        timed(t0, "booted again");
        m.wait_docker();
        wait_for(
            "every stack active after the power cut",
            Duration::from_secs(90),
            || all_up_and_idle(&m),
        );
        assert_all_up(&m);
        let offset = realtime_offset_ns();
        let evs = events(&m);
        let units_at: Vec<(&str, i64)> = PROJECTS
            .iter()
            .zip(WANTED)
            .map(|(p, u)| (*p, main_start_ns(&m, u, offset)))
            .collect();
        print_boot_timeline(&evs, &units_at);
        // The recorder sees what dockerd starts by itself while it restores: the plain
        // player container, which kept its policy.
        assert!(
            first_event(&evs, 0, PLAIN_NESTED, "start", "").is_some(),
            "dockerd did not start the plain player container (restart: unless-stopped) after \
             the power cut, or the recorder missed it: {:?}",
            container_events(&evs, 0)
        );
        for (u, (p, at)) in WANTED.iter().zip(&units_at) {
            assert_eq!(show(&m, u, "NRestarts"), "0", "{u} failed once after the power cut");
            let started = first_event(&evs, 0, p, "start", "").expect("start");
            assert!(
                started > *at,
                "a container of {p} started {} ms before {u} did: dockerd started it by itself",
                (at - started) / 1_000_000
            );
        }
        let ((panel_healthy, db_started), (db_healthy, genai_started)) = assert_layer_order(&evs, 0);
        eprintln!(
            "MEASURE second boot order: database started {} ms after panel healthy, genai {} ms after database healthy",
            (db_started - panel_healthy) / 1_000_000,
            (genai_started - db_healthy) / 1_000_000
        );
        assert_eq!(stack_ids(&m), before, "the containers after the power cut");
        assert_policies_no(&m, "after the power cut");
        assert_eq!(marker(&m), "kept", "the volume's data after the power cut");
        timed(t0, "after the power cut: in order, same containers, marker kept");

        // 3. Docker restarts while the stacks run.
        let inv = |u: &str| show(&m, u, "InvocationID");
        let before: Vec<String> = WANTED.iter().map(|u| inv(u)).collect();
        let since = now_ns(&m);
        let restarted = Instant::now();
        m.exec_ok(&["timeout", "120", "systemctl", "restart", "docker.service"]);
        wait_for(
            "every stack back after Docker restarted",
            Duration::from_secs(90),
            || all_up_and_idle(&m),
        );
        eprintln!(
            "MEASURE every stack back {:.1} s after `systemctl restart docker.service`",
            restarted.elapsed().as_secs_f64()
        );
        for (u, b) in WANTED.iter().zip(&before) {
            assert_ne!(&inv(u), b, "{u} was not restarted with Docker");
        }
        assert_all_up(&m);
        assert_eq!(show(&m, "homelab.target", "ActiveState"), "active");
        let failed = m.exec_ok(&["systemctl", "--failed", "--no-legend", "--plain", "--no-pager"]);
        eprintln!("systemctl --failed after the Docker restart: {:?}", failed.trim());
        assert!(
            !failed.lines().any(|l| l.contains("homelab")),
            "units left failed after the Docker restart:\n{failed}"
        );
        assert_layer_order(&events(&m), since);
        assert_policies_no(&m, "after the Docker restart");
        timed(t0, "docker restarted: every stack back, in order");

        // 4. The `restart: always` container dies: the supervisor starts it again.
        let nrestarts = |u: &str| show(&m, u, "NRestarts");
        let invocations: Vec<String> = WANTED.iter().map(|u| inv(u)).collect();
        let nrs: Vec<String> = WANTED.iter().map(|u| nrestarts(u)).collect();
        let killed_id = project_containers(&m, "database")[KILLED].clone();
        let since = now_ns(&m);
        bash(
            &m,
            &format!("kill -9 $(docker inspect -f '{{{{.State.Pid}}}}' {KILLED})"),
        );
        let killed = Instant::now();
        wait_for(&format!("{KILLED} to die"), Duration::from_secs(10), || {
            first_event(&events(&m), since, "database", "die", KILLED).is_some()
        });
        let inspect = || {
            m.exec_ok(&[
                "docker",
                "inspect",
                "-f",
                "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                KILLED,
            ])
            .trim()
            .to_string()
        };
        wait_for(
            &format!("{KILLED} running and healthy again"),
            Duration::from_secs(30),
            || first_event(&events(&m), since, "database", "start", KILLED).is_some() && inspect() == "running healthy",
        );
        let back = killed.elapsed();
        let want_status = format!("restarted: {KILLED_SERVICE} 1 (exit 137)");
        wait_for(
            "the stack's status to show the restart",
            Duration::from_secs(10),
            || show(&m, DATABASE, "StatusText").contains(&want_status),
        );
        // A stack restart (the supervisor exiting) would have happened by now.
        std::thread::sleep(RESTART_SEC + Duration::from_secs(1));
        let evs = events(&m);
        let mine = container_events(&evs, since);
        let of = |action: &str| -> Vec<&Event> { mine.iter().copied().filter(|e| e.action == action).collect() };
        let names = |v: &[&Event]| -> Vec<String> { v.iter().map(|e| e.name.clone()).collect() };
        let (dies, starts) = (of("die"), of("start"));
        assert_eq!(names(&dies), [KILLED], "die events since the kill: {mine:?}");
        assert_eq!(dies[0].exit_code, Some(137), "exit code of {KILLED}");
        assert_eq!(names(&starts), [KILLED], "start events since the kill: {mine:?}");
        for action in ["create", "destroy", "stop", "kill"] {
            assert!(of(action).is_empty(), "{action} events since the kill: {mine:?}");
        }
        let delay_ms = (starts[0].ns - dies[0].ns) / 1_000_000;
        eprintln!(
            "MEASURE {KILLED} killed: started again {delay_ms} ms after its death (back-off 500 ms), \
             healthy {:.1} s after the kill",
            back.as_secs_f64()
        );
        assert!(
            delay_ms >= 400,
            "started again {delay_ms} ms after its death: no back-off"
        );
        assert_eq!(
            project_containers(&m, "database")[KILLED],
            killed_id,
            "the container was replaced"
        );
        let docker_view = m.exec_ok(&[
            "docker",
            "inspect",
            "-f",
            "{{.RestartCount}} {{.HostConfig.RestartPolicy.Name}}",
            KILLED,
        ]);
        assert_eq!(
            docker_view.trim(),
            "0 no",
            "Docker's own restart count and policy of {KILLED}"
        );
        for (i, u) in WANTED.iter().enumerate() {
            assert_eq!(inv(u), invocations[i], "{u} was restarted");
            assert_eq!(nrestarts(u), nrs[i], "{u} NRestarts");
        }
        assert_all_up(&m);
        let status_text = show(&m, DATABASE, "StatusText");
        eprintln!("{DATABASE} StatusText: {status_text:?}");
        let st = m.exec_ok(&["hlsys", "status", "--json"]);
        let v: serde_json::Value =
            serde_json::from_str(&st).unwrap_or_else(|e| panic!("hlsys status --json ({e}):\n{st}"));
        assert_eq!(
            status_restarts(&v, KILLED_SERVICE),
            Some((1, 137)),
            "the restarts of {KILLED_SERVICE} in hlsys status --json:\n{st}"
        );
        timed(
            t0,
            "killed container started again by the supervisor, nothing else touched",
        );
    });
    drop(m);
    timed(t0, "machine stopped");
}
