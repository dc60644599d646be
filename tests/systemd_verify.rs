//! The generated units pass `systemd-analyze verify`: the example tree, the escaping
//! case (odd characters in every path, including the executable) and every other
//! fake-root case under tests/cases/ that has a config, written with `generator::write_all` exactly as the
//! generator writes them.
//!
//! Needs `systemd-analyze` and a known `docker.service` (the units require it). Without
//! them the tests print SKIP and pass, except in CI (CI=true), where they fail.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const HLSYS: &str = env!("CARGO_BIN_EXE_hlsys");
const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p)
            .any(|d| std::fs::metadata(d.join(tool)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
    })
}

/// True when verify can run; otherwise SKIP (or panic in CI).
fn prerequisites() -> bool {
    let mut missing = Vec::new();
    if !on_path("systemd-analyze") {
        missing.push("systemd-analyze is not on PATH".to_string());
    }
    if !UNIT_DIRS.iter().any(|d| Path::new(d).join("docker.service").is_file()) {
        missing.push(format!(
            "docker.service is in none of {UNIT_DIRS:?} (install docker.io)"
        ));
    }
    if missing.is_empty() {
        return true;
    }
    let reason = missing.join("; ");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but a test prerequisite is missing: {reason}");
    }
    eprintln!("SKIP: {reason}");
    false
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// A TOML basic string holding `s`.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Replaces the `hlsys_path = …` line of `config` (which must have one).
fn set_hlsys_path(config: &Path, exe: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    let mut n = 0;
    let new: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("hlsys_path") {
                n += 1;
                format!("hlsys_path = {}", toml_str(exe.to_str().unwrap()))
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(n, 1, "{} should have exactly one hlsys_path line", config.display());
    std::fs::write(config, new.join("\n") + "\n").unwrap();
}

/// Loads, builds, renders and writes the units of `config` (on a host whose root is `root`)
/// into `out`; returns the model's error count.
fn generate(root: &Path, config: &Path, out: &Path) -> (usize, hlsys_core::units::Generated) {
    let mut cfg = hlsys_core::config::Config::load_under(root, config, true).unwrap_or_else(|e| panic!("{e}"));
    common::trust_runner(&mut cfg);
    let model = hlsys_core::tree::build(cfg).unwrap_or_else(|e| panic!("{e}"));
    let g = hlsys_core::units::render(&model);
    assert!(g.skipped.is_empty(), "{:#?}", g.skipped);
    hlsys_core::generator::write_all(out, &model, &g).unwrap();
    (model.errors.len(), g)
}

/// `systemd-analyze verify --man=no` on every .service and .target in `dir`: exit 0 and
/// nothing on stderr.
fn verify(dir: &Path, what: &str) {
    let mut units: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "service" || e == "target"))
        .collect();
    units.sort();
    assert!(!units.is_empty(), "{what}: no units in {}", dir.display());
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut contents = String::new();
    if !out.status.success() || !stderr.is_empty() {
        for u in &units {
            contents.push_str(&format!(
                "--- {} ---\n{}\n",
                u.display(),
                std::fs::read_to_string(u).unwrap()
            ));
        }
    }
    assert!(
        out.status.success() && stderr.is_empty(),
        "{what}: systemd-analyze verify: {}\n--- stderr ---\n{stderr}\n--- stdout ---\n{}\n{contents}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn example_tree_verifies() {
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("homelab");
    copy_dir(&Path::new(REPO).join("examples/homelab"), &root);
    set_hlsys_path(&root.join("hlsys.toml"), Path::new(HLSYS));
    let out = tmp.path().join("out");
    let (errors, g) = generate(Path::new("/"), &root.join("hlsys.toml"), &out);
    assert_eq!(errors, 0);
    // 7 stacks, 6 preparation units (panel's layer waits for nothing), 4 layers,
    // homelab.target, networks, gpu.
    assert_eq!(
        g.units.len(),
        20,
        "{:?}",
        g.units.iter().map(|u| &u.name).collect::<Vec<_>>()
    );
    verify(&out, "examples/homelab");
}

#[test]
fn escaping_fixture_verifies_with_an_odd_executable_path() {
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("my stacks 100% $x \"q\" \\ ü");
    copy_dir(&Path::new(REPO).join("tests/cases/13-escaping"), &root);
    let config = root.join("etc/hlsys/hlsys.toml");
    // The executable itself under a path that needs escaping (systemd refuses quotes and
    // backslashes there, and so does hlsys.toml): verify checks that the unescaped path
    // is an executable.
    let bin = tmp.path().join("bin 50% $HOME é");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("hlsys");
    std::os::unix::fs::symlink(HLSYS, &exe).unwrap();
    set_hlsys_path(&config, &exe);
    let out = tmp.path().join("out");
    let (errors, g) = generate(&root, &config, &out);
    assert_eq!(errors, 0);
    let web = g.units.iter().find(|u| u.name == "homelab-apps-web.service").unwrap();
    let exec = web.content.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert_eq!(
        exec,
        format!(
            "ExecStart=\"{}/bin 50%% $HOME é/hlsys\" --config \"{}/my stacks 100%% $$x \\\"q\\\" \\\\ ü/etc/hlsys/hlsys.toml\" supervise apps-web",
            tmp.path().display(),
            tmp.path().display()
        )
    );
    verify(&out, "escaping fixture");
}

#[test]
fn every_unit_fixture_verifies() {
    if !prerequisites() {
        return;
    }
    let cases = Path::new(REPO).join("tests/cases");
    // A case without a config runs /usr/bin/hlsys, which verify would look for on this host.
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&cases)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("etc/hlsys/hlsys.toml").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 12, "{dirs:?}");
    for case in dirs {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join(&name);
        copy_dir(&case, &root);
        let config = root.join("etc/hlsys/hlsys.toml");
        set_hlsys_path(&config, Path::new(HLSYS));
        let out = tmp.path().join("out");
        generate(&root, &config, &out);
        verify(&out, &name);
    }
}
