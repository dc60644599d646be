//! A tree changed while the model is built (issue 27, "Trust and races"): a thread keeps
//! changing the tree the way a `git pull` or a deploy does it, with atomic steps only,
//! while `hlsys_core::tree::build` runs on it a thousand times. Every state the thread
//! passes through holds the good stacks under their ids, so each build must find every
//! good stack, under its own id, read consistently (never a compose file of one version
//! with the listing of another), and nothing else but the stacks that the changes move.
//!
//! The changes, in a loop:
//! - `tree` (the configured `stacks_dir`) is a link swapped between two copies of the
//!   tree, `v1` and `v2` (a new link renamed over it);
//! - in each copy, `apps/web` is exchanged with `apps/.web-next` (renameat2
//!   RENAME_EXCHANGE): one has `compose.yaml` with service `old`, the other
//!   `docker-compose.yml` with service `new`;
//! - in each copy, the link `apps/alias` is swapped between `../data` (inside the tree:
//!   not followed, so `data/db` is never `apps-alias-db`) and a directory outside (with
//!   the stack `svc`, so `apps-alias-svc` comes and goes);
//! - in each copy, `scratch/one` is renamed to `scratch/two` and back.
//!
//! The figures (builds, time per build, changes made, which views were seen) are printed.

mod common;

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const RUNS: usize = 1000;
/// Stop early (and say so) rather than run long on a slow machine.
const DEADLINE: Duration = Duration::from_secs(40);

const GOOD: [&str; 4] = ["apps-web", "data-db", "good-a", "good-b"];
/// Stacks the changes move: each may be there or not in a given build.
const MOVING: [&str; 3] = ["apps-alias-svc", "scratch-one", "scratch-two"];

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// Exchanges `a` and `b` atomically.
fn exchange(a: &Path, b: &Path) {
    let (a, b) = (cpath(a), cpath(b));
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(r, 0, "renameat2: {}", std::io::Error::last_os_error());
}

/// Points the link `link` at `target` atomically (a new link renamed over it).
fn retarget(link: &Path, target: &Path) {
    let tmp = link.with_file_name(format!(".{}.tmp", link.file_name().unwrap().to_string_lossy()));
    let _ = std::fs::remove_file(&tmp);
    symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}

/// One copy of the tree.
fn version(root: &Path) {
    let svc = |name: &str| format!("services:\n  {name}: {{image: \"busybox:${{TAG}}\"}}\n");
    write(&root.join("good/a/compose.yaml"), &svc("a"));
    write(&root.join("good/b/compose.yaml"), &svc("b"));
    write(&root.join("data/db/compose.yaml"), &svc("db"));
    write(&root.join("apps/web/compose.yaml"), &svc("old"));
    write(&root.join("apps/.web-next/docker-compose.yml"), &svc("new"));
    for env in ["good/a", "good/b", "data/db", "apps/web", "apps/.web-next"] {
        write(&root.join(env).join(".env"), "TAG=1\n");
    }
    write(&root.join("scratch/one/compose.yaml"), &svc("s"));
    symlink("../data", root.join("apps/alias")).unwrap();
}

