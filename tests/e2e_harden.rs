//! End to end, in a real systemd 252 booted as PID 1 with docker.service inside
//! (tests/harness/machine.sh), on the tree `tests/fixtures/trees/harden`: the hardening of
//! issue 12 kept by the generated units.
//!
//! One machine, in order:
//! 1. boot: the stack `app-web` comes up under its sandbox (core/src/units/sandbox.rs);
//! 2. `systemd-analyze security` of the stack unit and of each oneshot: the figures are
//!    printed, and each is "OK" or better (exposure ≤ 4.0);
//! 3. a user outside the docker group (no Docker socket) sees the stack's health with
//!    `hlsys status --json`, from the supervisor's STATUS= alone;
//! 4. pausing a container, then unpausing it, updates STATUS= each time (`ready: 2/3
//!    healthy, worker paused`, then `ready: 3/3 healthy`);
//! 5. the stack's `.env` broken after start: `systemctl stop` still removes its
//!    containers (`docker compose -p app-web down`), and the journal says so.
//!
//! Needs root, systemd-nspawn and Docker (skipped otherwise, failing when CI=true).
mod common;
#[path = "common/e2e.rs"]
mod e2e;

use std::time::Duration;

use common::{require_root_and, Machine};
use e2e::{all_active, journal, pre_boot, project_containers, states, wait_for, with_diagnostics};

const TREE: &str = "tests/fixtures/trees/harden";
const WEB: &str = "homelab-app-web.service";
/// Every generated service this tree has, each with its sandbox.
const ASSESSED: [&str; 3] = [WEB, "homelab-networks.service", "homelab-gpu.service"];
/// "OK" in systemd-analyze's words: an exposure of at most this.
const MAX_EXPOSURE: f64 = 4.0;

/// The figure and verdict of `systemd-analyze security UNIT`'s last line
/// (`→ Overall exposure level for UNIT: 2.1 OK 🙂`).
fn exposure(analysis: &str) -> Option<(f64, String)> {
    let line = analysis.lines().find(|l| l.contains("Overall exposure level for"))?;
    let rest = line.rsplit_once(": ")?.1;
    let mut words = rest.split_whitespace();
    let figure = words.next()?.parse().ok()?;
    Some((figure, words.next().unwrap_or_default().to_string()))
}

fn assert_exposure(m: &Machine) {
    for unit in ASSESSED {
        let (_, out, err) = m.exec(&["systemd-analyze", "security", "--no-pager", unit]);
        let (figure, verdict) =
            exposure(&out).unwrap_or_else(|| panic!("no exposure in systemd-analyze security {unit}:\n{out}{err}"));
        // The whole table: what is left exposed, for the record (--nocapture).
        eprintln!("--- systemd-analyze security {unit} ---\n{out}");
        eprintln!("systemd-analyze security {unit}: {figure} {verdict}");
        assert!(
            figure <= MAX_EXPOSURE,
            "{unit}: exposure {figure} {verdict} (want ≤ {MAX_EXPOSURE}):\n{out}"
        );
    }
}

