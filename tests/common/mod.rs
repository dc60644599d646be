//! Helpers shared by the integration tests: prerequisite gating, running commands,
//! the host Docker engine, and throw-away systemd machines (tests/harness/machine.sh).
#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

/// Root of the hlsys repository (where Cargo.toml of the `hlsys` package lives).
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(REPO).join(rel)
}

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p)
            .any(|d| std::fs::metadata(d.join(tool)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
    })
}

/// True when we run as root and every tool in `tools` is on PATH. Otherwise prints
/// "SKIP: <reason>" and returns false — except in CI (CI=true), where a missing
/// prerequisite is a broken CI setup and this panics.
pub fn require_root_and(tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    // /proc/self is owned by the effective uid of the process reading it.
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX) != 0 {
        missing.push("not running as root".to_string());
    }
    let tools: Vec<_> = tools.iter().filter(|t| !on_path(t)).collect();
    if !tools.is_empty() {
        missing.push(format!("not on PATH: {tools:?}"));
    }
    if missing.is_empty() {
        return true;
    }
    let reason = missing.join("; ");
    if in_ci() {
        panic!("CI=true but a test prerequisite is missing: {reason} (see scripts/install-deps.sh, .ci/run)");
    }
    eprintln!("SKIP: {reason}");
    false
}

/// Run `cmd` to completion (stdin closed); returns (status, stdout, stderr).
/// Panics only if it cannot be started.
pub fn run(cmd: &mut Command) -> (ExitStatus, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like [`run`] but panics, showing both streams, unless the command succeeds.
pub fn run_ok(cmd: &mut Command) -> (String, String) {
    let (status, out, err) = run(cmd);
    assert!(
        status.success(),
        "{cmd:?} failed: {status}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
    );
    (out, err)
}

/// Make sure the host's Docker engine runs and has local/busybox:latest
/// (scripts/start-dockerd.sh, once per test process).
pub fn ensure_dockerd() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        run_ok(Command::new("bash").arg(repo_path("scripts/start-dockerd.sh")));
    });
}

/// A throw-away machine with systemd as PID 1 and docker.service inside
/// (tests/harness/machine.sh). Stopped, leaving no trace, when dropped.
pub struct Machine {
    pub name: String,
    /// Host-wide lock held while the machine lives: machines share the host's cgroup
    /// tree (--keep-unit, /sys/fs/cgroup bound in), so two at once would step on each
    /// other's /system.slice; test binaries or threads booting machines take turns.
    _lock: nix::fcntl::Flock<std::fs::File>,
    /// DOCKER_STATE of machine.sh: the real directory bound at /var/lib/docker instead of
    /// a tmpfs (see [`Machine::start_with_state`]); removed after the machine stopped.
    docker_state: Option<PathBuf>,
}

impl Machine {
    fn script() -> Command {
        let mut c = Command::new("bash");
        c.arg(repo_path("tests/harness/machine.sh"));
        c
    }

    /// Boot a machine named `<prefix>-<pid>-<n>`. `pre_boot` is a bash snippet run
    /// before boot with $ROOT set to the machine's root (install generator, config, ...).
    pub fn start(prefix: &str, pre_boot: Option<&str>) -> Machine {
        Self::boot_new(prefix, pre_boot, None)
    }

    /// [`Machine::start`] with Docker's state (/var/lib/docker) in `docker_state`
    /// (machine.sh's DOCKER_STATE) instead of a tmpfs: it outlives [`Machine::crash`], so
    /// the boot after a power cut finds the containers Docker left "running". It must be
    /// on a real filesystem (overlay2 cannot sit on an overlay), such as a directory under
    /// `env!("CARGO_TARGET_TMPDIR")`; created if missing. The machine owns it from here
    /// and removes it once stopped (`stop` itself leaves it).
    pub fn start_with_state(prefix: &str, pre_boot: Option<&str>, docker_state: &Path) -> Machine {
        Self::boot_new(prefix, pre_boot, Some(docker_state))
    }

    fn boot_new(prefix: &str, pre_boot: Option<&str>, docker_state: Option<&Path>) -> Machine {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/hlsys-machines.lock")
            .expect("opening /run/hlsys-machines.lock");
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .expect("locking /run/hlsys-machines.lock");
        // Guard first: a failed start is cleaned up too.
        let m = Machine {
            name,
            _lock: lock,
            docker_state: docker_state.map(Path::to_path_buf),
        };
        let mut c = m.with_state(Self::script());
        c.args(["start", &m.name]);
        if let Some(p) = pre_boot {
            c.env("PRE_BOOT", p);
        }
        let (out, _) = run_ok(&mut c);
        eprint!("{out}");
        m
    }

    /// `cmd` with DOCKER_STATE set when the machine has one.
    fn with_state(&self, mut cmd: Command) -> Command {
        if let Some(d) = &self.docker_state {
            cmd.env("DOCKER_STATE", d);
        }
        cmd
    }

    /// A power cut: PID 1 of the machine killed (SIGKILL), so dockerd, the shims and
    /// every container die at once with no shutdown; its root (the overlay's upper layer)
    /// and Docker's state stay for [`Machine::boot`]. `exec` fails until then.
    pub fn crash(&self) {
        let (out, _) = run_ok(Self::script().args(["crash", &self.name]));
        eprint!("{out}");
    }

