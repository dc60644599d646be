//! The trust model (core/src/trust.rs; "Security" in README and hlsys.toml(5)): each
//! permission case gives the documented result in the real `hlsys-generator` (stack
//! skipped with the fix, or config unusable: exit 2, nothing written) and in
//! `hlsys check --json` (the `trust` check, `env-file-permissions`).
//!
//! The trees are made with the owners and modes each case is about. Files owned by
//! root or by another user need root (chown): those tests print SKIP outside CI when not
//! root, and fail in CI instead. The others also run as a normal user, who then names
//! themself `trusted_owner` (they cannot make root-owned files), so group and other
//! write access is checked on developer machines too.
//!
//! Layout (T = a temporary directory, root-owned, 0755):
//! `T/etc/hlsys.toml` (stacks_dir = "../srv/tree"), `T/srv/tree/apps/{good,bad}/compose.yaml`,
//! `T/srv/tree/apps/bad/.env`. The generator runs as nobody, as in tests/generator_bin.rs,
//! so it cannot write the host's /dev/kmsg and logs to stderr.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const NOBODY: u32 = 65534;
const OTHER_UID: u32 = 1234;
const OTHER_GID: u32 = 4321;

struct Host {
    dir: tempfile::TempDir,
}

/// What one generator run did.
struct Generated {
    code: i32,
    stderr: String,
    units: BTreeSet<String>,
    /// (stack, file, message) from the report.
    skipped: Vec<(String, String, String)>,
    /// Whether it wrote anything at all.
    wrote: bool,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let h = Host { dir };
        chmod(h.dir.path(), 0o755);
        h.write("srv/tree/apps/good/compose.yaml", "services:\n  a: {image: busybox}\n");
        h.write(
            "srv/tree/apps/bad/compose.yaml",
            "services:\n  b: {image: \"busybox:${TAG}\"}\n",
        );
        h.write("srv/tree/apps/bad/.env", "TAG=latest\n");
        h.config("");
        h
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a root-owned 0644 file below 0755 directories.
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        for a in p.ancestors().skip(1).take_while(|a| *a != self.dir.path()) {
            chmod(a, 0o755);
        }
        std::fs::write(&p, text).unwrap();
        chmod(&p, 0o644);
        p
    }

    /// The config: `extra` (top-level keys) before stacks_dir; not root, the runner is
    /// the trusted owner (see the module documentation).
    fn config(&self, extra: &str) -> PathBuf {
        let me = match is_root() {
            true => String::new(),
            false => format!("trusted_owner = {}\n", nix::unistd::geteuid()),
        };
        self.write(
            "etc/hlsys.toml",
            &format!("{me}{extra}stacks_dir = \"../srv/tree\"\nenv_files = []\n"),
        )
    }

    fn generate(&self) -> Generated {
        let out = self.path("out");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir(&out).unwrap();
        chmod(&out, 0o777);
        let mut cmd = Command::new(common::generator_bin());
        cmd.arg(&out)
            .env("HLSYS_CONFIG", self.path("etc/hlsys.toml"))
            .env_remove(hlsys_core::config::host::ROOT_ENV)
            .current_dir("/");
        if is_root() {
            cmd.uid(NOBODY).gid(NOBODY);
        }
        let o = cmd.output().unwrap();
        let files = common::read_tree(&out);
        let report: Value = files
            .get(hlsys_core::generator::REPORT_NAME)
            .map_or(Value::Null, |r| serde_json::from_str(r).unwrap());
        let skipped = report["skipped"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let f = |k: &str| e[k].as_str().unwrap().to_string();
                (f("stack"), f("file"), f("message"))
            })
            .collect();
        Generated {
            code: o.status.code().unwrap(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            units: report["units"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|u| u.as_str().unwrap().to_string())
                .collect(),
            skipped,
            wrote: !files.is_empty(),
        }
    }

    /// `hlsys check --json` (as root, without Docker): exit code and the checks by name.
    fn check(&self) -> (i32, Value) {
        let o = Command::new(env!("CARGO_BIN_EXE_hlsys"))
            .arg("--config")
            .arg(self.path("etc/hlsys.toml"))
            .args(["check", "--json"])
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .output()
            .unwrap();
        let doc: Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
        (o.status.code().unwrap(), doc)
    }

    /// Exit code of `hlsys stacks` (2 when the config is unusable).
    fn stacks_code(&self) -> i32 {
        Command::new(env!("CARGO_BIN_EXE_hlsys"))
            .arg("--config")
            .arg(self.path("etc/hlsys.toml"))
            .arg("stacks")
            .output()
            .unwrap()
            .status
            .code()
            .unwrap()
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
}

/// The check named `name` from `hlsys check --json`.
fn result<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {doc:#}"))
}

fn status(doc: &Value, name: &str) -> String {
    result(doc, name)["status"].as_str().unwrap().to_string()
}

fn message(doc: &Value, name: &str) -> String {
    result(doc, name)["message"].as_str().unwrap().to_string()
}

