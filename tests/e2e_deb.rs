//! End to end: the Debian package (scripts/package.sh) installed, configured, upgraded
//! and removed with dpkg in a real systemd 252 booted as PID 1 with docker.service inside
//! (tests/harness/machine.sh), on the layered tree `tests/fixtures/trees/e2e` plus one
//! stack with a named volume.
//!
//! - The machine boots without any hlsys file; `dpkg -i` installs the package and loads
//!   no unit at all (opt-in: no /etc/hlsys/hlsys.toml yet); every file sits at its Debian
//!   path and `man hlsys` resolves.
//! - With /etc/hlsys/hlsys.toml written and `systemctl daemon-reload`, `systemctl start
//!   homelab-genai.target` brings every stack up.
//! - An upgrade to the same build with a bumped version keeps /etc/hlsys/hlsys.toml byte
//!   for byte and restarts nothing: same InvocationID of every stack unit, same
//!   containers.
//! - `dpkg -r hlsys` stops the stacks (their containers are removed), keeps the named
//!   volume and its data, leaves /etc/hlsys alone, and no `homelab-*` unit stays loaded.
//!
//! The packages come from scripts/package.sh (a release build, a no-op when fresh: CI
//! runs it before the tests). Needs root, systemd-nspawn, Docker and dpkg-deb (skipped
//! otherwise, failing when CI=true). On failure it prints the units' status, the journal,
//! the containers and the console log; the machine is stopped in any case.
mod common;
#[path = "common/e2e.rs"]
mod e2e;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{repo_path, require_root_and, run_ok, Machine};
use e2e::{all_active, containers, project_containers, show, timed, wait_for, with_diagnostics};

const TREE: &str = "tests/fixtures/trees/e2e";
/// A stack with a named volume; the container leaves a marker file in it.
const STORE_STACK: &str = r#"services:
  store:
    image: local/busybox:latest
    command: ["sh", "-c", "touch /data/marker; exec sleep 3600"]
    init: true
    restart: "no"
    volumes: [data:/data]

volumes:
  data: {}
"#;
const VOLUME: &str = "genai-store_data";
const STACKS: [&str; 4] = [
    "homelab-panel.service",
    "homelab-database.service",
    "homelab-genai-webui.service",
    "homelab-genai-store.service",
];
const PROJECTS: [&str; 4] = ["panel", "database", "genai-webui", "genai-store"];

/// Every file of the package that must be at its Debian path.
const INSTALLED: [&str; 13] = [
    "/usr/bin/hlsys",
    "/usr/lib/systemd/system-generators/hlsys-generator",
    "/usr/share/man/man1/hlsys.1.gz",
    "/usr/share/man/man5/hlsys.toml.5.gz",
    "/usr/share/man/man8/hlsys-generator.8.gz",
    "/usr/share/bash-completion/completions/hlsys",
    "/usr/share/zsh/vendor-completions/_hlsys",
    "/usr/share/fish/vendor_completions.d/hlsys.fish",
    "/usr/share/doc/hlsys/examples/hlsys.toml",
    "/usr/share/doc/hlsys/examples/homelab/hlsys.toml",
    "/usr/share/doc/hlsys/copyright",
    "/usr/share/doc/hlsys/changelog.Debian.gz",
    "/usr/share/polkit-1/rules.d/50-hlsys.rules",
];

/// Runs scripts/package.sh with `args`; returns the .deb it wrote (cargo-deb prints its
/// path as the last line of stdout).
fn package(args: &[&str]) -> PathBuf {
    let (out, err) = run_ok(
        Command::new("bash")
            .arg(repo_path("scripts/package.sh"))
            .args(args)
            .current_dir(repo_path("")),
    );
    eprint!("{err}");
    let last = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim();
    let deb = repo_path("").join(last);
    assert!(
        last.ends_with(".deb") && deb.is_file(),
        "package.sh did not name a .deb: {out}"
    );
    deb
}

fn deb_field(deb: &Path, field: &str) -> String {
    run_ok(Command::new("dpkg-deb").arg("-f").arg(deb).arg(field))
        .0
        .trim()
        .to_string()
}

/// Each stack unit's InvocationID (a new one at every start).
fn invocations(m: &Machine) -> Vec<String> {
    STACKS.iter().map(|u| show(m, u, "InvocationID")).collect()
}

/// Every container of the stacks: name → id.
fn all_containers(m: &Machine) -> BTreeMap<String, String> {
    PROJECTS.iter().flat_map(|p| project_containers(m, p)).collect()
}

