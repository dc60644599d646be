//! Output and cost that must stay linear in the input (issue 27, "Output that grows with
//! the square of the input" and "Cost of stacks × variables"): thousands of overlapping
//! networks, a dependency ring over thousands of stacks, a shared env of 65,536 variables
//! under 800 stacks, skipped stacks whose messages would outgrow the report, and `hlsys
//! check` on a thousand stacks publishing one port. Each run keeps the harness's bounds
//! (tests/common/hostile.rs: wall time, peak RSS) and says what it wrote; the report and
//! the log stay under the sizes stated here whatever the input (hlsys-generator(8),
//! LIMITS: each problem class named a few times, the rest counted).

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use hostile::*;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a run may write, far above what the fixed code writes for these inputs and far
/// below what pairwise or per-member output would (tens of MiB).
const SMALL: usize = 64 << 10;

fn compose(rel: &str) -> String {
    format!("tree/{rel}/compose.yaml")
}

/// `n` with thousands separators, as the messages count ("1,999,000").
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn report_text(s: &Setup) -> String {
    std::fs::read_to_string(s.normal().join("hlsys-generator.json")).unwrap()
}

/// The stack contract of the harness ([`stack_case`]) for a planted tree, returning the
/// run and the report's text for the size checks.
fn output_case(name: &str, s: &Setup, bad: &[&str]) -> (Run, String) {
    let r = generate(s, &s.path("hlsys.toml"));
    bounded(name, &r);
    assert_eq!(r.code, 0, "{name}: exit {}\n{}", r.code, tail(&r.stderr));
    for good in ["homelab-good-a.service", "homelab-good-b.service", "homelab.target"] {
        assert!(
            s.normal().join(good).is_file(),
            "{name}: {good} missing\n{}",
            tail(&r.stderr)
        );
    }
    let text = report_text(s);
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let skipped = report["skipped"].as_array().unwrap();
    for b in bad {
        assert!(skipped.iter().any(|e| e["stack"] == *b), "{name}: {b} not reported");
    }
    assert!(
        r.stderr.contains(bad[0]),
        "{name}: {} not logged:\n{}",
        bad[0],
        tail(&r.stderr)
    );
    assert_no_tmp(name, &s.normal());
    println!(
        "{name:<30} report {:>9} bytes, log {:>9} bytes in {} lines",
        text.len(),
        r.stderr.len(),
        r.stderr.lines().count()
    );
    (r, text)
}

/// The end of a long text, for failure messages that must not be megabytes long.
fn tail(text: &str) -> &str {
    let mut from = text.len().saturating_sub(2000);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..]
}

/// `hlsys ARGS` on the setup's config without Docker: exit code, stdout, stderr, wall
/// time; killed after the harness's [`KILL_AFTER`].
#[allow(clippy::zombie_processes)] // reaped by `reap` (wait4)
fn hlsys(s: &Setup, args: &[&str]) -> (i32, String, String, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hlsys"));
    cmd.arg("--config")
        .arg(s.path("hlsys.toml"))
        .args(args)
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let (code, _) = reap(child.id() as i32, start);
    let wall = start.elapsed();
    (code, out.join().unwrap(), err.join().unwrap(), wall)
}