/// `hlsys status --json` as a user who cannot reach Docker: the health comes from the
/// unit's StatusText.
fn assert_health_without_docker(m: &Machine) {
    m.exec_ok(&["useradd", "--no-create-home", "hlsys-viewer"]);
    let (_, out, err) = m.exec(&["runuser", "-u", "hlsys-viewer", "--", "hlsys", "status", "--json"]);
    let doc: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json: {e}:\n{out}{err}"));
    assert!(
        doc["containers_error"].is_string(),
        "the user reached Docker after all: {doc:#}"
    );
    let web = doc["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["stacks"].as_array().into_iter().flatten())
        .find(|s| s["id"] == "app-web")
        .unwrap_or_else(|| panic!("no app-web in {doc:#}"));
    assert_eq!(web["status_text"], "ready: 3/3 healthy", "{web:#}");
    assert_eq!(
        web["health"],
        serde_json::json!({"phase": "ready", "healthy": 3, "total": 3, "not_healthy": [], "restarts": []}),
        "{web:#}"
    );
}

/// The stack unit's StatusText (the supervisor's STATUS=).
fn status_text(m: &Machine) -> String {
    e2e::show(m, WEB, "StatusText")
}

/// A health event after ready (a container paused, then unpaused) updates STATUS=, and
/// the user without Docker sees which service is not fine.
fn assert_health_follows_events(m: &Machine) {
    // READY=1 goes out from Docker's events, before `compose up --wait` returns and the
    // supervisor checks every container once more (a container paused then fails the
    // start): the events to follow are those of the watch that comes after.
    wait_for("docker compose up to return", Duration::from_secs(30), || {
        !m.exec(&["pgrep", "-f", "up --detach --wait"]).0.success()
    });
    // …and the supervisor's one look at the containers right after it.
    std::thread::sleep(Duration::from_secs(1));
    m.exec_ok(&["docker", "pause", "app-web-worker-1"]);
    let paused = "ready: 2/3 healthy, worker paused";
    wait_for("STATUS= to show the paused worker", Duration::from_secs(20), || {
        status_text(m) == paused
    });
    let (_, out, _) = m.exec(&[
        "runuser",
        "-u",
        "hlsys-viewer",
        "--",
        "hlsys",
        "status",
        "--json",
        "app-web",
    ]);
    assert!(
        out.contains(r#""not_healthy": ["#) && out.contains(r#""state": "paused""#),
        "{out}"
    );
    m.exec_ok(&["docker", "unpause", "app-web-worker-1"]);
    wait_for(
        "STATUS= to show every container healthy again",
        Duration::from_secs(20),
        || status_text(m) == "ready: 3/3 healthy",
    );
    assert!(
        all_active(m, &[WEB]),
        "pausing a container failed the stack: {:?}",
        states(m, &[WEB])
    );
}

/// A `.env` hlsys cannot read (a space in a variable name): the stop falls back to the
/// project name.
fn assert_stop_with_broken_env(m: &Machine) {
    assert_eq!(project_containers(m, "app-web").len(), 3, "app-web is not running");
    m.exec_ok(&["sh", "-c", "echo 'not a variable=1' >/srv/compose/app/web/.env"]);
    let (_, check, _) = m.exec(&["hlsys", "check"]);
    assert!(check.contains(".env"), "the broken .env is not reported:\n{check}");
    m.exec_ok(&["systemctl", "stop", WEB]);
    let left = project_containers(m, "app-web");
    assert!(left.is_empty(), "containers left after the stop: {left:?}");
    let log = journal(m, WEB);
    assert!(
        log.contains("falling back to `docker compose -p app-web down`"),
        "the journal does not say so:\n{log}"
    );
}

#[test]
fn hardened_units_run_stacks_report_health_and_stop_without_a_tree() {
    if !require_root_and(&["systemd-nspawn", "docker", "busybox"]) {
        return;
    }
    let m = Machine::start("harden", Some(&pre_boot(TREE, true, &[])));
    with_diagnostics(&m, &[&["systemctl", "cat", WEB]], || {
        wait_for("the stack to be ready", Duration::from_secs(120), || {
            all_active(&m, &[WEB])
        });
        eprintln!("{WEB}: {:?}", states(&m, &[WEB]));
        assert_exposure(&m);
        assert_health_without_docker(&m);
        assert_health_follows_events(&m);
        assert_stop_with_broken_env(&m);
    });
}

#[test]
fn exposure_is_read_from_the_last_line() {
    let out = "  NAME  DESCRIPTION  EXPOSURE\n✗ PrivateNetwork= ...  0.5\n\n→ Overall exposure level for homelab-app-web.service: 2.1 OK 🙂\n";
    assert_eq!(exposure(out), Some((2.1, "OK".to_string())));
    assert_eq!(exposure("nothing"), None);
}
