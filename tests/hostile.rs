//! Hostile and broken input, run through the `hlsys-generator` binary as systemd runs it
//! (three output directories, `HLSYS_CONFIG`): a stack-level problem costs only that
//! stack. Every case generates its tree at test time (nothing big is committed) next to
//! two good stacks, then checks exit 0, the good stacks' units, the bad stack named in the
//! report, and the run's wall time and peak RSS (the child's own `ru_maxrss` from
//! wait4(2)) against generous bounds; the figures are printed.
//!
//! Config-level cases (the config itself unusable) must fail fast with exit 2 and bounded
//! memory, writing nothing.
//!
//! When the tests run as root the generator runs as nobody, so its log goes to stderr
//! (not the host's kernel log) where the test reads it.

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use hostile::*;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

fn compose(rel: &str) -> String {
    format!("tree/{rel}/compose.yaml")
}

/// `n` anchored lists, each `width` aliases of the one before ("billion laughs").
fn nested_laughs(n: usize, width: usize) -> String {
    let mut s = String::from("x-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..n {
        s.push_str(&format!(
            "x-a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); width].join(", ")
        ));
    }
    s + "services:\n  x: {image: busybox}\n"
}

/// Flat aliasing: one big list repeated by many aliases, each alias list repeating all
/// earlier ones (no deep nesting; the 25 KB file of the issue).
fn flat_laughs() -> String {
    let mut s = format!("x-big: &big [{}]\n", vec!["lol"; 500].join(", "));
    for i in 0..2500 {
        s.push_str(&format!("x-{i}: *big\n"));
    }
    s + "services:\n  x: {image: busybox}\n"
}

#[test]
fn yaml_aliasing() {
    stack_case("aliases nested", |s| {
        s.write(&compose("laughs/nested"), nested_laughs(10, 10));
        "laughs-nested"
    });
    stack_case("aliases flat", |s| {
        s.write(&compose("laughs/flat"), flat_laughs());
        "laughs-flat"
    });
    stack_case("alias self-reference", |s| {
        s.write(
            &compose("laughs/self"),
            "x-a: &a [1, *a]\nservices:\n  x: {image: busybox}\n",
        );
        "laughs-self"
    });
    stack_case("merge chain", |s| {
        let mut y = String::from("x-m0: &m0 {k0: 0}\n");
        for i in 1..3000 {
            y.push_str(&format!("x-m{i}: &m{i} {{<<: *m{}, k{i}: {i}}}\n", i - 1));
        }
        s.write(&compose("laughs/merge"), y + "services:\n  x: {image: busybox}\n");
        "laughs-merge"
    });
}

#[test]
fn yaml_nesting() {
    stack_case("yaml flow 80000 deep", |s| {
        s.write(
            &compose("deep/flow"),
            format!("services: {}{}", "[".repeat(80_000), "]".repeat(80_000)),
        );
        "deep-flow"
    });
    stack_case("yaml block 3000 deep", |s| {
        let y: String = (0..3000).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        s.write(&compose("deep/block"), y);
        "deep-block"
    });
    stack_case("yaml seq 50000 deep", |s| {
        s.write(&compose("deep/seq"), format!("services:\n{}x\n", "- ".repeat(50_000)));
        "deep-seq"
    });
}