/// When each container (name → id) last started, and whether it runs now.
fn started_at(m: &Machine, ids: &BTreeMap<String, String>) -> Vec<String> {
    let ids: Vec<&str> = ids.values().map(String::as_str).collect();
    let out = m.exec_ok(
        &[
            &["docker", "inspect", "-f", "{{.State.Running}} {{.State.StartedAt}}"][..],
            &ids,
        ]
        .concat(),
    );
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert!(
        lines.iter().all(|l| l.starts_with("true ")),
        "not all running: {lines:?}"
    );
    lines
}

/// `homelab*` units systemd has loaded, in any state.
fn loaded_homelab_units(m: &Machine) -> Vec<String> {
    m.exec_ok(&[
        "systemctl",
        "list-units",
        "--all",
        "--plain",
        "--no-legend",
        "--no-pager",
        "homelab*",
    ])
    .lines()
    .filter_map(|l| l.split_whitespace().next().map(str::to_string))
    .collect()
}

fn assert_no_hlsys_file(m: &Machine) {
    for p in INSTALLED.iter().chain(&["/etc/hlsys"]) {
        let (st, _, _) = m.exec(&["test", "-e", p]);
        assert!(
            !st.success(),
            "{p} exists in the machine before the package is installed"
        );
    }
    let (st, _, _) = m.exec(&["dpkg-query", "-W", "hlsys"]);
    assert!(!st.success(), "dpkg knows a package hlsys before it is installed");
    let (st, _, _) = m.exec(&["getent", "group", "homelab"]);
    assert!(!st.success(), "group homelab exists before the package is installed");
}

