//! `hlsys check` on broken and clean fixture trees against a real dockerd.
//!
//! Stacks live under a layer directory `c<pid>`, so their Compose projects (`c<pid>-…`)
//! are unique to this test process.
mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitStatus};

use serde_json::Value;

fn ready() -> bool {
    if !common::require_root_and(&["docker", "dockerd"]) {
        return false;
    }
    common::ensure_dockerd();
    true
}

fn layer() -> String {
    format!("c{}", std::process::id())
}

fn write(root: &Path, rel: &str, text: &str, mode: u32) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `hlsys -c CFG check --json ARGS` (with extra env) → (status, name → check).
fn check(cfg: &Path, args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, BTreeMap<String, Value>) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hlsys"));
    c.arg("-c").arg(cfg).args(["check", "--json"]).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let (st, out, err) = common::run(&mut c);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    assert_eq!(v["ok"], st.success(), "{v:#}");
    let map = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c.clone()))
        .collect();
    (st, map)
}

fn status(checks: &BTreeMap<String, Value>, name: &str) -> String {
    checks
        .get(name)
        .unwrap_or_else(|| panic!("no check {name}: {checks:#?}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn message(checks: &BTreeMap<String, Value>, name: &str) -> String {
    checks[name]["message"].as_str().unwrap().to_string()
}

fn compose_available() -> bool {
    common::run(Command::new("docker").args(["compose", "version"]))
        .0
        .success()
}

struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        common::run(Command::new("docker").args(["rm", "-f", &self.0]));
    }
}

#[test]
fn broken_fixture_reports_each_problem() {
    if !ready() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (r, l) = (d.path(), layer());
    let clash = free_port();
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let held_port = held.local_addr().unwrap().port();
    write(
        r,
        "hlsys.toml",
        &format!(
            "stacks_dir = \"{}\"\n[networks.{l}-missing]\nsubnet = \"10.252.1.0/24\"\n",
            r.join("tree").display()
        ),
        0o644,
    );
    write(
        r,
        &format!("tree/{l}/web/compose.yaml"),
        &format!(
            "services:\n  web:\n    image: local/busybox:latest\n    ports: [\"{clash}:80\"]\n    \
             volumes: [\"./nope:/data\"]\nsecrets:\n  s1:\n    file: ./s1.secret\n"
        ),
        0o644,
    );
    write(r, &format!("tree/{l}/web/.env.local"), "TOKEN=x\n", 0o644);
    // A required env_file that is missing: Compose refuses the stack at `config` time, so
    // it is a stack error (the "stacks" check), not a missing file of a stack that loads.
    write(
        r,
        &format!("tree/{l}/envless/compose.yaml"),
        "services:\n  envless:\n    image: local/busybox:latest\n    env_file: [missing.env]\n",
        0o644,
    );
    write(r, &format!("tree/{l}/db.secret"), "pw\n", 0o604);
    write(
        r,
        &format!("tree/{l}/api/compose.yaml"),
        &format!("services:\n  api:\n    image: local/busybox:latest\n    ports: [\"{clash}:81\", \"127.0.0.1:{held_port}:82\"]\n"),
        0o644,
    );
    write(
        r,
        &format!("tree/{l}/llm/compose.yaml"),
        "services:\n  llm:\n    image: local/busybox:latest\n    runtime: nvidia\n",
        0o644,
    );
    // A container of the web stack's project that Docker itself would restart.
    let ctr = Container(format!("{l}-web-restarting"));
    common::run_ok(Command::new("docker").args([
        "create",
        "--name",
        &ctr.0,
        "--label",
        &format!("com.docker.compose.project={l}-web"),
        "--restart",
        "always",
        "local/busybox:latest",
        "true",
    ]));

    let cfg = r.join("hlsys.toml");
    let (st, c) = check(&cfg, &[], &[]);
    assert_eq!(st.code(), Some(1));
    assert_eq!(status(&c, "docker"), "ok", "{:#}", c["docker"]);
    if compose_available() {
        assert_eq!(status(&c, "compose"), "ok");
    }
    assert_eq!(status(&c, "config"), "ok");
    assert_eq!(status(&c, "stacks"), "fail", "{:#}", c["stacks"]);
    let stacks = message(&c, "stacks");
    assert!(
        stacks.contains(&format!("{l}-envless")) && stacks.contains("env_file.0: required env file does not exist"),
        "{stacks}"
    );
    assert_eq!(status(&c, "networks"), "warn");
    assert!(message(&c, "networks").contains(&format!("{l}-missing does not exist")));
    assert_eq!(status(&c, &format!("gpu:{l}-llm")), "fail");
    assert!(message(&c, &format!("gpu:{l}-llm")).contains("no nvidia runtime"));
    assert_eq!(status(&c, "files"), "fail");
    assert!(message(&c, "files").contains("s1.secret"), "{:#}", c["files"]);
    assert_eq!(status(&c, "secret-permissions"), "warn");
    let perms = message(&c, "secret-permissions");
    assert!(
        perms.contains("web/.env.local") && perms.contains(&format!("{l}/db.secret")),
        "{perms}"
    );
    assert!(c["secret-permissions"]["remedy"]
        .as_str()
        .unwrap()
        .starts_with("chmod o-r"));
    assert_eq!(status(&c, "ports"), "fail");
    let ports = message(&c, "ports");
    assert!(
        ports.contains(&format!("{clash}/tcp is published by both {l}-api and {l}-web")),
        "{ports}"
    );
    assert!(
        ports.contains(&format!("127.0.0.1:{held_port}/tcp is already bound")),
        "{ports}"
    );
    assert_eq!(status(&c, "restart-policies"), "warn");
    assert!(message(&c, "restart-policies").contains(&format!("{} has restart policy always", ctr.0)));
    assert_eq!(status(&c, "bind-mounts"), "warn");
    assert!(message(&c, "bind-mounts").contains("nope"));
    for v in c.values() {
        if v["status"] != "ok" {
            assert!(v["remedy"].as_str().is_some_and(|s| !s.is_empty()), "no remedy: {v:#}");
        }
    }

    // Selecting one stack checks only that one; an unknown name fails.
    let (_, c) = check(&cfg, &[&format!("{l}-api")], &[]);
    assert_eq!(status(&c, "files"), "ok");
    assert_eq!(status(&c, "gpu"), "ok");
    assert_eq!(status(&c, "restart-policies"), "ok");
    let (st, c) = check(&cfg, &["no-such-stack"], &[]);
    assert_eq!(st.code(), Some(1));
    assert!(message(&c, "stacks").contains("no stack \"no-such-stack\""));

    // The human table: one line per check, no colour on a pipe, remedies below.
    let (st, out, _) = common::run(
        Command::new(env!("CARGO_BIN_EXE_hlsys"))
            .arg("-c")
            .arg(&cfg)
            .arg("check"),
    );
    assert_eq!(st.code(), Some(1));
    assert!(out.starts_with("CHECK") && !out.contains('\x1b'), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("ports") && l.contains("fail")),
        "{out}"
    );
    assert!(out.contains("secret-permissions: chmod o-r"), "{out}");
    drop(held);
}