#[test]
fn interpolation() {
    let nested = |n: usize| format!("{}x{}", "${U:-".repeat(n), "}".repeat(n));
    stack_case("interpolation 20000 deep", |s| {
        s.write(
            &compose("interp/d20k"),
            format!("services:\n  x: {{image: \"{}\"}}\n", nested(20_000)),
        );
        "interp-d20k"
    });
    stack_case("interpolation 100000 deep", |s| {
        s.write(
            &compose("interp/d100k"),
            format!("services:\n  x: {{image: \"{}\"}}\n", nested(100_000)),
        );
        "interp-d100k"
    });
    stack_case("env chain growing quadratically", |s| {
        let env: String = (0..40_000).map(|i| format!("K{i}=${{K{}}}x\n", i.max(1) - 1)).collect();
        s.write("tree/interp/chain/.env", env);
        s.write(&compose("interp/chain"), "services:\n  x: {image: busybox}\n");
        "interp-chain"
    });
    stack_case("value repeated 500000 times", |s| {
        s.write("tree/interp/amp/.env", format!("A={}\n", "a".repeat(1000)));
        let refs = "$A".repeat(500_000);
        s.write(
            &compose("interp/amp"),
            format!("services:\n  x: {{image: \"{refs}\"}}\n"),
        );
        "interp-amp"
    });
    stack_case("interpolation in .env deep", |s| {
        s.write("tree/interp/env/.env", format!("A={}\n", nested(100_000)));
        s.write(&compose("interp/env"), "services:\n  x: {image: busybox}\n");
        "interp-env"
    });
    // Not an error: many defaults side by side must stay linear. Reported only if wrong.
    let s = Setup::new();
    s.write(
        &compose("interp/flat"),
        format!("services:\n  x: {{image: \"{}\"}}\n", "${U:-ab}".repeat(100_000)),
    );
    let r = generate(&s, &s.path("hlsys.toml"));
    bounded("interpolation 100000 flat", &r);
    assert_eq!(r.code, 0);
    assert!(s.normal().join("homelab-interp-flat.service").is_file(), "{}", r.stderr);
}

#[test]
fn special_and_endless_files() {
    stack_case("compose is a FIFO", |s| {
        s.fifo(&compose("sp/fifo"));
        "sp-fifo"
    });
    stack_case("compose -> /dev/zero", |s| {
        s.link(&compose("sp/zero"), "/dev/zero");
        "sp-zero"
    });
    stack_case("compose -> /dev/urandom", |s| {
        s.link(&compose("sp/urandom"), "/dev/urandom");
        "sp-urandom"
    });
    stack_case("compose -> /proc/self/pagemap", |s| {
        s.link(&compose("sp/pagemap"), "/proc/self/pagemap");
        "sp-pagemap"
    });
    stack_case("compose is a directory", |s| {
        s.mkdirs(&compose("sp/dir"));
        "sp-dir"
    });
    stack_case("4 MiB of one-character items", |s| {
        let items = vec!["1"; 1_900_000].join(",");
        s.write(
            &compose("sp/tiny"),
            format!("services:\n  x: {{image: busybox}}\nx-l: [{items}]\n"),
        );
        "sp-tiny"
    });
    stack_case("compose over 4 MiB", |s| {
        s.sparse(&compose("sp/big"), 5 << 20);
        "sp-big"
    });
    stack_case("compose invalid UTF-8", |s| {
        s.write(&compose("sp/utf8"), b"services:\n  x: {image: \"bus\xffbox\"}\n");
        "sp-utf8"
    });
    stack_case(".env is a FIFO", |s| {
        s.write(&compose("sp/envfifo"), "services:\n  x: {image: busybox}\n");
        s.fifo("tree/sp/envfifo/.env");
        "sp-envfifo"
    });
    stack_case(".env -> /dev/zero", |s| {
        s.write(&compose("sp/envzero"), "services:\n  x: {image: busybox}\n");
        s.link("tree/sp/envzero/.env.local", "/dev/zero");
        "sp-envzero"
    });
    stack_case(".env over 1 MiB", |s| {
        s.write(&compose("sp/envbig"), "services:\n  x: {image: busybox}\n");
        s.sparse("tree/sp/envbig/.env", 2 << 20);
        "sp-envbig"
    });
    stack_case("layer .env is a FIFO", |s| {
        s.write(&compose("fifolayer/x"), "services:\n  x: {image: busybox}\n");
        s.fifo("tree/fifolayer/.env");
        "fifolayer-x"
    });
}