/// The stack `apps-bad` was skipped for `path` with `problem` and `fix`; `apps-good` was
/// generated; `hlsys check` fails its `trust` check with the same words.
fn assert_bad_skipped(h: &Host, path: &Path, problem: &str, fix: &str) {
    let g = h.generate();
    assert_eq!(g.code, 0, "{}", g.stderr);
    assert!(g.units.contains("homelab-apps-good.service"), "{:?}", g.units);
    assert!(!g.units.contains("homelab-apps-bad.service"), "{:?}", g.units);
    let (stack, file, msg) = g
        .skipped
        .iter()
        .find(|s| s.0 == "apps-bad")
        .unwrap_or_else(|| panic!("apps-bad not skipped: {:?}", g.skipped));
    assert_eq!((stack.as_str(), Path::new(file)), ("apps-bad", path));
    let said = format!("{} {problem}", path.display());
    assert!(msg.contains(&said) && msg.contains(&format!("fix: {fix}")), "{msg}");
    assert!(
        g.stderr.contains(&said) && g.stderr.contains(fix),
        "not logged: {}",
        g.stderr
    );
    let (code, doc) = h.check();
    assert_eq!(code, 1);
    assert_eq!(status(&doc, "trust"), "fail");
    let m = message(&doc, "trust");
    assert!(m.contains(&said) && m.contains(fix), "{m}");
}

/// Both stacks generated and the trust check ok.
fn assert_all_trusted(h: &Host) {
    let g = h.generate();
    assert_eq!(g.code, 0, "{}", g.stderr);
    assert!(g.skipped.is_empty(), "{:?}", g.skipped);
    for unit in ["homelab-apps-good.service", "homelab-apps-bad.service"] {
        assert!(g.units.contains(unit), "{unit}: {:?}", g.units);
    }
    let (_, doc) = h.check();
    assert_eq!(status(&doc, "trust"), "ok", "{doc:#}");
}

/// The config is unusable for `path`: the generator exits 2 and writes nothing but says
/// why in one line, `hlsys stacks` exits 2, `hlsys check` fails `config` and `trust`.
fn assert_config_refused(h: &Host, path: &Path, problem: &str, fix: &str) {
    let g = h.generate();
    assert_eq!(g.code, 2, "{}", g.stderr);
    assert!(!g.wrote, "the generator wrote files for an unusable config");
    let said = format!("{} {problem}", path.display());
    let lines: Vec<&str> = g.stderr.lines().filter(|l| l.contains("config unusable")).collect();
    assert_eq!(lines.len(), 1, "{}", g.stderr);
    assert!(lines[0].contains(&said) && lines[0].contains(fix), "{}", g.stderr);
    assert_eq!(h.stacks_code(), 2);
    let (code, doc) = h.check();
    assert_eq!(code, 1, "an unusable config is a failed check (hlsys-check(1))");
    assert_eq!(status(&doc, "config"), "fail");
    assert_eq!(status(&doc, "trust"), "fail");
    assert!(message(&doc, "trust").contains(&said), "{doc:#}");
}

#[test]
fn a_tree_only_root_or_the_trusted_owner_can_write_is_trusted() {
    let h = Host::new();
    assert_all_trusted(&h);
    let g = h.generate();
    assert!(!g.stderr.contains("strict_permissions"), "{}", g.stderr);
}

#[test]
fn a_group_writable_directory_on_the_path_skips_the_stack() {
    let h = Host::new();
    let dir = h.path("srv/tree/apps/bad");
    chmod(&dir, 0o775);
    let gid = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(&dir).unwrap());
    let problem = format!("is writable by group {gid} (not the trusted_group)");
    assert_bad_skipped(&h, &dir, &problem, &format!("chmod go-w {}", dir.display()));
}

#[test]
fn a_world_writable_env_file_skips_the_stack() {
    let h = Host::new();
    let env = h.path("srv/tree/apps/bad/.env");
    chmod(&env, 0o646);
    assert_bad_skipped(
        &h,
        &env,
        "is writable by others",
        &format!("chmod go-w {}", env.display()),
    );
}

#[test]
fn a_compose_file_owned_by_another_user_skips_the_stack_unless_trusted() {
    if !common::require_root_and(&[]) {
        return;
    }
    let h = Host::new();
    let file = h.path("srv/tree/apps/bad/compose.yaml");
    chown(&file, OTHER_UID, 0);
    let problem = format!("is owned by uid {OTHER_UID}");
    assert_bad_skipped(&h, &file, &problem, &format!("chown root:root {}", file.display()));
    // The trusted owner, by uid and by name (looked up in /etc/passwd).
    h.config(&format!("trusted_owner = {OTHER_UID}\n"));
    assert_all_trusted(&h);
    chown(&file, NOBODY, 0);
    h.config("trusted_owner = \"nobody\"\n");
    assert_all_trusted(&h);
}