/// `hlsys stacks --json` as JSON (stdout only).
fn hlsys_model(s: &Setup) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_hlsys"))
        .arg("--config")
        .arg(s.path("hlsys.toml"))
        .args(["stacks", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// 2,000 networks on one subnet and 1,000 nested in a /8 (1,999,000 + 1,000 overlapping
/// pairs), 500 invalid ones: the report, the log and the CLI name a few of each class
/// and count the rest.
#[test]
fn overlap_flood() {
    let s = Setup::new();
    let mut toml = String::new();
    for i in 0..2000 {
        toml.push_str(&format!("[networks.same{i:04}]\nsubnet = \"10.1.0.0/16\"\n"));
    }
    toml.push_str("[networks.big]\nsubnet = \"172.16.0.0/12\"\n");
    for i in 0..1000 {
        toml.push_str(&format!(
            "[networks.nested{i:04}]\nsubnet = \"172.{}.{}.0/24\"\n",
            16 + i / 256,
            i % 256
        ));
    }
    for i in 0..500 {
        toml.push_str(&format!("[networks.bad{i:03}]\nsubnet = \"10.300.{i}.0/24\"\n"));
    }
    s.write("tree/networks.toml", &toml);
    let (r, text) = output_case("overlap flood", &s, &["(networks)"]);
    assert!(text.len() < SMALL, "report of {} bytes", text.len());
    assert!(
        r.stderr.len() < SMALL,
        "log of {} bytes:\n{}",
        r.stderr.len(),
        tail(&r.stderr)
    );
    let pairs = 2000 * 1999 / 2 + 1000;
    for want in [
        thousands(pairs).as_str(),
        "overlapping pairs",
        "invalid networks",
        "CIDR",
    ] {
        assert!(text.contains(want), "report does not say {want:?}:\n{}", tail(&text));
        assert!(
            r.stderr.contains(want),
            "log does not say {want:?}:\n{}",
            tail(&r.stderr)
        );
    }
    // The CLI says the same, as briefly.
    for args in [&["stacks", "--json"][..], &["stacks"], &["check", "--json"]] {
        let (code, out, err, wall) = hlsys(&s, args);
        let out = out + &err;
        println!("hlsys {args:?}: exit {code}, {} bytes in {wall:?}", out.len());
        assert!(code > 0, "hlsys {args:?} succeeded");
        assert!(wall < MAX_WALL, "hlsys {args:?} took {wall:?}");
        assert!(out.len() < SMALL, "hlsys {args:?}: {} bytes", out.len());
        assert!(out.contains(&thousands(pairs)), "hlsys {args:?}:\n{}", tail(&out));
    }
}

/// A ring of 2,000 stacks through service.toml: every member is reported, the cycle is
/// spelled out once (its first few stacks and a count), not once per member.
#[test]
fn dependency_ring_named_once() {
    const N: usize = 2000;
    let s = Setup::new();
    let mut toml = String::new();
    for i in 0..N {
        s.write(&compose(&format!("ring/s{i}")), "services:\n  x: {image: busybox}\n");
        toml.push_str(&format!("[ring-s{i}]\nrequires = [\"ring-s{}\"]\n", (i + 1) % N));
    }
    s.write("tree/service.toml", &toml);
    let members: Vec<String> = (0..N).map(|i| format!("ring-s{i}")).collect();
    let bad: Vec<&str> = members.iter().map(String::as_str).collect();
    let (r, text) = output_case("dependency ring of 2000", &s, &bad);
    // Linear: a few hundred bytes per stack of the tree (entry, input fingerprint).
    assert!(text.len() < N * 600, "report of {} bytes", text.len());
    assert!(r.stderr.len() < SMALL * 4, "log of {} bytes", r.stderr.len());
    let arrows = text.matches(" → ").count();
    assert!(
        arrows < 40,
        "the cycle is spelled out {arrows} arrows long in the report"
    );
    assert!(
        r.stderr.matches(" → ").count() < 40,
        "the cycle is spelled out in the log more than once"
    );
    assert!(
        text.contains(&thousands(N as u64)),
        "the cycle's length is not said:\n{}",
        tail(&text)
    );
}

/// A setup whose config names `global.env` with 65,536 variables (`V{i}=` `value(i)`),
/// under the 1 MiB cap of an env file.
fn with_big_global_env(value: impl Fn(usize) -> String) -> Setup {
    let s = Setup::new();
    let env: String = (0..65_536).map(|i| format!("V{i}={}\n", value(i))).collect();
    assert!(env.len() < 1 << 20);
    s.write("global.env", env);
    s.write(
        "hlsys.toml",
        format!(
            "stacks_dir = \"tree\"\nenv_files = [\"{}\"]\n",
            s.path("global.env").display()
        ),
    );
    s
}

/// 65,536 variables in the config's env file (under its 1 MiB cap) under 800 stacks in 100
/// layers, each layer and stack with its own `.env`: shared, not copied per stack.
#[test]
fn big_shared_env_under_many_stacks() {
    let s = with_big_global_env(|i| format!("v{i}"));
    for l in 0..100 {
        s.write(&format!("tree/l{l}/.env"), format!("LAYER=l{l}\nV7=layer-${{V7}}\n"));
        for i in 0..8 {
            let dir = format!("l{l}/s{i}");
            s.write(&format!("tree/{dir}/.env"), format!("OWN=s{i}-${{V65535}}\n"));
            s.write(
                &compose(&dir),
                "services:\n  x: {image: \"busybox:${V7}\"}\nnetworks:\n  default: {name: \"n-${LAYER}-${V7}-${OWN}\"}\n",
            );
        }
    }
    let r = generate(&s, &s.path("hlsys.toml"));
    bounded("65536 variables x 800 stacks", &r);
    assert_eq!(r.code, 0, "{}", tail(&r.stderr));
    let report = s.report();
    assert_eq!(report["skipped"].as_array().unwrap().len(), 0, "{}", tail(&r.stderr));
    for l in [0, 57, 99] {
        for i in [0, 7] {
            let unit = s.normal().join(format!("homelab-l{l}-s{i}.service"));
            assert!(unit.is_file(), "{} missing", unit.display());
        }
    }
    // The layering itself: the stack's .env over the layer's over the config's.
    let m = hlsys_model(&s);
    let st = &m["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "l57-s3")
        .unwrap();
    assert_eq!(st["networks"][0], "n-l57-layer-v7-s3-v65535", "{st}");
}

/// The same shared variables under 200 stacks that are all in error: each error is masked
/// of the stack's variables, and the shared ones are indexed for that once, not per stack
/// (indexed per stack, 20 such stacks took 54 s).
#[test]
fn big_shared_env_under_many_broken_stacks() {
    let s = with_big_global_env(|i| format!("x{i}"));
    for l in 0..25 {
        s.write(&format!("tree/l{l}/.env"), format!("LAYER=layer-{l}\n"));
        for i in 0..8 {
            let dir = format!("l{l}/s{i}");
            s.write(&format!("tree/{dir}/.env"), format!("OWN=own-{l}-{i}\n"));
            s.write(
                &compose(&dir),
                "services:\n  x: {image: \"busybox:${V7}\", depends_on: [\"n-${V65535}\"]}\n",
            );
        }
    }
    let r = generate(&s, &s.path("hlsys.toml"));
    bounded("65536 variables x 200 broken stacks", &r);
    assert_eq!(r.code, 0, "{}", tail(&r.stderr));
    let report = s.report();
    assert_eq!(report["skipped"].as_array().unwrap().len(), 200, "{}", tail(&r.stderr));
    let skipped = report["skipped"].to_string();
    assert!(!skipped.contains("x65535"), "{}", &skipped[..skipped.len().min(2000)]);
    assert!(s.normal().join("homelab-good-a.service").is_file());
}

/// One stack requiring an unknown stack of a 1,000,000-character name, and 40 stacks
/// requiring that one: each of the 40 used to quote the first one's whole message (40 MB
/// in the report, more than a later run reads back). Messages are cut in the report and
/// the log, the report stays small enough for the next run to read its own list of units
/// back (hlsys.toml(5), LIMITS), so a stack removed since loses its unit.
#[test]
fn report_stays_under_its_cap() {
    let s = Setup::new();
    let name = "x".repeat(1_000_000);
    s.write(
        &compose("long/root"),
        format!("x-hlsys: {{requires: [\"{name}\"]}}\nservices:\n  x: {{image: busybox}}\n"),
    );
    for i in 0..40 {
        s.write(
            &compose(&format!("long/s{i}")),
            "x-hlsys: {requires: [long-root]}\nservices:\n  x: {image: busybox}\n",
        );
    }
    let (r, text) = output_case(
        "a long message quoted 40 times",
        &s,
        &["long-root", "long-s0", "long-s39"],
    );
    assert!(text.len() < SMALL * 2, "report of {} bytes", text.len());
    assert!(r.stderr.len() < SMALL, "log of {} bytes", r.stderr.len());
    for line in r.stderr.lines() {
        assert!(
            line.len() <= 1024,
            "a log record of {} bytes (kmsg takes 1024)",
            line.len()
        );
    }
    // The next run reads the report back: good-b's unit goes with good-b.
    std::fs::remove_dir_all(s.path("tree/good/b")).unwrap();
    let r = generate(&s, &s.path("hlsys.toml"));
    bounded("second run", &r);
    assert_eq!(r.code, 0);
    assert!(
        !s.normal().join("homelab-good-b.service").exists(),
        "the unit of a removed stack stayed: the report was not read back ({} bytes)",
        text.len()
    );
}

/// 1,000 stacks publishing the same host port: `hlsys check` says so in one bounded
/// message (no pair by pair), in about the time `hlsys stacks` takes.
#[test]
fn check_ports_linear() {
    let s = Setup::new();
    for i in 0..1000 {
        s.write(
            &compose(&format!("web/s{i}")),
            "services:\n  x:\n    image: busybox\n    ports: [\"8080:80\"]\n",
        );
    }
    let (_, stacks, _, t_stacks) = hlsys(&s, &["stacks", "--json"]);
    let (code, out, _, t_check) = hlsys(&s, &["check", "--json"]);
    println!(
        "1000 stacks on one port: stacks --json {:.0} ms ({} bytes), check --json {:.0} ms ({} bytes)",
        t_stacks.as_secs_f64() * 1e3,
        stacks.len(),
        t_check.as_secs_f64() * 1e3,
        out.len()
    );
    assert_eq!(code, 1, "{}", tail(&out));
    assert!(t_check < MAX_WALL, "check took {t_check:?}");
    assert!(out.len() < SMALL, "check wrote {} bytes", out.len());
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ports = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ports")
        .unwrap();
    let msg = ports["message"].as_str().unwrap();
    assert_eq!(ports["status"], "fail", "{msg}");
    assert!(msg.contains("8080/tcp") && msg.contains("1,000 stacks"), "{msg}");
}
