//! The harness of the hostile-input tests (tests/hostile*.rs): a temp tree with two good
//! stacks and three output directories, the generator binary run as systemd runs it
//! (as nobody when the tests run as root, its log on stderr), its wall time and peak RSS
//! (wait4(2)), and the contracts a stack-level and a config-level problem must keep.
//!
//! Use it next to `mod common;` as `#[path = "common/hostile.rs"] mod hostile;`.
#![allow(dead_code)] // each test crate uses a different subset

use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

/// Generous bounds: a case that needs more has lost its bound, not just some speed.
pub const MAX_WALL: Duration = Duration::from_secs(2);
pub const MAX_RSS_KIB: i64 = 256 * 1024;
/// A run that has not finished by then is killed and fails the case (a hang).
pub const KILL_AFTER: Duration = Duration::from_secs(20);
pub const NOBODY: u32 = 65534;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A temp dir holding `hlsys.toml`, a tree with the good stacks `good-a` and `good-b`,
/// and three output directories.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let s = Setup { dir };
        s.write("tree/good/a/compose.yaml", "services:\n  a: {image: busybox}\n");
        s.write("tree/good/b/compose.yaml", "services:\n  b: {image: busybox}\n");
        s.write("hlsys.toml", "stacks_dir = \"tree\"\nenv_files = []\n");
        for out in ["normal", "early", "late"] {
            let p = s.path(out);
            std::fs::create_dir(&p).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        s
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn mkdirs(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).unwrap();
        for a in p.ancestors().take_while(|a| a.starts_with(self.dir.path())) {
            std::fs::set_permissions(a, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        p
    }

    pub fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        self.mkdirs(
            p.parent()
                .unwrap()
                .strip_prefix(self.dir.path())
                .unwrap()
                .to_str()
                .unwrap(),
        );
        // A config names the runner as trusted (`common::trusting_runner`): these tests
        // are about hostile content, not about who owns the files.
        match std::str::from_utf8(text.as_ref()) {
            Ok(t) if rel.ends_with("hlsys.toml") => std::fs::write(&p, common::trusting_runner(t)).unwrap(),
            _ => std::fs::write(&p, text).unwrap(),
        }
        p
    }

    pub fn fifo(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        self.mkdirs(
            p.parent()
                .unwrap()
                .strip_prefix(self.dir.path())
                .unwrap()
                .to_str()
                .unwrap(),
        );
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        p
    }

    pub fn link(&self, rel: &str, target: impl AsRef<Path>) -> PathBuf {
        let p = self.path(rel);
        self.mkdirs(
            p.parent()
                .unwrap()
                .strip_prefix(self.dir.path())
                .unwrap()
                .to_str()
                .unwrap(),
        );
        symlink(target, &p).unwrap();
        p
    }

    /// A sparse file of `len` bytes (costs no disk).
    pub fn sparse(&self, rel: &str, len: u64) -> PathBuf {
        let p = self.write(rel, "");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len)
            .unwrap();
        p
    }

    pub fn normal(&self) -> PathBuf {
        self.path("normal")
    }

    pub fn report(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.normal().join("hlsys-generator.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// What one generator run did and cost.
pub struct Run {
    pub code: i32,
    pub stderr: String,
    pub wall: Duration,
    pub rss_kib: i64,
}

/// Runs the generator on `config` into the three output directories, reaping it with
/// wait4(2) for its own peak RSS; kills it after [`KILL_AFTER`].
pub fn generate(s: &Setup, config: &Path) -> Run {
    // One run at a time per test binary: its wall time is held to a bound, and the
    // generator's reading threads would otherwise share the cores with a sibling test's.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut cmd = Command::new(common::generator_bin());
    cmd.args([s.normal(), s.path("early"), s.path("late")])
        .env("HLSYS_CONFIG", config)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if is_root() {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let (code, rss_kib) = reap(child.id() as i32, start);
    let wall = start.elapsed();
    Run {
        code,
        stderr: reader.join().unwrap(),
        wall,
        rss_kib,
    }
}

/// Waits for `pid` (polling, so a hang can be killed) and returns its exit code (-signal
/// when killed) and `ru_maxrss` in KiB.
pub fn reap(pid: i32, start: Instant) -> (i32, i64) {
    loop {
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(r >= 0, "wait4: {}", std::io::Error::last_os_error());
        if r == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -libc::WTERMSIG(status)
            };
            return (code, usage.ru_maxrss);
        }
        if start.elapsed() > KILL_AFTER {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `ru_maxrss` of a child that only execs `/bin/true`. Linux carries the RSS a child had
/// between fork and exec (a copy of this test process's) into its `ru_maxrss`, so a
/// child's figure is an upper bound of its own peak; this baseline says how much of it
/// the fork alone accounts for.
pub fn fork_baseline_kib() -> i64 {
    static B: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *B.get_or_init(|| {
        let child = Command::new("/bin/true").spawn().unwrap();
        reap(child.id() as i32, Instant::now()).1
    })
}

pub fn bounded(name: &str, r: &Run) {
    println!(
        "{name:<30} exit {:>3}  wall {:>7.1} ms  peak RSS {:>6.1} MiB (fork baseline {:.1} MiB)",
        r.code,
        r.wall.as_secs_f64() * 1e3,
        r.rss_kib as f64 / 1024.0,
        fork_baseline_kib() as f64 / 1024.0
    );
    assert!(r.wall < MAX_WALL, "{name}: took {:?}\n{}", r.wall, r.stderr);
    assert!(
        r.rss_kib < MAX_RSS_KIB,
        "{name}: peak RSS {} KiB\n{}",
        r.rss_kib,
        r.stderr
    );
}

/// The contract for a stack-level problem: exit 0, good units present, `bad` reported.
pub fn stack_case(name: &str, plant: impl FnOnce(&Setup) -> &'static str) {
    let s = Setup::new();
    let bad = plant(&s);
    let r = generate(&s, &s.path("hlsys.toml"));
    bounded(name, &r);
    assert_eq!(r.code, 0, "{name}: exit {}\n{}", r.code, r.stderr);
    for good in ["homelab-good-a.service", "homelab-good-b.service", "homelab.target"] {
        assert!(s.normal().join(good).is_file(), "{name}: {good} missing\n{}", r.stderr);
    }
    let report = s.report();
    let skipped = report["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(|e| e["stack"] == bad),
        "{name}: {bad} not reported: {skipped:#?}"
    );
    // The log is one record per line: a newline in the id is logged as a space.
    assert!(
        r.stderr.contains(&bad.replace('\n', " ")),
        "{name}: {bad} not logged:\n{}",
        r.stderr
    );
    assert_no_tmp(name, &s.normal());
}

/// The contract for an unusable config: exit 2, nothing written, fast and small.
pub fn config_case(name: &str, s: &Setup, config: &Path) -> Run {
    let r = generate(s, config);
    bounded(name, &r);
    assert_eq!(r.code, 2, "{name}: exit {}\n{}", r.code, r.stderr);
    assert_eq!(std::fs::read_dir(s.normal()).unwrap().count(), 0, "{name}: wrote units");
    assert!(r.stderr.contains("config unusable"), "{name}: {}", r.stderr);
    r
}

pub fn assert_no_tmp(name: &str, dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.ends_with(".tmp"), "{name}: left {n} behind");
    }
}
