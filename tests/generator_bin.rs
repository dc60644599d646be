//! The `hlsys-generator` binary as systemd runs it: argument handling, exit codes, what
//! it writes (and does not), its report and log, and byte-identity with `hlsys plan --out`.
//!
//! The generator is another package, so Cargo gives no `CARGO_BIN_EXE_` for it: it is
//! built (a no-op when fresh) into the same target directory as `hlsys`.
//!
//! When the tests run as root the generator is run as nobody (65534): then /dev/kmsg is
//! not writable, so its log goes to stderr where the test can read it, and the host's
//! kernel log is left alone.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const HLSYS: &str = env!("CARGO_BIN_EXE_hlsys");
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX) == 0
}

/// A temp dir with a config and tree readable by nobody, and an output parent it can write.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let s = Setup { dir };
        let out = s.path("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
        s
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `text` to `rel`; a config names the runner as trusted
    /// (`common::trusting_runner`): these tests are not about who owns the files.
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let text = if rel.ends_with("hlsys.toml") {
            common::trusting_runner(text)
        } else {
            text.to_string()
        };
        std::fs::write(&p, text).unwrap();
        p
    }

    /// An (empty) output directory nobody can write into.
    fn out_dir(&self, name: &str) -> PathBuf {
        let p = self.path("out").join(name);
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        p
    }

    /// A good tree: two stacks in layer apps (web wants db), one GPU stack.
    fn good_tree(&self) -> PathBuf {
        self.write("tree/apps/web/compose.yaml", "services:\n  web: {image: busybox}\n");
        self.write("tree/apps/db/compose.yaml", "services:\n  db: {image: busybox}\n");
        self.write(
            "tree/gpu/llm/compose.yaml",
            "services:\n  llm: {image: busybox, gpus: all}\n",
        );
        self.write(
            "hlsys.toml",
            "stacks_dir = \"tree\"\nhlsys_path = \"/usr/bin/hlsys\"\n[stacks.apps-web]\nwants = [\"apps-db\"]\n",
        )
    }
}

struct Run {
    code: i32,
    stderr: String,
    pid: u32,
}

/// Runs the generator with HLSYS_CONFIG=`config` (unless None) and `args`.
fn run_generator(config: Option<&Path>, args: &[&Path]) -> Run {
    run_generator_below(None, config, args)
}

/// Like [`run_generator`], with HLSYS_GENERATOR_ROOT=`root` (unless None).
fn run_generator_below(root: Option<&Path>, config: Option<&Path>, args: &[&Path]) -> Run {
    let mut cmd = Command::new(common::generator_bin());
    cmd.args(args)
        .env_remove("HLSYS_CONFIG")
        .env_remove(hlsys_core::config::host::ROOT_ENV)
        .current_dir("/");
    if let Some(c) = config {
        cmd.env("HLSYS_CONFIG", c);
    }
    if let Some(r) = root {
        cmd.env(hlsys_core::config::host::ROOT_ENV, r);
    }
    if is_root() {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.stdout.is_empty(),
        "the generator printed to stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Run {
        code: out.status.code().expect("exit code"),
        stderr: String::from_utf8(out.stderr).unwrap(),
        pid,
    }
}

/// Whether the generator's log can be expected on stderr (it cannot write /dev/kmsg).
fn logs_to_stderr() -> bool {
    is_root() || std::fs::OpenOptions::new().write(true).open("/dev/kmsg").is_err()
}

