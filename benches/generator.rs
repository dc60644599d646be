//! End-to-end cost of `hlsys-generator` as systemd runs it: the whole release binary,
//! spawned with `HLSYS_CONFIG` and three fresh output directories, on synthetic trees of
//! 20 and 1000 stacks (benches/synth). Prints median / p90 / min wall time and the peak
//! RSS of the child next to the targets; asserts nothing about time.
//!
//!     cargo bench --bench generator
//!
//! The bench runs `cargo build --release -p hlsys-generator` first; set
//! `HLSYS_GENERATOR=/path/to/hlsys-generator` to measure a given binary instead.
//! `HLSYS_BENCH_RUNS` sets the number of measured runs (default 31, after 5 warm-ups).
//! Output goes to a tmpfs (`$XDG_RUNTIME_DIR`, /dev/shm, /run), as under systemd;
//! `HLSYS_BENCH_OUT=DIR` puts it elsewhere.
//! `HLSYS_BENCH_WRITE_TREES=DIR` only writes the two trees under DIR (for profiling) and
//! prints their `HLSYS_CONFIG`.
//!
//! Wall time runs from just before the spawn to the child being reaped, so it includes
//! exec, dynamic loading and writing every unit: what a boot or `daemon-reload` waits for.
//! Peak RSS is the child's own `ru_maxrss` from `wait4(2)` (per child, unlike
//! `getrusage(RUSAGE_CHILDREN)`, whose `ru_maxrss` is a maximum over all children and so
//! cannot be differenced).
//!
//! When it may (root), the bench first moves itself into a private mount namespace with
//! /dev/null bound over /dev/kmsg, so the runs do not write to the host's kernel log;
//! otherwise the generator falls back to stderr, which goes to /dev/null.
//!
//! Under `cargo test --benches` it only checks once that the 20-stack tree generates cleanly
//! with whatever generator binary is already built.

#[path = "synth/mod.rs"]
mod synth;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TARGET_20_MS: f64 = 10.0;
const TARGET_1000_MS: f64 = 150.0;
const TARGET_RSS_MIB: f64 = 16.0;

/// Binds /dev/null over /dev/kmsg in a private mount namespace of this process (and so of
/// every child). Must run while the process is single-threaded.
fn silence_kmsg() -> Result<(), String> {
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(format!("unshare(CLONE_NEWNS): {}", std::io::Error::last_os_error()));
        }
        let root = c"/";
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(format!("making / private: {}", std::io::Error::last_os_error()));
        }
        let (null, kmsg) = (c"/dev/null", c"/dev/kmsg");
        if libc::mount(
            null.as_ptr(),
            kmsg.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        ) != 0
        {
            return Err(format!(
                "binding /dev/null over /dev/kmsg: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// This bench's own profile directory (target/release/deps/generator-HASH → target/release).
fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.to_path_buf())
}

/// target/release: where `cargo build --release` puts the generator.
fn release_dir() -> Option<PathBuf> {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(t).join("release"));
    }
    Some(profile_dir()?.parent()?.join("release"))
}

/// The generator to run: `HLSYS_GENERATOR`, else the release build (built first when
/// `build`). For a smoke run, a binary of this bench's own profile will do too; `None`
/// when there is none.
fn generator_binary(build: bool) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HLSYS_GENERATOR") {
        return Some(PathBuf::from(p));
    }
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    if build {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("building: cargo build --release -p hlsys-generator");
        let ok = Command::new(&cargo)
            .args([
                "build",
                "--release",
                "-q",
                "-p",
                "hlsys-generator",
                "--manifest-path",
                manifest,
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!(
                "warning: `cargo build --release -p hlsys-generator` failed; using an existing binary if there is one"
            );
        }
    }
    let mut candidates: Vec<PathBuf> = release_dir().into_iter().collect();
    if !build {
        candidates.extend(profile_dir());
    }
    candidates
        .into_iter()
        .map(|d| d.join("hlsys-generator"))
        .find(|b| b.is_file())
}