    /// Boot the crashed machine again, on the same root and Docker state (the boot after
    /// a power cut); returns once systemd says the boot is done, as `start` does.
    pub fn boot(&self) {
        let (out, _) = run_ok(self.with_state(Self::script()).args(["boot", &self.name]));
        eprint!("{out}");
    }

    /// Run `args` inside the machine; returns (status, stdout, stderr).
    pub fn exec(&self, args: &[&str]) -> (ExitStatus, String, String) {
        run(Self::script().args(["exec", &self.name]).args(args))
    }

    /// Run `args` inside the machine; panics unless it succeeds. Returns stdout.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        run_ok(Self::script().args(["exec", &self.name]).args(args)).0
    }

    /// Wait for dockerd inside and import local/busybox:latest there.
    pub fn wait_docker(&self) {
        run_ok(Self::script().args(["wait-docker", &self.name]));
    }

    /// Copy a host file or directory into the machine (through its mount namespace).
    pub fn copy_in(&self, src: impl AsRef<Path>, dst: &str) {
        run_ok(Self::script().args(["copy-in", &self.name]).arg(src.as_ref()).arg(dst));
    }

    /// The machine's console log (systemd-nspawn output), for failure messages.
    pub fn log(&self) -> String {
        run(Self::script().args(["log", &self.name])).1
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // Never panic here: we may already be unwinding from a failed assertion.
        let (status, out, err) = run(Self::script().args(["stop", &self.name]));
        if !status.success() {
            eprintln!("stopping machine {} failed: {status}\n{out}{err}", self.name);
        }
        // Docker's state outlives `stop` (a real directory, not the machine's tmpfs).
        if let Some(d) = &self.docker_state {
            if let Err(e) = std::fs::remove_dir_all(d) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!(
                        "removing DOCKER_STATE {} of machine {} failed: {e}",
                        d.display(),
                        self.name
                    );
                }
            }
        }
    }
}

/// `hlsys-generator`, built once per test process into the same target directory and
/// profile as the `hlsys` binary Cargo built for this test (it is another package, so
/// Cargo gives no CARGO_BIN_EXE_ variable for it).
pub fn generator_bin() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_BIN_EXE_hlsys")).parent().unwrap();
        let bin = dir.join("hlsys-generator");
        let profile = dir.file_name().unwrap().to_str().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "hlsys-generator"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        cmd.arg("--target-dir").arg(dir.parent().unwrap());
        run_ok(&mut cmd);
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// With `UPDATE_GOLDEN` set, replaces the golden directory `golden` by `actual`
/// (relative path → content) and returns true: the caller then skips its comparison.
pub fn rewrite_golden(golden: &Path, actual: &BTreeMap<String, String>) -> bool {
    if std::env::var_os("UPDATE_GOLDEN").is_none() {
        return false;
    }
    let _ = std::fs::remove_dir_all(golden);
    for (rel, content) in actual {
        let p = golden.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    eprintln!("golden directory rewritten: {}", golden.display());
    true
}

/// Every file below `dir` (none when it does not exist): relative path → text, or
/// `-> target` for symlinks.
pub fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let meta = p.symlink_metadata().unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, format!("-> {}\n", std::fs::read_link(&p).unwrap().display()));
            } else if meta.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out);
    }
    out
}

/// The trust model (core/src/trust.rs, "Security" in hlsys.toml(5)) accepts only files
/// owned by root or `trusted_owner`, writable by no group but `trusted_group`. Test trees
/// belong to whoever runs the tests: root in CI, often a normal user on a developer
/// machine, whose umask 002 (and git) also makes files group-writable by the user's own
/// group. Tests that are not about trust therefore name the runner as trusted, so they
/// give the same result for both, while the checks themselves still run; tests/trust.rs,
/// which is about trust, sets owners and modes itself.
///
/// The config lines that trust the runner, for configs the tests write: none for root
/// (root is always trusted, and the text keeps its line numbers), else `trusted_owner`
/// and `trusted_group` (TOML keys of the top table, so they go first).
pub fn trusting_runner(config_text: &str) -> String {
    let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    if uid == 0 {
        return config_text.to_string();
    }
    format!("trusted_owner = {uid}\ntrusted_group = {gid}\n{config_text}")
}

/// [`trusting_runner`] for a config a test loads through the library (fixture trees in
/// the repository checkout, with whatever owner and modes it has there).
pub fn trust_runner(config: &mut hlsys_core::config::Config) {
    config.trust.owner = Some(nix::unistd::geteuid().as_raw());
    config.trust.group = Some(nix::unistd::getegid().as_raw());
}

/// A command's result in the e2e tests (e2e_cli, e2e_polkit).
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts success, showing both streams when it failed.
    pub fn ok(self, what: &str) -> Out {
        assert!(
            self.status.success(),
            "{what} failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts the refusal of `hlsys VERB` by systemd/polkit as hlsys words it: exit 1, who
    /// may (`sudo adduser USER homelab`), and no raw D-Bus error name.
    pub fn refused(&self, verb: &str) {
        assert_eq!(self.status.code(), Some(1), "hlsys {verb}: {}", self.stderr);
        assert!(
            self.stderr
                .contains(&format!("hlsys {verb}: permission denied by systemd"))
                && self.stderr.contains("sudo adduser USER homelab"),
            "hlsys {verb}: {}",
            self.stderr
        );
        assert!(
            !self.stderr.contains("org.freedesktop."),
            "no raw D-Bus error: {}",
            self.stderr
        );
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n--- stderr ---\n{}", self.stdout, self.stderr))
    }
}
