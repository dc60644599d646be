//! tests/harness/crash-unit.sh, the e2e step "the daemon crashes", under every answer
//! `systemctl` gives on the hosts this suite runs on — without a machine, so it runs
//! everywhere and on every host kind:
//! - cgroup v2 (and v1 where it works): `systemctl kill --kill-whom=main` kills the daemon;
//! - cgroup v1 where systemd 252 refuses ("Failed to send signal SIGKILL to auxiliary
//!   processes: Input/output error"): the helper falls back to kill(2) on MainPID;
//! - a `systemctl` that says yes but nothing dies, and a unit with no main process: the
//!   helper fails, so a test never checks "recovery" from a crash that did not happen.
//!
//! The real `systemctl` is replaced by a small script over a state directory, and the
//! "service manager" by a thread that, like systemd, reaps the dying daemon and records a
//! new main process. The real run of the helper is the Docker-crash step of
//! tests/e2e_supervise.rs.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::thread::JoinHandle;

/// `systemctl show -P PROP UNIT` reads $STATE/PROP; `systemctl kill …` does what
/// $STATE/outcome says and logs its arguments to $STATE/kill-args.
const FAKE_SYSTEMCTL: &str = r#"#!/bin/bash
case $1 in
show) cat "$STATE/$3" 2>/dev/null || true ;;
kill)
  echo "$*" >"$STATE/kill-args"
  case $(cat "$STATE/outcome") in
  ok) kill -KILL "$(cat "$STATE/MainPID")" ;;
  eio) echo "Failed to kill unit $5: Failed to send signal SIGKILL to auxiliary processes: Input/output error" >&2; exit 1 ;;
  noop) ;;
  esac ;;
*) echo "fake systemctl: unexpected $*" >&2; exit 2 ;;
esac
"#;

struct Service {
    state: tempfile::TempDir,
    manager: Option<JoinHandle<()>>,
}

impl Service {
    /// A "docker.service" whose main process is a real `sleep`, watched by a manager
    /// thread that records a restart (new MainPID, NRestarts + 1) when it dies.
    fn start(outcome: &str) -> Service {
        let state = fake_state(outcome);
        let mut daemon: Child = Command::new("sleep").arg("300").spawn().unwrap();
        let dir = state.path().to_path_buf();
        set(&dir, "MainPID", &daemon.id().to_string());
        set(&dir, "ActiveState", "active");
        set(&dir, "SubState", "running");
        let manager = std::thread::spawn(move || {
            daemon.wait().unwrap();
            let next = Command::new("sleep").arg("300").spawn().unwrap();
            set(&dir, "NRestarts", "1");
            set(&dir, "MainPID", &next.id().to_string());
            std::mem::forget(next); // killed in Drop through the pid file
        });
        Service {
            state,
            manager: Some(manager),
        }
    }

    /// A stopped unit: MainPID=0.
    fn stopped() -> Service {
        let state = fake_state("ok");
        set(state.path(), "MainPID", "0");
        set(state.path(), "ActiveState", "inactive");
        set(state.path(), "SubState", "dead");
        Service { state, manager: None }
    }

    fn get(&self, prop: &str) -> String {
        std::fs::read_to_string(self.state.path().join(prop)).unwrap_or_default()
    }

    /// Runs the helper with the fake systemctl first on PATH; (exit code, stdout, stderr).
    fn crash(&self, timeout_s: &str) -> (i32, String, String) {
        let path = format!(
            "{}:{}",
            self.state.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let (status, out, err) = common::run(
            Command::new("bash")
                .arg(common::repo_path("tests/harness/crash-unit.sh"))
                .args(["docker.service", timeout_s])
                .env("PATH", path)
                .env("STATE", self.state.path()),
        );
        (status.code().unwrap_or(-1), out, err)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        kill(&self.get("MainPID"));
        // The daemon is dead now, so the manager records its successor and ends.
        if let Some(m) = self.manager.take() {
            let _ = m.join();
        }
        kill(&self.get("MainPID"));
    }
}

/// A state directory with the fake `systemctl` in bin/.
fn fake_state(outcome: &str) -> tempfile::TempDir {
    let state = tempfile::tempdir().unwrap();
    let bin = state.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    write_exec(&bin.join("systemctl"), FAKE_SYSTEMCTL);
    set(state.path(), "outcome", outcome);
    set(state.path(), "NRestarts", "0");
    state
}

fn set(dir: &Path, prop: &str, value: &str) {
    std::fs::write(dir.join(prop), value).unwrap();
}

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn kill(pid: &str) {
    if let Ok(pid) = pid.trim().parse::<i32>() {
        if pid > 0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[test]
fn systemctl_kills_the_main_process_only() {
    let s = Service::start("ok");
    let old = s.get("MainPID");
    let (code, out, err) = s.crash("10");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("pid {old} killed via systemctl")), "{out}");
    assert!(out.contains("NRestarts 0 -> 1"), "{out}");
    assert_ne!(s.get("MainPID"), old);
    assert_eq!(
        s.get("kill-args").trim(),
        "kill --kill-whom=main --signal=KILL docker.service",
        "never the whole cgroup"
    );
}

#[test]
fn cgroup_v1_refusal_falls_back_to_killing_main_pid() {
    let s = Service::start("eio");
    let old = s.get("MainPID");
    let (code, out, err) = s.crash("10");
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("Input/output error"), "says why it fell back: {err}");
    assert!(out.contains(&format!("pid {old} killed via kill")), "{out}");
    assert!(out.contains("NRestarts 0 -> 1"), "{out}");
    assert_ne!(s.get("MainPID"), old);
}

#[test]
fn a_crash_that_did_not_happen_fails() {
    let s = Service::start("noop");
    let (code, out, err) = s.crash("1");
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("no crash of docker.service seen within 1s"), "{err}");
}

#[test]
fn a_unit_without_main_process_fails() {
    let s = Service::stopped();
    let (code, out, err) = s.crash("1");
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("has no main process to crash"), "{err}");
}
