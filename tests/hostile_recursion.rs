//! Hostile recursion in a stack's compose files (issue 27, "Recursion without a budget"):
//! `include` cycles through any path of an entry, long `extends`/`include` chains, an
//! include "diamond" whose work doubles per level, and loads that copy or re-read more
//! than the budget of one stack's load allows (core/src/compose/load/budget.rs). Each
//! case runs the generator next to the two good stacks and holds it to the stack-level
//! contract (`stack_case`: exit 0, the good units written, the bad stack reported and
//! logged) within `bounded`'s wall time and memory; the figures are printed.
//!
//! Chains are also read with more than 64 stacks in the tree, so that the stacks are read
//! on the generator's reading threads (smaller stacks than the main thread's).

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use hostile::*;

/// Enough stacks that the tree is read on several threads (tree/mod.rs: PARALLEL_FROM).
const FILLERS: usize = 70;

fn fill(s: &Setup) {
    for i in 0..FILLERS {
        s.write(
            &format!("tree/fill/f{i}/compose.yaml"),
            "services:\n  x: {image: busybox}\n",
        );
    }
}

/// The message the report gives for `stack`.
fn message(s: &Setup, stack: &str) -> String {
    let report = s.report();
    report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["stack"] == stack)
        .map(|e| {
            format!(
                "{}: {}",
                e["file"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default()
}

/// [`stack_case`]'s contract on a Setup kept for the message check.
fn checked(name: &str, want: &[&str], threaded: bool, plant: impl Fn(&Setup) -> &'static str) {
    let s = Setup::new();
    if threaded {
        fill(&s);
    }
    let bad = plant(&s);
    let r = generate(&s, &s.path("hlsys.toml"));
    bounded(name, &r);
    assert_eq!(r.code, 0, "{name}: exit {}\n{}", r.code, r.stderr);
    for good in ["homelab-good-a.service", "homelab-good-b.service", "homelab.target"] {
        assert!(s.normal().join(good).is_file(), "{name}: {good} missing\n{}", r.stderr);
    }
    let msg = message(&s, bad);
    assert!(!msg.is_empty(), "{name}: {bad} not reported\n{}", r.stderr);
    assert!(r.stderr.contains(bad), "{name}: {bad} not logged\n{}", r.stderr);
    println!("{:<30} {msg}", "");
    for w in want {
        assert!(msg.contains(w), "{name}: {w:?} not in {msg:?}");
    }
    assert_no_tmp(name, &s.normal());
}

/// Both ways: on the reading threads, where the message must name the budget (`want`)
/// too, then [`stack_case`] on the main thread (three stacks).
fn both(name: &str, want: &[&str], plant: impl Fn(&Setup) -> &'static str) {
    checked(&format!("{name} (threads)"), want, true, &plant);
    stack_case(name, &plant);
}

#[test]
fn include_path_list_names_its_own_file() {
    // The entry's own file among its paths (not first).
    both(
        "include path list names itself",
        &["include cycle", "compose.yaml"],
        |s| {
            s.write("tree/cyc/self/other.yaml", "services:\n  y: {image: busybox}\n");
            s.write(
                "tree/cyc/self/compose.yaml",
                "include:\n  - path:\n      - other.yaml\n      - compose.yaml\nservices:\n  x: {image: busybox}\n",
            );
            "cyc-self"
        },
    );
}

#[test]
fn include_cycle_through_a_second_path() {
    // Back to an ancestor through the second path of an entry one level down.
    both("include cycle via 2nd path", &["include cycle"], |s| {
        s.write(
            "tree/cyc/second/compose.yaml",
            "include:\n  - path: [sub/a.yaml, sub/b.yaml]\nservices:\n  x: {image: busybox}\n",
        );
        s.write("tree/cyc/second/sub/a.yaml", "services:\n  a: {image: busybox}\n");
        s.write(
            "tree/cyc/second/sub/b.yaml",
            "include:\n  - {path: [c.yaml, ../compose.yaml], project_directory: ..}\n",
        );
        s.write("tree/cyc/second/sub/c.yaml", "services:\n  c: {image: busybox}\n");
        "cyc-second"
    });
}

#[test]
fn include_cycle_long_form() {
    // The long form with a single path, and an override file that includes its stack.
    both("include of an ancestor, long form", &["include cycle"], |s| {
        s.write(
            "tree/cyc/long/compose.yaml",
            "include:\n  - path: sub/a.yaml\nservices:\n  x: {image: busybox}\n",
        );
        s.write(
            "tree/cyc/long/sub/a.yaml",
            "include:\n  - {path: [../compose.yaml], project_directory: ..}\n",
        );
        "cyc-long"
    });
}

/// `n` files chained by `extends.file`, the stack's compose file at the head.
fn extends_chain(s: &Setup, dir: &str, n: usize) {
    s.write(
        &format!("tree/{dir}/compose.yaml"),
        "services:\n  x: {extends: {file: f0.yaml, service: s}}\n",
    );
    for i in 0..n {
        let next = if i + 1 == n {
            "services:\n  s: {image: busybox}\n".to_string()
        } else {
            format!("services:\n  s: {{extends: {{file: f{}.yaml, service: s}}}}\n", i + 1)
        };
        s.write(&format!("tree/{dir}/f{i}.yaml"), next);
    }
}

/// `n` files each including the next.
fn include_chain(s: &Setup, dir: &str, n: usize) {
    s.write(
        &format!("tree/{dir}/compose.yaml"),
        "include: [c0.yaml]\nservices:\n  x: {image: busybox}\n",
    );
    for i in 0..n {
        let inc = if i + 1 == n {
            String::new()
        } else {
            format!("include: [c{}.yaml]\n", i + 1)
        };
        s.write(
            &format!("tree/{dir}/c{i}.yaml"),
            format!("{inc}services:\n  s{i}: {{image: busybox}}\n"),
        );
    }
}

#[test]
fn extends_chain_of_2000_files() {
    both("extends chain of 2000 files", &["nested include/extends levels"], |s| {
        extends_chain(s, "chain/ext", 2000);
        "chain-ext"
    });
}

#[test]
fn include_chain_of_2000_files() {
    both("include chain of 2000 files", &["nested include/extends levels"], |s| {
        include_chain(s, "chain/inc", 2000);
        "chain-inc"
    });
}

#[test]
fn extends_chain_of_24000_in_one_file() {
    both(
        "extends chain of 24000 in a file",
        &["nested include/extends levels"],
        |s| {
            // Each service extends the next, so resolving the first walks the whole chain.
            let mut y = String::from("services:\n");
            for i in 0..24_000 {
                y.push_str(&format!("  s{i}: {{extends: s{}}}\n", i + 1));
            }
            y.push_str("  s24000: {image: busybox}\n");
            s.write("tree/chain/local/compose.yaml", y);
            "chain-local"
        },
    );
}

#[test]
fn chains_within_the_depth_limit_load() {
    // As deep as the budget allows, on the reading threads: a unit, not an overflow.
    for threaded in [false, true] {
        let s = Setup::new();
        if threaded {
            fill(&s);
        }
        extends_chain(&s, "ok/ext", 60);
        include_chain(&s, "ok/inc", 60);
        let r = generate(&s, &s.path("hlsys.toml"));
        bounded(&format!("chains of 60 (threads: {threaded})"), &r);
        assert_eq!(r.code, 0, "{}", r.stderr);
        for unit in ["homelab-ok-ext.service", "homelab-ok-inc.service"] {
            assert!(s.normal().join(unit).is_file(), "{unit} missing\n{}", r.stderr);
        }
    }
}

/// `levels` levels of two files, each including both files of the next level.
fn diamond(s: &Setup, dir: &str, levels: usize) {
    let entry = |l: usize| format!("include:\n  - l{l}a.yaml\n  - l{l}b.yaml\n");
    s.write(
        &format!("tree/{dir}/compose.yaml"),
        format!("{}services:\n  x: {{image: busybox}}\n", entry(1)),
    );
    for l in 1..=levels {
        for side in ["a", "b"] {
            let inc = if l == levels { String::new() } else { entry(l + 1) };
            s.write(
                &format!("tree/{dir}/l{l}{side}.yaml"),
                format!("{inc}services:\n  s{l}{side}: {{image: busybox}}\n"),
            );
        }
    }
}

#[test]
fn include_diamond_is_bounded_by_files_read() {
    // 41 files, about 3 KB: 2^21 reads without a budget.
    both("include diamond of 41 files", &["compose and env files read"], |s| {
        diamond(s, "dia/mond", 20);
        "dia-mond"
    });
    // A small diamond is legal Compose and loads (each file read once per path to it).
    let s = Setup::new();
    diamond(&s, "dia/small", 3);
    let r = generate(&s, &s.path("hlsys.toml"));
    bounded("include diamond of 7 files", &r);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(s.normal().join("homelab-dia-small.service").is_file(), "{}", r.stderr);
}

#[test]
fn extends_copying_a_big_base() {
    // One service of 90,000 nodes (aliases), extended by 2,000 services: 180 million
    // nodes copied without a budget.
    both("extends copying a big base", &["nodes"], |s| {
        let mut y = String::from("x-a: &a [");
        y.push_str(&vec!["1"; 1000].join(","));
        y.push_str("]\nservices:\n  base:\n    image: busybox\n    x-big: [");
        y.push_str(&vec!["*a"; 88].join(","));
        y.push_str("]\n");
        for i in 0..2000 {
            y.push_str(&format!("  s{i}: {{extends: base}}\n"));
        }
        s.write("tree/copy/ext/compose.yaml", y);
        "copy-ext"
    });
}

#[test]
fn many_documents_near_the_node_limit() {
    // Many documents in one file, each near the per-document node limit.
    both("documents of 99,000 nodes each", &["nodes"], |s| {
        let mut doc = String::from("x-a: &a [");
        doc.push_str(&vec!["1"; 1000].join(","));
        doc.push_str("]\nx-b: [");
        doc.push_str(&vec!["*a"; 98].join(","));
        doc.push_str("]\n");
        let mut y = String::from("services:\n  x: {image: busybox}\n");
        for _ in 0..400 {
            y.push_str("---\n");
            y.push_str(&doc);
        }
        s.write("tree/copy/docs/compose.yaml", y);
        "copy-docs"
    });
}

#[test]
fn include_env_file_read_1000_times() {
    // One include entry naming the same 1 MiB env file a thousand times.
    both("include env_file read 1000 times", &["read"], |s| {
        let env: String = (0..20_000).map(|i| format!("K{i}={}\n", "v".repeat(40))).collect();
        s.write("tree/copy/env/big.env", env);
        s.write("tree/copy/env/sub/compose.yaml", "services:\n  y: {image: busybox}\n");
        let files = vec!["big.env"; 1000].join(", ");
        s.write(
            "tree/copy/env/compose.yaml",
            format!(
                "include:\n  - {{path: sub/compose.yaml, env_file: [{files}]}}\nservices:\n  x: {{image: busybox}}\n"
            ),
        );
        "copy-env"
    });
}