/// Where the output directories go: a tmpfs, like the /run/systemd/generator* directories
/// systemd hands a generator (on a disk file system, creating a thousand files right after
/// deleting the previous run's thousand costs several times the generator's own work).
/// `HLSYS_BENCH_OUT` overrides.
fn output_root() -> (tempfile::TempDir, String) {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let is_tmpfs = |p: &Path| {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
            return false;
        };
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == TMPFS_MAGIC }
    };
    if let Some(dir) = std::env::var_os("HLSYS_BENCH_OUT") {
        let dir = PathBuf::from(dir);
        let kind = if is_tmpfs(&dir) { "tmpfs" } else { "not tmpfs" };
        return (
            tempfile::tempdir_in(&dir).expect("tempdir in HLSYS_BENCH_OUT"),
            format!("{} ({kind}, from HLSYS_BENCH_OUT)", dir.display()),
        );
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.extend(["/dev/shm", "/run", "/tmp"].map(PathBuf::from));
    for c in candidates {
        if is_tmpfs(&c) {
            if let Ok(t) = tempfile::tempdir_in(&c) {
                return (t, format!("{} (tmpfs, like /run)", c.display()));
            }
        }
    }
    let t = tempfile::tempdir().expect("tempdir");
    let where_ = format!(
        "{} (NOT tmpfs: no writable tmpfs found; expect slower, noisier writes than under /run)",
        t.path().display()
    );
    (t, where_)
}

struct Run {
    wall: Duration,
    /// user + system CPU time of the child: less disturbed than wall time by other load.
    cpu: Duration,
    maxrss_kib: i64,
}

/// One generator run into a fresh `out`: (wall time, child's peak RSS).
fn run_once(bin: &Path, config: &Path, out: &Path) -> Run {
    let dirs = [out.join("normal"), out.join("early"), out.join("late")];
    for d in &dirs {
        std::fs::create_dir_all(d).expect("creating output dir");
    }
    let mut cmd = Command::new(bin);
    cmd.args(&dirs)
        .env("HLSYS_CONFIG", config)
        .env_remove("HLSYS_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let t = Instant::now();
    let child = cmd.spawn().expect("spawning the generator");
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // Reaped here, not through `child.wait()`, to get this child's own rusage.
    let r = loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let wall = t.elapsed();
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    drop(child);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "generator failed (wait status {status:#x})"
    );
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    Run {
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        maxrss_kib: ru.ru_maxrss,
    }
}

fn check_output(out: &Path, expected_units: usize, stacks: usize) {
    let normal = out.join("normal");
    let text = std::fs::read_to_string(normal.join(hlsys_core::generator::REPORT_NAME)).expect("report written");
    let report: hlsys_core::generator::GeneratorReport = serde_json::from_str(&text).expect("report parses");
    assert!(
        report.skipped.is_empty(),
        "generator skipped stacks: {:#?}",
        report.skipped
    );
    assert_eq!(report.units.len(), expected_units, "units: {:?}", report.units);
    let services = std::fs::read_dir(&normal)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".service"))
        .count();
    // stacks + networks (+ gpu) oneshots
    assert!(services > stacks, "only {services} .service files written");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

fn measure(
    label: &str,
    bin: &Path,
    config: &Path,
    work: &Path,
    warmup: usize,
    runs: usize,
    target_ms: Option<f64>,
) -> bool {
    let mut walls = Vec::with_capacity(runs);
    let mut rss = Vec::with_capacity(runs);
    let mut cpu = Vec::with_capacity(runs);
    for k in 0..warmup + runs {
        let out = work.join(format!("out-{k}"));
        let r = run_once(bin, config, &out);
        let _ = std::fs::remove_dir_all(&out);
        if k >= warmup {
            walls.push(r.wall);
            rss.push(r.maxrss_kib);
            cpu.push(r.cpu);
        }
    }
    walls.sort();
    rss.sort();
    cpu.sort();
    let (med, p90, min, max) = (
        synth::percentile(&walls, 50),
        synth::percentile(&walls, 90),
        walls[0],
        *walls.last().unwrap(),
    );
    let peak_mib = *rss.last().unwrap() as f64 / 1024.0;
    let med_rss_mib = synth::percentile(&rss, 50) as f64 / 1024.0;
    let time_ok = target_ms.is_none_or(|t| ms(med) <= t);
    let rss_ok = peak_mib <= TARGET_RSS_MIB;
    println!("{label}:");
    match target_ms {
        Some(t) => println!(
            "  wall  median {:>8.2} ms  p90 {:>8.2} ms  min {:>8.2} ms  max {:>8.2} ms   target median <= {t} ms: {}",
            ms(med),
            ms(p90),
            ms(min),
            ms(max),
            verdict(time_ok)
        ),
        None => println!(
            "  wall  median {:>8.2} ms  p90 {:>8.2} ms  min {:>8.2} ms  max {:>8.2} ms   (baseline)",
            ms(med),
            ms(p90),
            ms(min),
            ms(max)
        ),
    }
    println!(
        "  CPU   median {:>8.2} ms  p90 {:>8.2} ms  min {:>8.2} ms   (user + system)",
        ms(synth::percentile(&cpu, 50)),
        ms(synth::percentile(&cpu, 90)),
        ms(cpu[0])
    );
    println!(
        "  RSS   peak {peak_mib:>6.2} MiB  median {med_rss_mib:>6.2} MiB   target peak <= {TARGET_RSS_MIB} MiB: {}",
        verdict(rss_ok)
    );
    time_ok && rss_ok
}

