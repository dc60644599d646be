//! In-process cost of turning a stack tree into units, without process start-up:
//! `Config::load`, `tree::build` and `units::render` on synthetic trees of 20 and 1000
//! stacks (benches/synth). Then the preflight against the model on 2,500 stacks (issue
//! 27: within 2× of `hlsys stacks --json`): `hlsys check --json` and `hlsys stacks
//! --json` as processes (Docker unreachable, so the Docker-side checks return at once),
//! and `check::run` against `tree::build` in-process; also with every stack publishing
//! one port, the worst case of the ports check. Prints figures; asserts nothing about time.
//!
//!     cargo bench --bench model
//!
//! `HLSYS_BENCH_RUNS` sets the number of measured runs (default 31, after 3 warm-ups).
//! Under `cargo test --benches` it only checks once that the trees build cleanly.

#[path = "synth/mod.rs"]
mod synth;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hlsys_core::config::Config;

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

struct Stats {
    median: Duration,
    p90: Duration,
    min: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    Stats {
        median: synth::percentile(&v, 50),
        p90: synth::percentile(&v, 90),
        min: v[0],
    }
}

fn main() {
    let bench = synth::bench_mode();
    let (warmup, runs) = if bench { (3, synth::runs(31)) } else { (0, 1) };
    let sizes: &[usize] = if bench { &[20, 1000] } else { &[20] };
    println!("hlsys model benchmark: in-process Config::load + tree::build + units::render");
    println!("runs: {warmup} warm-up + {runs} measured per size (page cache warm)\n");
    for &n in sizes {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tree = synth::write_tree(tmp.path(), n);

        // Correctness first: every stack must make it, or the timing means little.
        let config = Config::load(&tree.config, true).expect("config loads");
        let model = hlsys_core::tree::build(config.clone()).expect("model builds");
        assert!(
            model.errors.is_empty(),
            "synthetic tree has errors: {:#?}",
            model.errors
        );
        assert_eq!(model.stacks.len(), n);
        let g = hlsys_core::units::render(&model);
        assert!(g.skipped.is_empty(), "skipped while rendering: {:#?}", g.skipped);
        assert_eq!(g.units.len(), tree.expected_units());

        let mut load = Vec::new();
        let mut build = Vec::new();
        let mut render = Vec::new();
        for k in 0..warmup + runs {
            let t = Instant::now();
            let c = Config::load(&tree.config, true).expect("config loads");
            let t_load = t.elapsed();
            let t = Instant::now();
            let m = hlsys_core::tree::build(c).expect("model builds");
            let t_build = t.elapsed();
            let t = Instant::now();
            let g = hlsys_core::units::render(&m);
            let t_render = t.elapsed();
            std::hint::black_box(&g);
            drop((m, g));
            if k >= warmup {
                load.push(t_load);
                build.push(t_build);
                render.push(t_render);
            }
        }
        println!(
            "{n} stacks ({} GPU, {} disabled, {} KiB of compose files, {} units):",
            tree.gpu_stacks,
            tree.disabled_stacks,
            tree.compose_bytes / 1024,
            tree.expected_units()
        );
        for (what, v) in [
            ("Config::load", load),
            ("tree::build", build),
            ("units::render", render),
        ] {
            let s = stats(v);
            println!(
                "  {what:<14} median {:>10}  p90 {:>10}  min {:>10}   per stack {:.1} µs",
                ms(s.median),
                ms(s.p90),
                ms(s.min),
                s.median.as_secs_f64() * 1e6 / n as f64
            );
        }
        println!();
    }
    check_against_stacks(bench);
    if !bench {
        println!("(smoke run only; `cargo bench --bench model` measures)");
    }
}

/// Median wall time of `runs` runs of `hlsys --config CONFIG ARGS` (after one warm-up),
/// with the bytes it printed.
fn hlsys_process(config: &Path, args: &[&str], runs: usize) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut bytes = 0;
    for k in 0..runs + 1 {
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_hlsys"))
            .arg("--config")
            .arg(config)
            .args(args)
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .expect("hlsys runs");
        if k > 0 {
            times.push(t.elapsed());
        }
        bytes = out.stdout.len();
    }
    times.sort();
    (synth::percentile(&times, 50), bytes)
}

/// Median of `runs` in-process runs of `f` (after one warm-up).
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs + 1)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.remove(0);
    times.sort();
    synth::percentile(&times, 50)
}

/// `hlsys check --json` against `hlsys stacks --json` on the synthetic tree of 2,500
/// stacks, as is and with every stack publishing 8080 as well.
fn check_against_stacks(bench: bool) {
    let n = if bench { 2500 } else { 20 };
    let runs = if bench { synth::runs(7).min(15) } else { 1 };
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = synth::write_tree(tmp.path(), n);
    println!("{n} stacks: the preflight against the model ({runs} measured runs, median)");
    for crowded in [false, true] {
        if crowded {
            // Every stack publishes one more port, the same one: the ports check's worst case.
            for e in walk_compose_files(&tree.stacks_dir) {
                let text = std::fs::read_to_string(&e).unwrap();
                let text = text.replacen("    ports:\n", "    ports:\n      - \"8080:80\"\n", 1);
                std::fs::write(&e, text).unwrap();
            }
            println!("  every stack also publishing 8080:");
        }
        let (stacks, stacks_bytes) = hlsys_process(&tree.config, &["stacks", "--json"], runs);
        let (check, check_bytes) = hlsys_process(&tree.config, &["check", "--json"], runs);
        println!(
            "  process    hlsys stacks --json {:>10} ({stacks_bytes} bytes)   hlsys check --json {:>10} ({check_bytes} bytes)   check/stacks {:.2}",
            ms(stacks),
            ms(check),
            check.as_secs_f64() / stacks.as_secs_f64()
        );
        let config = Config::load(&tree.config, true).expect("config loads");
        let build = median(runs, || {
            std::hint::black_box(hlsys_core::tree::build(config.clone()).expect("model builds"));
        });
        let model = hlsys_core::tree::build(config.clone()).expect("model builds");
        let rt = hlsys::docker::runtime().expect("runtime");
        let opts = hlsys::check::CheckOptions {
            docker_host: Some("unix:///nonexistent.sock".into()),
            root: "/".into(),
            ..Default::default()
        };
        let check_run = median(runs, || {
            std::hint::black_box(rt.block_on(hlsys::check::run(Ok(&model), &opts)));
        });
        println!(
            "  in-process tree::build         {:>10}                     check::run         {:>10}                     check/build  {:.2}",
            ms(build),
            ms(check_run),
            check_run.as_secs_f64() / build.as_secs_f64()
        );
    }
    println!();
}

/// Every compose.yaml below `dir`.
fn walk_compose_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_compose_files(&p));
        } else if p.file_name().is_some_and(|n| n == "compose.yaml") {
            out.push(p);
        }
    }
    out
}