/// The files of the package, `man`, `--version`, and that it activated nothing.
fn assert_installed_inert(m: &Machine) {
    for p in INSTALLED {
        m.exec_ok(&["test", "-f", p]);
    }
    // The postinst made the (empty) system group the polkit rule names.
    let group = m.exec_ok(&["getent", "group", "homelab"]);
    let gid: u32 = group.split(':').nth(2).and_then(|g| g.parse().ok()).unwrap_or(u32::MAX);
    assert!(
        gid < 1000 && group.trim_end().ends_with(':'),
        "a system group without members: {group}"
    );
    assert_eq!(
        m.exec_ok(&["hlsys", "--version"]).trim(),
        format!("hlsys {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        m.exec_ok(&["man", "-w", "hlsys"]).trim(),
        "/usr/share/man/man1/hlsys.1.gz"
    );
    let page = m.exec_ok(&["env", "LC_ALL=C", "MANWIDTH=80", "man", "-P", "cat", "hlsys"]);
    assert!(page.contains("NAME") && page.contains("hlsys"), "man hlsys:\n{page}");
    let page = m.exec_ok(&[
        "env",
        "LC_ALL=C",
        "MANWIDTH=200",
        "man",
        "-P",
        "cat",
        "8",
        "hlsys-generator",
    ]);
    assert!(
        page.contains("opt-in"),
        "hlsys-generator(8) does not document opt-in:\n{page}"
    );

    // Opt-in: the postinst reloaded systemd, the generator ran and wrote nothing.
    assert_eq!(loaded_homelab_units(m), Vec::<String>::new(), "units without a config");
    let (st, _, _) = m.exec(&["test", "-e", e2e::REPORT]);
    assert!(!st.success(), "the generator wrote a report without a config");
    // Its one line (systemd's runs leave no trace inside nspawn: run it by hand).
    let (st, _, err) = m.exec(&[
        "env",
        "-i",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        "/usr/lib/systemd/system-generators/hlsys-generator",
        "/run/e2e-generator",
    ]);
    assert!(st.success(), "generator by hand: {st}\n{err}");
    assert!(
        err.lines().count() == 1 && err.contains("no config file /etc/hlsys/hlsys.toml"),
        "{err}"
    );
    let (st, _, _) = m.exec(&["test", "-e", "/run/e2e-generator"]);
    assert!(
        !st.success(),
        "the generator created its output directory without a config"
    );
}

#[test]
fn package_installs_starts_upgrades_and_removes_cleanly() {
    if !require_root_and(&["systemd-nspawn", "nsenter", "docker", "dockerd", "dpkg-deb"]) {
        return;
    }
    let t0 = Instant::now();
    // cargo-deb deletes the other versions in target/debian when it builds one: keep a
    // copy of the first package while building the second, and put it back.
    let debs = tempfile::tempdir().unwrap();
    let deb = debs.path().join("hlsys.deb");
    let built = package(&[]);
    std::fs::copy(&built, &deb).unwrap();
    let version = deb_field(&deb, "Version");
    let bumped = format!("{version}+e2e1");
    let deb2 = package(&["--deb-version", &bumped, "--output", debs.path().to_str().unwrap()]);
    std::fs::copy(&deb, &built).unwrap();
    assert_eq!(deb_field(&deb2, "Version"), bumped);
    timed(t0, &format!("packages {} and {}", deb.display(), deb2.display()));

    // The tree at /srv/compose; no hlsys file anywhere (the machine is the host's root).
    let pre = format!(
        "rm -rf \"$ROOT/etc/hlsys\" \"$ROOT/srv/compose\" && mkdir -p \"$ROOT/srv/compose\"
cp -R {tree}/. \"$ROOT/srv/compose/\"
install -D -m644 /dev/stdin \"$ROOT/srv/compose/genai/store/compose.yaml\" <<'E2E_EOF'
{STORE_STACK}E2E_EOF
{docker}",
        tree = e2e::quote(&repo_path(TREE)),
        docker = e2e::DOCKER_READY,
    );
    let m = Machine::start("hlsys-e2e-deb", Some(&pre));
    timed(t0, "booted");
    with_diagnostics(
        &m,
        &[&["dpkg", "-l", "hlsys"], &["ls", "-la", "/run/systemd/generator"]],
        || {
            assert_no_hlsys_file(&m);
            m.wait_docker();
            m.copy_in(&deb, "/var/tmp/hlsys.deb");
            m.copy_in(&deb2, "/var/tmp/hlsys-upgrade.deb");
            m.exec_ok(&["dpkg", "-i", "/var/tmp/hlsys.deb"]);
            assert_installed_inert(&m);
            timed(t0, "installed: files in place, nothing loaded");

            // The admin's config, then the stacks.
            let config = std::fs::read(repo_path(TREE).join("hlsys.toml")).unwrap();
            m.copy_in(repo_path(TREE).join("hlsys.toml"), "/etc/hlsys/hlsys.toml");
            m.exec_ok(&["systemctl", "daemon-reload"]);
            m.exec_ok(&["timeout", "180", "systemctl", "start", "homelab-genai.target"]);
            assert!(all_active(&m, &STACKS), "{:?}", e2e::states(&m, &STACKS));
            let before = all_containers(&m);
            assert_eq!(before.len(), 5, "containers: {before:?}");
            let running = containers(&m);
            for name in before.keys() {
                assert!(
                    running.get(name).is_some_and(|s| s.starts_with("Up")),
                    "{name}: {running:?}"
                );
            }
            let ids = invocations(&m);
            let started = started_at(&m, &before);
            timed(t0, "configured: homelab-genai.target started every stack");

            // Upgrade: a reload, no restart, the config untouched.
            m.exec_ok(&["dpkg", "-i", "/var/tmp/hlsys-upgrade.deb"]);
            assert_eq!(m.exec_ok(&["dpkg-query", "-W", "-f", "${Version}", "hlsys"]), bumped);
            assert_eq!(m.exec_ok(&["cat", "/etc/hlsys/hlsys.toml"]).as_bytes(), &config[..]);
            assert!(all_active(&m, &STACKS), "{:?}", e2e::states(&m, &STACKS));
            assert_eq!(invocations(&m), ids, "a stack unit was restarted by the upgrade");
            assert_eq!(all_containers(&m), before, "containers changed in the upgrade");
            assert_eq!(
                started_at(&m, &before),
                started,
                "a container was restarted by the upgrade"
            );
            assert_eq!(show(&m, STACKS[0], "NeedDaemonReload"), "no");
            timed(t0, "upgraded: same invocations, same containers, same config");

            // Removal: stacks stopped, volume kept, nothing loaded, /etc/hlsys alone.
            m.exec_ok(&["timeout", "300", "dpkg", "-r", "hlsys"]);
            assert_eq!(all_containers(&m), BTreeMap::new(), "containers left after dpkg -r");
            m.exec_ok(&["docker", "volume", "inspect", VOLUME]);
            m.exec_ok(&[
                "docker",
                "run",
                "--rm",
                "-v",
                &format!("{VOLUME}:/data"),
                "local/busybox:latest",
                "test",
                "-f",
                "/data/marker",
            ]);
            wait_for("no homelab unit loaded", Duration::from_secs(10), || {
                loaded_homelab_units(&m).is_empty()
            });
            assert_eq!(m.exec_ok(&["cat", "/etc/hlsys/hlsys.toml"]).as_bytes(), &config[..]);
            for p in ["/usr/bin/hlsys", "/usr/lib/systemd/system-generators/hlsys-generator"] {
                let (st, _, _) = m.exec(&["test", "-e", p]);
                assert!(!st.success(), "{p} left after dpkg -r");
            }
            timed(t0, "removed: stacks stopped, volume kept, no unit loaded");
        },
    );
    drop(m);
    timed(t0, "machine stopped");
}