fn main() {
    // For profiling: write the trees somewhere lasting and stop.
    if let Some(dir) = std::env::var_os("HLSYS_BENCH_WRITE_TREES") {
        for n in [20, 1000] {
            let t = synth::write_tree(&Path::new(&dir).join(format!("t{n}")), n);
            println!("HLSYS_CONFIG={}", t.config.display());
        }
        return;
    }
    let bench = synth::bench_mode();
    let kmsg = silence_kmsg();
    let Some(bin) = generator_binary(bench) else {
        if bench {
            eprintln!(
                "error: no release hlsys-generator found in {:?}.\n\
                 Build it with `cargo build --release -p hlsys-generator`, or set HLSYS_GENERATOR=/path/to/hlsys-generator.",
                release_dir()
            );
            std::process::exit(1);
        }
        println!("generator smoke run skipped: no hlsys-generator built (cargo build -p hlsys-generator)");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");

    if !bench {
        let tree = synth::write_tree(&tmp.path().join("t20"), 20);
        let out = tmp.path().join("out");
        run_once(&bin, &tree.config, &out);
        check_output(&out, tree.expected_units(), tree.stacks);
        println!(
            "generator smoke run ok ({}); `cargo bench --bench generator` measures",
            bin.display()
        );
        return;
    }

    let (warmup, runs) = (5, synth::runs(31));
    let (out_root, out_where) = output_root();
    let out = out_root.path();
    println!("hlsys-generator benchmark: {}", bin.display());
    println!("runs: {warmup} warm-up + {runs} measured per tree, fresh output dirs, input tree in the page cache");
    println!("output: {out_where}");
    match &kmsg {
        Ok(()) => println!("kernel log: /dev/kmsg bound to /dev/null in a private mount namespace\n"),
        Err(e) => println!(
            "kernel log: not redirected ({e}); the generator logs to stderr (discarded) if it cannot open /dev/kmsg\n"
        ),
    }

    // Baseline: the same binary on an empty tree (config read, nothing to parse).
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(empty.join("tree")).unwrap();
    std::fs::write(empty.join("hlsys.toml"), "stacks_dir = \"tree\"\n").unwrap();
    measure(
        "empty tree (process start-up floor)",
        &bin,
        &empty.join("hlsys.toml"),
        out,
        warmup,
        runs,
        None,
    );
    println!();

    let mut all_ok = true;
    for (n, target) in [(20, TARGET_20_MS), (1000, TARGET_1000_MS)] {
        let tree = synth::write_tree(&tmp.path().join(format!("t{n}")), n);
        let probe = out.join("probe");
        run_once(&bin, &tree.config, &probe);
        check_output(&probe, tree.expected_units(), tree.stacks);
        let _ = std::fs::remove_dir_all(&probe);
        let label = format!(
            "{n} stacks ({} GPU, {} disabled, {} units, {} KiB of compose files)",
            tree.gpu_stacks,
            tree.disabled_stacks,
            tree.expected_units(),
            tree.compose_bytes / 1024
        );
        all_ok &= measure(&label, &bin, &tree.config, out, warmup, runs, Some(target));
        println!();
    }
    println!(
        "{}",
        if all_ok {
            "all targets met"
        } else {
            "some targets MISSED (see above)"
        }
    );
}