#[test]
fn clean_fixture_passes_and_strict_fails_on_warnings() {
    if !ready() || !compose_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (r, l) = (d.path(), layer());
    write(
        r,
        "hlsys.toml",
        &format!("stacks_dir = \"{}\"\n", r.join("tree").display()),
        0o644,
    );
    write(
        r,
        &format!("tree/{l}/clean/compose.yaml"),
        "services:\n  app:\n    image: local/busybox:latest\n    env_file: [app.env]\n    volumes: [\"./data:/data\"]\n",
        0o644,
    );
    write(r, &format!("tree/{l}/clean/app.env"), "A=1\n", 0o644);
    std::fs::create_dir_all(r.join(format!("tree/{l}/clean/data"))).unwrap();
    let secret = r.join(format!("tree/{l}/clean/.env.local"));
    write(r, &format!("tree/{l}/clean/.env.local"), "TOKEN=x\n", 0o640);
    let cfg = r.join("hlsys.toml");

    let (st, c) = check(&cfg, &["--strict"], &[]);
    assert!(st.success(), "{c:#?}");
    assert!(c.values().all(|v| v["status"] == "ok"), "{c:#?}");

    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (st, c) = check(&cfg, &[], &[]);
    assert!(st.success(), "a warning alone passes: {c:#?}");
    assert_eq!(status(&c, "secret-permissions"), "warn");
    let (st, _) = check(&cfg, &["--strict"], &[]);
    assert_eq!(st.code(), Some(1), "--strict fails on warnings");
}

#[test]
fn unreachable_docker_and_bad_config_fail_clearly() {
    if !ready() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "hlsys.toml",
        &format!("stacks_dir = \"{}\"\n", r.join("tree").display()),
        0o644,
    );
    write(
        r,
        &format!("tree/{}/x/compose.yaml", layer()),
        "services:\n  x:\n    image: local/busybox:latest\nsecrets:\n  gone:\n    file: ./gone.secret\n",
        0o644,
    );
    let host = format!("unix://{}", r.join("no.sock").display());
    let (st, c) = check(&r.join("hlsys.toml"), &[], &[("DOCKER_HOST", &host)]);
    assert_eq!(st.code(), Some(1));
    assert_eq!(status(&c, "docker"), "fail");
    assert!(
        message(&c, "docker").contains(&format!("cannot reach Docker at {host}")),
        "{:#}",
        c["docker"]
    );
    // The file checks run regardless.
    assert_eq!(status(&c, "files"), "fail");

    write(r, "bad.toml", "stacks_dir = 3\n", 0o644);
    let (st, c) = check(&r.join("bad.toml"), &[], &[]);
    assert_eq!(st.code(), Some(1));
    assert_eq!(status(&c, "config"), "fail");
    assert!(message(&c, "config").contains("bad.toml"));
}
