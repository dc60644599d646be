//! Names from the tree that must not vanish, fool a terminal or lead a write astray:
//! a stack whose id is one of hlsys's own unit names, control characters in directory
//! names shown by `hlsys stacks` and `hlsys plan`, and links planted in `plan --out`'s
//! directory.

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use hostile::*;

fn hlsys(s: &Setup, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hlsys"))
        .arg("--config")
        .arg(s.path("hlsys.toml"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn a_stack_named_like_a_fixed_unit_is_refused_and_the_fixed_unit_stays_one() {
    for name in ["networks", "gpu", "tree", "swarm"] {
        stack_case(&format!("stack named {name}"), |s| {
            s.write(
                &format!("tree/{name}/compose.yaml"),
                "services:\n  x: {image: busybox, gpus: all}\n",
            );
            name
        });
    }
    let s = Setup::new();
    s.write("tree/networks/compose.yaml", "services:\n  x: {image: busybox}\n");
    let r = generate(&s, &s.path("hlsys.toml"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = s.report();
    let units: Vec<&str> = report["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    let fixed = units.iter().filter(|u| **u == "homelab-networks.service").count();
    assert_eq!(fixed, 1, "units: {units:?}");
    let skipped = report["skipped"].to_string();
    assert!(skipped.contains("reserved"), "{skipped}");
    let unit = std::fs::read_to_string(s.normal().join("homelab-networks.service")).unwrap();
    assert!(unit.contains("network ensure"), "the fixed unit was replaced:\n{unit}");
}

#[test]
fn control_characters_from_the_tree_reach_no_terminal_raw() {
    let s = Setup::new();
    let evil = "x\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m";
    s.write(
        &format!("tree/{evil}/compose.yaml"),
        "services:\n  x: {image: busybox}\n",
    );
    for args in [&["stacks"][..], &["plan"][..], &["status"][..]] {
        let o = hlsys(&s, args);
        for (stream, text) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            let text = String::from_utf8_lossy(text);
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{9b}'),
                "hlsys {args:?} wrote a control character to {stream}: {text:?}"
            );
        }
        let all = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
        if args != ["status"] {
            assert!(
                all.contains("x\\x1b]0;owned"),
                "hlsys {args:?} does not name the stack: {all}"
            );
        }
    }
}

#[test]
fn plan_out_writes_only_inside_its_directory() {
    let s = Setup::new();
    let out = s.path("plan");
    std::fs::create_dir(&out).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The wants directory is a link to somewhere else: following it would put links there.
    symlink(outside.path(), out.join("multi-user.target.wants")).unwrap();
    let o = hlsys(&s, &["plan", "--out", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "plan --out wrote through a link: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "a link where a directory must be is an error");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("multi-user.target.wants"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Links to files where units go are replaced, never written through.
    std::fs::remove_file(out.join("multi-user.target.wants")).unwrap();
    let target = outside.path().join("victim");
    std::fs::write(&target, "mine").unwrap();
    symlink(&target, out.join("homelab-good-a.service")).unwrap();
    let o = hlsys(&s, &["plan", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine");
    assert!(!Path::new(&out.join("homelab-good-a.service")).is_symlink());
}
