//! In-process cost of turning a stack tree into units, without process start-up:
//! `Config::load`, `tree::build` and `units::render` on synthetic trees of 20 and 1000
//! stacks (benches/synth). Prints figures; asserts nothing about time.
//!
//!     cargo bench --bench model
//!
//! `HLSYS_BENCH_RUNS` sets the number of measured runs (default 31, after 3 warm-ups).
//! Under `cargo test --benches` it only checks once that the trees build cleanly.

#[path = "synth/mod.rs"]
mod synth;

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
    if !bench {
        println!("(smoke run only; `cargo bench --bench model` measures)");
    }
}