#[test]
fn big_but_legal_env_is_linear() {
    let s = Setup::new();
    let env: String = (0..40_000)
        .map(|i| format!("K{i}=${{K{}:+y}}x\n", i.max(1) - 1))
        .collect();
    s.write("tree/many/keys/.env", env);
    s.write(&compose("many/keys"), "services:\n  x: {image: \"${K39999}\"}\n");
    let r = generate(&s, &s.path("hlsys.toml"));
    bounded(".env with 40000 keys", &r);
    assert_eq!(r.code, 0);
    assert!(s.normal().join("homelab-many-keys.service").is_file(), "{}", r.stderr);
}

#[test]
fn names_and_links() {
    stack_case("unit name over 255", |s| {
        let long = format!("tree/{}/{}", "a".repeat(120), "b".repeat(120));
        s.write(&format!("{long}/compose.yaml"), "services:\n  x: {image: busybox}\n");
        Box::leak(format!("{}-{}", "a".repeat(120), "b".repeat(120)).into_boxed_str())
    });
    stack_case("newline in a directory", |s| {
        s.write(&compose("nl/a\nb"), "services:\n  x: {image: busybox}\n");
        "nl/a\nb"
    });
    // A link inside the tree to a stack in the tree never renames it.
    let s = Setup::new();
    s.link("tree/aaa-link", s.path("tree/good/a"));
    s.link("tree/good/loop", s.path("tree"));
    s.link("tree/zz/up", "..");
    let r = generate(&s, &s.path("hlsys.toml"));
    bounded("symlinks into the tree", &r);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(s.normal().join("homelab-good-a.service").is_file());
    let units: Vec<String> = std::fs::read_dir(s.normal())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !units.iter().any(|u| u.contains("aaa-link") || u.contains("loop")),
        "{units:?}"
    );
    // A link out of the tree is followed.
    let outside = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(outside.path().join("ext")).unwrap();
    std::fs::write(
        outside.path().join("ext/compose.yaml"),
        "services:\n  x: {image: busybox}\n",
    )
    .unwrap();
    s.link("tree/linked", outside.path().join("ext"));
    let r = generate(&s, &s.path("hlsys.toml"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(s.normal().join("homelab-linked.service").is_file(), "{}", r.stderr);
}

#[test]
fn networks_are_checked_offline() {
    let s = Setup::new();
    s.write(
        "tree/networks.toml",
        "[networks.a]\nsubnet = \"10.1.0.0/16\"\n[networks.b]\nsubnet = \"10.1.2.0/24\"\n\
         [networks.c]\nsubnet = \"10.300.0.0/24\"\n[networks.d]\nsubnet = \"10.9.0.0/24\"\ngateway = \"10.8.0.1\"\n",
    );
    let r = generate(&s, &s.path("hlsys.toml"));
    bounded("bad networks", &r);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(s.normal().join("homelab-good-a.service").is_file());
    let report = s.report();
    let msgs: Vec<&str> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["stack"] == "(networks)")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    for want in ["overlap", "CIDR", "outside subnet"] {
        assert!(msgs.iter().any(|m| m.contains(want)), "{want}: {msgs:?}");
        assert!(r.stderr.contains(want), "{want} not logged: {}", r.stderr);
    }
    // The CLI says the same without Docker.
    for args in [&["stacks"][..], &["plan"], &["check"]] {
        let o = Command::new(env!("CARGO_BIN_EXE_hlsys"))
            .arg("--config")
            .arg(s.path("hlsys.toml"))
            .args(args)
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "hlsys {args:?} succeeded:\n{text}");
        for want in ["overlap", "CIDR", "outside subnet"] {
            assert!(text.contains(want), "hlsys {args:?} does not say {want}:\n{text}");
        }
    }
}