#[test]
fn the_trusted_group_may_write() {
    if !common::require_root_and(&[]) {
        return;
    }
    let h = Host::new();
    let file = h.path("srv/tree/apps/bad/compose.yaml");
    chown(&file, 0, OTHER_GID);
    chmod(&file, 0o664);
    let fix = format!("chmod go-w {}", file.display());
    assert_bad_skipped(&h, &file, &format!("is writable by group {OTHER_GID}"), &fix);
    h.config(&format!("trusted_group = {OTHER_GID}\n"));
    assert_all_trusted(&h);
    // Others still may not.
    chmod(&file, 0o666);
    assert_bad_skipped(&h, &file, "is writable by others", &fix);
}

#[test]
fn a_world_writable_ancestor_makes_the_config_unusable_unless_sticky_and_root_owned() {
    let h = Host::new();
    let srv = h.path("srv");
    chmod(&srv, 0o777);
    let fix = format!("chmod o-w {}", srv.display());
    assert_config_refused(&h, &srv, "is writable by others and not a sticky", &fix);
    // Like /tmp: sticky and root-owned (root only can make that).
    if !common::require_root_and(&[]) {
        return;
    }
    chmod(&srv, 0o1777);
    assert_all_trusted(&h);
    // Sticky but someone else's: they can rename what is in it.
    chown(&srv, OTHER_UID, 0);
    let problem = format!("is owned by uid {OTHER_UID}");
    assert_config_refused(&h, &srv, &problem, &format!("chown root:root {}", srv.display()));
}

#[test]
fn a_config_writable_by_others_is_unusable() {
    let h = Host::new();
    let cfg = h.path("etc/hlsys.toml");
    chmod(&cfg, 0o646);
    assert_config_refused(
        &h,
        &cfg,
        "is writable by others",
        &format!("chmod go-w {}", cfg.display()),
    );
    chmod(&cfg, 0o644);
    // A drop-in someone else owns (root only can make that).
    if !common::require_root_and(&[]) {
        return;
    }
    let dropin = h.write(
        "etc/hlsys.toml.d/50-enable.toml",
        "[stacks.apps-good]\nenabled = true\n",
    );
    chown(&dropin, OTHER_UID, 0);
    let problem = format!("is owned by uid {OTHER_UID}");
    assert_config_refused(&h, &dropin, &problem, &format!("chown root:root {}", dropin.display()));
}

#[test]
fn the_escape_hatch_accepts_and_says_so_at_every_run() {
    let h = Host::new();
    chmod(&h.path("srv/tree/apps/bad/.env"), 0o646);
    chmod(&h.path("srv"), 0o777);
    let cfg = h.config("strict_permissions = false\n");
    for _ in 0..2 {
        let g = h.generate();
        assert_eq!(g.code, 0, "{}", g.stderr);
        assert!(g.skipped.is_empty(), "{:?}", g.skipped);
        assert!(g.units.contains("homelab-apps-bad.service"), "{:?}", g.units);
        let said = format!("strict_permissions = false in {}", cfg.display());
        assert_eq!(g.stderr.matches(&said).count(), 1, "{}", g.stderr);
    }
    let (_, doc) = h.check();
    assert_eq!(status(&doc, "trust"), "warn");
    assert!(message(&doc, "trust").contains("strict_permissions = false"), "{doc:#}");
}

#[test]
fn check_warns_about_env_files_others_can_read_without_printing_them() {
    let h = Host::new();
    let env = h.path("srv/tree/apps/bad/.env");
    let (_, doc) = h.check();
    assert_eq!(status(&doc, "env-file-permissions"), "warn");
    let m = message(&doc, "env-file-permissions");
    assert!(m.contains(&format!("{} is readable by others", env.display())), "{m}");
    assert!(!doc.to_string().contains("TAG=latest"), "{doc:#}");
    chmod(&env, 0o640);
    let (_, doc) = h.check();
    assert_eq!(status(&doc, "env-file-permissions"), "ok", "{doc:#}");
}

#[test]
fn every_file_compose_reads_for_the_stack_is_checked() {
    let h = Host::new();
    // An override, an extends target in a subdirectory, a service env_file.
    h.write(
        "srv/tree/apps/bad/compose.override.yaml",
        "services:\n  b: {extends: {file: base/x.yaml, service: x}}\n",
    );
    h.write(
        "srv/tree/apps/bad/base/x.yaml",
        "services:\n  x: {env_file: [../app.env]}\n",
    );
    h.write("srv/tree/apps/bad/app.env", "A=1\n");
    assert_all_trusted(&h);
    for rel in ["compose.override.yaml", "base/x.yaml", "base", "app.env"] {
        let p = h.path(&format!("srv/tree/apps/bad/{rel}"));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        chmod(&p, mode | 0o002);
        assert_bad_skipped(&h, &p, "is writable by others", &format!("chmod go-w {}", p.display()));
        chmod(&p, mode);
    }
    assert_all_trusted(&h);
}