#[test]
fn a_tree_changed_while_it_is_read_never_loses_or_renames_a_good_stack() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path();
    let outside = t.join("outside");
    write(
        &outside.join("svc/compose.yaml"),
        "services:\n  svc: {image: busybox}\n",
    );
    let (v1, v2) = (t.join("v1"), t.join("v2"));
    version(&v1);
    version(&v2);
    symlink(&v1, t.join("tree")).unwrap();
    write(
        &t.join("hlsys.toml"),
        &common::trusting_runner("stacks_dir = \"tree\"\nenv_files = []\n"),
    );
    let mut config = hlsys_core::config::Config::load(&t.join("hlsys.toml"), true).unwrap();
    common::trust_runner(&mut config);

    let stop = AtomicBool::new(false);
    let changes = AtomicU64::new(0);
    let mut seen_web = [0usize; 2];
    let mut seen_moving = [0usize; 3];
    let mut times: Vec<Duration> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for v in [&v1, &v2] {
                    exchange(&v.join("apps/web"), &v.join("apps/.web-next"));
                    let alias: PathBuf = if i % 2 == 0 { outside.clone() } else { "../data".into() };
                    retarget(&v.join("apps/alias"), &alias);
                    let (from, to) = if i % 2 == 0 { ("one", "two") } else { ("two", "one") };
                    std::fs::rename(v.join("scratch").join(from), v.join("scratch").join(to)).unwrap();
                }
                retarget(&t.join("tree"), if i % 2 == 0 { &v2 } else { &v1 });
                i += 1;
                changes.store(i, Ordering::Relaxed);
            }
        });
        for run in 0..RUNS {
            if started.elapsed() > DEADLINE {
                println!("deadline reached after {run} builds");
                break;
            }
            let t0 = Instant::now();
            let m = hlsys_core::tree::build(config.clone()).unwrap();
            times.push(t0.elapsed());
            let ids: BTreeSet<&str> = m.stacks.iter().map(|s| s.id.as_str()).collect();
            let mut wrong = Vec::new();
            for g in GOOD {
                if !ids.contains(g) {
                    wrong.push(format!("{g} missing"));
                }
            }
            for id in &ids {
                if !GOOD.contains(id) && !MOVING.contains(id) {
                    wrong.push(format!("unexpected stack {id}"));
                }
            }
            for e in &m.errors {
                if GOOD.contains(&e.stack.as_str()) || !MOVING.contains(&e.stack.as_str()) {
                    wrong.push(format!("error {}: {}: {}", e.stack, e.file.display(), e.message));
                }
            }
            // Read through descriptors, named by the tree's paths.
            let named = serde_json::to_string(&m.stacks).unwrap() + &serde_json::to_string(&m.errors).unwrap();
            if named.contains("/proc/") {
                wrong.push("a path through /proc in the model".into());
            }
            if let Some(web) = m.stack("apps-web") {
                if web.env_files != [web.dir.join(".env")] {
                    wrong.push(format!("apps-web env files {:?}", web.env_files));
                }
                let file = web.compose_file.file_name().unwrap().to_string_lossy().into_owned();
                match (file.as_str(), web.services.as_slice()) {
                    ("compose.yaml", [s]) if s == "old" => seen_web[0] += 1,
                    ("docker-compose.yml", [s]) if s == "new" => seen_web[1] += 1,
                    _ => wrong.push(format!("apps-web read inconsistently: {file} with {:?}", web.services)),
                }
            }
            for (i, id) in MOVING.iter().enumerate() {
                seen_moving[i] += ids.contains(id) as usize;
            }
            if !wrong.is_empty() {
                failures.push(format!("build {run}: {}", wrong.join("; ")));
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    let total: Duration = times.iter().sum();
    let max = times.iter().max().copied().unwrap_or_default();
    println!(
        "tree race: {} builds in {:.2} s (mean {:.2} ms, max {:.2} ms), {} rounds of changes \
         ({} atomic changes), apps-web old/new {}/{}, {}: {}, {}: {}, {}: {}, {} builds wrong",
        times.len(),
        started.elapsed().as_secs_f64(),
        total.as_secs_f64() * 1e3 / times.len().max(1) as f64,
        max.as_secs_f64() * 1e3,
        changes.load(Ordering::Relaxed),
        changes.load(Ordering::Relaxed) * 7,
        seen_web[0],
        seen_web[1],
        MOVING[0],
        seen_moving[0],
        MOVING[1],
        seen_moving[1],
        MOVING[2],
        seen_moving[2],
        failures.len()
    );
    assert!(times.len() >= 200, "only {} builds before the deadline", times.len());
    assert!(
        failures.is_empty(),
        "{} of {} builds lost, renamed or mixed a good stack; the first ones:\n{}",
        failures.len(),
        times.len(),
        failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}
