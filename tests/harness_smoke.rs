//! The machine harness boots a real systemd as PID 1 with docker.service inside.
mod common;

use common::{require_root_and, Machine};

#[test]
fn machine_boots_systemd_with_docker_inside() {
    if !require_root_and(&["systemd-nspawn", "nsenter", "docker", "dockerd"]) {
        return;
    }
    let m = Machine::start("hlsys-smoke", None);

    assert_eq!(m.exec_ok(&["cat", "/proc/1/comm"]).trim(), "systemd", "PID 1 inside");
    let (_, state, _) = m.exec(&["systemctl", "is-system-running"]);
    assert_eq!(state.trim(), "running", "system state; console log:\n{}", m.log());
    let (_, docker, _) = m.exec(&["systemctl", "is-active", "docker.service"]);
    assert_eq!(docker.trim(), "active", "docker.service inside");

    m.wait_docker();
    m.exec_ok(&["docker", "run", "--rm", "local/busybox:latest", "true"]);
}