/// Every entry below `dir`: relative path → file bytes, or "-> target" for symlinks,
/// or "/" for directories.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = p.symlink_metadata().unwrap();
            if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()).into_bytes(),
                );
            } else if meta.is_dir() {
                out.insert(rel.clone(), b"/".to_vec());
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn names(snap: &BTreeMap<String, Vec<u8>>) -> Vec<&str> {
    snap.keys().map(String::as_str).collect()
}

#[test]
fn broken_stack_is_skipped_and_reported_the_rest_generated() {
    let s = Setup::new();
    let cfg = s.good_tree();
    let broken = s.write("tree/apps/broken/compose.yaml", "services:\n  x: {image: busybox\n");
    let out = s.out_dir("normal");
    let r = run_generator(Some(&cfg), &[&out]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let snap = snapshot(&out);
    assert_eq!(
        names(&snap),
        [
            "docker.service.wants",
            "docker.service.wants/homelab.target",
            "hlsys-generator.json",
            "homelab-apps-db.service",
            // apps-web waits for apps-db: prepared ahead; the others start at once.
            "homelab-apps-web-prepare.service",
            "homelab-apps-web.service",
            "homelab-apps.target",
            "homelab-gpu-llm.service",
            "homelab-gpu.service",
            "homelab-gpu.target",
            "homelab-networks.service",
            "homelab.target",
            "multi-user.target.wants",
            "multi-user.target.wants/homelab.target",
        ]
    );
    assert_eq!(snap["multi-user.target.wants/homelab.target"], b"-> ../homelab.target");
    let web = String::from_utf8(snap["homelab-apps-web.service"].clone()).unwrap();
    assert!(web.lines().any(|l| l == "Wants=homelab-apps-db.service"), "{web}");
    let target = String::from_utf8(snap["homelab-apps.target"].clone()).unwrap();
    assert!(
        target
            .lines()
            .any(|l| l == "Wants=homelab-apps-db.service homelab-apps-web.service"),
        "{target}"
    );

    let report: serde_json::Value = serde_json::from_slice(&snap["hlsys-generator.json"]).unwrap();
    assert_eq!(report["config"], cfg.to_str().unwrap());
    assert_eq!(report["stacks_dir"], s.path("tree").to_str().unwrap());
    assert_eq!(report["tree_available"], true);
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{report:#}");
    assert_eq!(skipped[0]["stack"], "apps-broken");
    assert_eq!(skipped[0]["file"], broken.to_str().unwrap());
    let message = skipped[0]["message"].as_str().unwrap();
    assert!(message.starts_with("line "), "{message}");
    let units: Vec<&str> = report["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(units.len(), 9, "{units:?}");
    assert!(!units.contains(&"homelab-apps-broken.service"));
    assert!(!units.contains(&"homelab-apps-broken-prepare.service"));

    if logs_to_stderr() {
        let want = format!(
            "hlsys-generator[{}]: skipping apps-broken: {}: {message}",
            r.pid,
            broken.display()
        );
        assert!(
            r.stderr.lines().any(|l| l == want),
            "no line\n  {want}\nin stderr:\n{}",
            r.stderr
        );
        let summary = format!(
            "hlsys-generator[{}]: generated 9 units for 3 stacks (1 skipped) into {}",
            r.pid,
            out.display()
        );
        assert!(
            r.stderr.lines().any(|l| l == summary),
            "no line\n  {summary}\nin stderr:\n{}",
            r.stderr
        );
    } else {
        eprintln!("note: /dev/kmsg is writable, the log line is not checked");
    }
}

#[test]
fn unusable_config_exits_2_and_writes_nothing() {
    let s = Setup::new();
    s.good_tree();
    let cfg = s.write("hlsys.toml", "stacks_dir = \"tree\"\nunit_prefx = \"lab\"\n");
    let out = s.out_dir("normal");
    let r = run_generator(Some(&cfg), &[&out]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(snapshot(&out).is_empty(), "{:?}", names(&snapshot(&out)));
    if logs_to_stderr() {
        assert!(r.stderr.contains("config unusable, no units generated"), "{}", r.stderr);
        // Line 2 of the text above, after whatever trusting_runner put first.
        let text = std::fs::read_to_string(&cfg).unwrap();
        let line = text.lines().position(|l| l.starts_with("unit_prefx")).unwrap() + 1;
        assert!(
            r.stderr.contains(&format!("{}: line {line}", cfg.display())),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("unit_prefx"), "{}", r.stderr);
    }
}

/// Opt-in: a tree with stacks but no config file (the one HLSYS_CONFIG names, or the
/// default /etc/hlsys/hlsys.toml) gives no units at all, exit 0, and one log line saying
/// what to do.
#[test]
fn no_config_file_writes_nothing_and_logs_one_line() {
    let s = Setup::new();
    s.good_tree();
    std::fs::remove_file(s.path("hlsys.toml")).unwrap();
    let missing = s.path("hlsys.toml");
    let out = s.out_dir("named");
    let r = run_generator(Some(&missing), &[&out]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(snapshot(&out).is_empty(), "{:?}", names(&snapshot(&out)));
    let expect_line = |r: &Run, path: &Path| {
        if !logs_to_stderr() {
            eprintln!("note: /dev/kmsg is writable, the log line is not checked");
            return;
        }
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", r.stderr);
        assert!(
            lines[0].starts_with(&format!(
                "hlsys-generator[{}]: no config file {}: ",
                r.pid,
                path.display()
            )),
            "{}",
            r.stderr
        );
        assert!(lines[0].contains("no units generated"), "{}", r.stderr);
    };
    expect_line(&r, &missing);

    // The default path: a host root with a stack tree in /srv/compose and no
    // /etc/hlsys/hlsys.toml, as right after installing the package.
    let root = s.path("root");
    s.write(
        "root/srv/compose/apps/web/compose.yaml",
        "services:\n  web: {image: busybox}\n",
    );
    let out = s.out_dir("default");
    let r = run_generator_below(Some(&root), None, &[&out]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(snapshot(&out).is_empty(), "{:?}", names(&snapshot(&out)));
    expect_line(&r, &root.join("etc/hlsys/hlsys.toml"));
}

#[test]
fn wrong_argument_count_exits_2() {
    let s = Setup::new();
    let cfg = s.good_tree();
    let a = s.out_dir("a");
    let b = s.out_dir("b");
    let c = s.out_dir("c");
    let d = s.out_dir("d");
    for args in [
        vec![],
        vec![a.as_path(), b.as_path()],
        vec![a.as_path(), b.as_path(), c.as_path(), d.as_path()],
    ] {
        let r = run_generator(Some(&cfg), &args);
        assert_eq!(r.code, 2, "{} args: {}", args.len(), r.stderr);
        if logs_to_stderr() {
            assert!(
                r.stderr
                    .contains("usage: hlsys-generator NORMAL_DIR [EARLY_DIR LATE_DIR]"),
                "{}",
                r.stderr
            );
        }
    }
    for dir in [&a, &b, &c, &d] {
        assert!(snapshot(dir).is_empty(), "{} was written to", dir.display());
    }
}

#[test]
fn three_directories_writes_only_the_first() {
    let s = Setup::new();
    let cfg = s.good_tree();
    let normal = s.out_dir("normal");
    let early = s.out_dir("early");
    let late = s.out_dir("late");
    let r = run_generator(Some(&cfg), &[&normal, &early, &late]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let snap = snapshot(&normal);
    assert!(snap.contains_key("homelab-apps-web.service"), "{:?}", names(&snap));
    assert!(snap.contains_key("hlsys-generator.json"));
    assert!(snapshot(&early).is_empty(), "{:?}", names(&snapshot(&early)));
    assert!(snapshot(&late).is_empty(), "{:?}", names(&snapshot(&late)));
    // Nothing outside the output directories either.
    let mut top: Vec<String> = std::fs::read_dir(s.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["early", "late", "normal"]);
}

#[test]
fn missing_output_directory_is_created() {
    let s = Setup::new();
    let cfg = s.good_tree();
    let out = s.path("out").join("gen/normal");
    let r = run_generator(Some(&cfg), &[&out]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(out.join("homelab.target").is_file());
}

#[test]
fn plan_out_is_byte_identical_to_the_generator() {
    let s = Setup::new();
    let cfg = s.good_tree();
    // A broken stack, a disabled one and an env file, so the comparison covers the
    // report's skipped list and inputs and disabled units.
    s.write("tree/apps/broken/compose.yaml", "services: [\n");
    s.write(
        "tree/apps/off/compose.yaml",
        "x-hlsys: {enabled: false}\nservices:\n  x: {image: busybox}\n",
    );
    s.write("tree/apps/web/.env", "TAG=1\n");
    let gen_out = s.out_dir("generator");
    let r = run_generator(Some(&cfg), &[&gen_out]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let plan_out = s.path("plan");
    let out = Command::new(HLSYS)
        .arg("--config")
        .arg(&cfg)
        .args(["plan", "--out"])
        .arg(&plan_out)
        .env_remove("HLSYS_CONFIG")
        .output()
        .unwrap();
    // Exit 1: a stack is in error; the units are written all the same.
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));

    let g = snapshot(&gen_out);
    let p = snapshot(&plan_out);
    assert_eq!(names(&g), names(&p));
    for (name, bytes) in &g {
        assert!(
            p[name] == *bytes,
            "{name} differs:\n--- generator ---\n{}\n--- plan ---\n{}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&p[name])
        );
    }
    assert!(g.contains_key("homelab-apps-off.service"));
    assert!(!g.contains_key("homelab-apps-broken.service"));
}
