//! The user scope of the real `hlsys-generator` (SYSTEMD_SCOPE=user, as a user manager runs
//! it): examples/homelab in a home directory, the config at ~/.config/hlsys/hlsys.toml,
//! the units diffed against tests/golden/user-homelab/ (the home written `@HOME@`;
//! `UPDATE_GOLDEN=1` rewrites it). As root the generator runs as nobody, who owns the home,
//! as a user generator runs as its user.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A home holding examples/homelab as `lab/` and, when `config`, the user's config.
struct Home {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    out: PathBuf,
}

impl Home {
    fn new(config: bool) -> Home {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = tmp.path().join("home");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(home.join(".config/hlsys")).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/homelab");
        let st = Command::new("cp")
            .arg("-r")
            .arg(&src)
            .arg(home.join("lab"))
            .status()
            .unwrap();
        assert!(st.success());
        if config {
            let text = std::fs::read_to_string(src.join("hlsys.toml"))
                .unwrap()
                .replace("stacks_dir = \".\"", "stacks_dir = \"../../lab\"")
                .replace("[\"-global.env\"]", "[\"-../../lab/global.env\"]");
            std::fs::write(home.join(".config/hlsys/hlsys.toml"), text).unwrap();
        }
        let h = Home { _tmp: tmp, home, out };
        if is_root() {
            for p in [&h.home, &h.out] {
                let st = Command::new("chown")
                    .args(["-R", "65534:65534"])
                    .arg(p)
                    .status()
                    .unwrap();
                assert!(st.success());
            }
        }
        // No file of the tree writable by group or others (the checkout's umask may allow it).
        let st = Command::new("chmod")
            .args(["-R", "go-w"])
            .arg(&h.home)
            .status()
            .unwrap();
        assert!(st.success());
        h
    }

    fn generate(&self) -> Output {
        let mut cmd = Command::new(common::generator_bin());
        cmd.arg(&self.out)
            .env_clear()
            .env("SYSTEMD_SCOPE", "user")
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", "/run/user/65534")
            .current_dir("/");
        if is_root() {
            cmd.uid(NOBODY).gid(NOBODY);
        }
        cmd.output().unwrap()
    }
}

#[test]
fn user_units_match_the_golden_directory() {
    let h = Home::new(true);
    let run = h.generate();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let home = h.home.to_string_lossy().into_owned();
    let mut actual = common::read_tree(&h.out);
    actual
        .remove(hlsys_core::generator::REPORT_NAME)
        .expect("report written");
    for v in actual.values_mut() {
        *v = v.replace(&home, "@HOME@");
    }
    assert!(
        actual.contains_key("default.target.wants/homelab.target"),
        "{:?}",
        actual.keys()
    );
    assert!(!actual.keys().any(|k| k.starts_with("multi-user.target.wants")));
    let unit = &actual["homelab-panel.service"];
    for line in [
        "Environment=HOME=%S/hlsys-state",
        "StateDirectory=hlsys-state",
        "Environment=DOCKER_HOST=unix://%t/docker.sock",
        "ProtectHome=read-only",
        "Requires=docker.service homelab-networks.service",
    ] {
        assert!(unit.lines().any(|l| l == line), "no {line:?} in\n{unit}");
    }
    assert!(!unit.contains("IPAddressDeny") && !unit.contains("RemoveIPC"), "{unit}");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/user-homelab");
    if common::rewrite_golden(&golden, &actual) {
        return;
    }
    assert_eq!(common::read_tree(&golden), actual, "differs from {}", golden.display());
}

#[test]
fn without_the_users_config_nothing_is_written() {
    let h = Home::new(false);
    let run = h.generate();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(common::read_tree(&h.out).is_empty());
}

#[test]
fn a_file_writable_by_others_is_refused_with_its_fix() {
    let h = Home::new(true);
    let file = h.home.join("lab/service.toml");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o646)).unwrap();
    let run = h.generate();
    assert_eq!(run.status.code(), Some(hlsys_core::exit::EXIT_CONFIG as i32));
    let err = String::from_utf8_lossy(&run.stderr);
    let fix = format!("chmod go-w {}", file.display());
    assert!(err.contains("is writable by others") && err.contains(&fix), "{err}");
    assert!(common::read_tree(&h.out).is_empty());
}

#[test]
fn the_system_scope_ignores_the_users_config() {
    // SYSTEMD_SCOPE unset: the system generator reads /etc/hlsys only (a fake empty root).
    let h = Home::new(true);
    let root = tempfile::tempdir().unwrap();
    let run = Command::new(common::generator_bin())
        .arg(&h.out)
        .env_clear()
        .env("HOME", &h.home)
        .env("HLSYS_GENERATOR_ROOT", root.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(common::read_tree(&h.out).is_empty());
}