#[test]
fn unusable_configs_fail_fast() {
    let s = Setup::new();
    config_case("HLSYS_CONFIG=/dev/zero", &s, Path::new("/dev/zero"));
    let fifo = s.fifo("fifo.toml");
    config_case("config is a FIFO", &s, &fifo);
    let big = s.sparse("big.toml", 2 << 20);
    config_case("config over 1 MiB", &s, &big);
    let nl = s.write("x\nConflicts=docker.service", "stacks_dir = \"tree\"\n");
    config_case("newline in config path", &s, &nl);
    let s = Setup::new();
    s.fifo("tree/networks.toml");
    config_case("networks.toml is a FIFO", &s, &s.path("hlsys.toml"));
    let s = Setup::new();
    s.link("tree/service.toml", "/dev/zero");
    config_case("service.toml -> /dev/zero", &s, &s.path("hlsys.toml"));
    let s = Setup::new();
    s.write("hlsys.toml", "stacks_dir = \"tree \"\n");
    config_case("stacks_dir with trailing blank", &s, &s.path("hlsys.toml"));
    s.write(
        "hlsys.toml",
        "stacks_dir = \"tree\"\n[stacks.good-a]\ntimeout_start_sec = 9223372036854775807\n",
    );
    config_case("timeout out of range", &s, &s.path("hlsys.toml"));
}

#[test]
fn concurrent_runs_into_one_directory_agree() {
    let s = Setup::new();
    for i in 0..40 {
        s.write(&compose(&format!("many/s{i}")), "services:\n  x: {image: busybox}\n");
    }
    let config = s.path("hlsys.toml");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let s_out = s.normal();
            let cfg = config.clone();
            let early = s.path("early");
            let late = s.path("late");
            std::thread::spawn(move || {
                let mut cmd = Command::new(common::generator_bin());
                cmd.args([&s_out, &early, &late]).env("HLSYS_CONFIG", &cfg);
                if is_root() {
                    cmd.uid(NOBODY).gid(NOBODY);
                }
                cmd.stderr(Stdio::null()).status().unwrap()
            })
        })
        .collect();
    for r in runs {
        assert!(r.join().unwrap().success());
    }
    let report = s.report();
    let units = report["units"].as_array().unwrap();
    for u in units {
        let name = u.as_str().unwrap();
        assert!(s.normal().join(name).is_file(), "{name} listed but missing");
    }
    assert_no_tmp("concurrent", &s.normal());
}

/// Names of the entries below `dir` (recursive, relative), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        if p.symlink_metadata().unwrap().is_dir() {
            out.extend(listing(&p).into_iter().map(|n| format!("{rel}/{n}")));
        }
        out.push(rel);
    }
    out.sort();
    out
}

#[test]
fn plan_out_makes_the_directory_match_the_tree() {
    let s = Setup::new();
    let out = s.path("plan");
    let plan = || {
        let o = Command::new(env!("CARGO_BIN_EXE_hlsys"))
            .arg("--config")
            .arg(s.path("hlsys.toml"))
            .args(["plan", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    plan();
    let first = listing(&out);
    assert!(first.contains(&"homelab-good-b.service".to_string()), "{first:?}");
    // Somebody else's files in the directory are left alone.
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    symlink("/dev/null", out.join("multi-user.target.wants/other.service")).unwrap();
    std::fs::remove_dir_all(s.path("tree/good/b")).unwrap();
    plan();
    let second = listing(&out);
    let mut want: Vec<String> = first.into_iter().filter(|n| !n.contains("good-b")).collect();
    want.extend([
        "keep.txt".to_string(),
        "multi-user.target.wants/other.service".to_string(),
    ]);
    want.sort();
    assert_eq!(second, want);
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let s = Setup::new();
    // A directory where a unit goes: creating the unit fails after others were written.
    let blocker = s.normal().join("homelab-good-b.service");
    std::fs::create_dir(&blocker).unwrap();
    let r = generate(&s, &s.path("hlsys.toml"));
    bounded("write fails half-way", &r);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("none left behind"), "{}", r.stderr);
    assert_eq!(listing(&s.normal()), vec!["homelab-good-b.service".to_string()]);
}
