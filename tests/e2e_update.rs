//! `hlsys update --check` in a booted machine against a real local registry (Debian's
//! docker-registry, as tests/e2e_prepare.rs): every stack of the supervise tree on its own
//! registry image, pulled at the first start; then a new image pushed under the same tag
//! for the database and the genai app (the local tags kept on the old images): the check
//! lists exactly those two, exit 1; the registry stopped: every image reported as not
//! checked, exit 2.
//!
//! Needs root, systemd-nspawn, Docker and docker-registry (skipped otherwise, failing when
//! CI=true).
mod common;
#[path = "common/e2e.rs"]
mod e2e;

use std::time::Instant;

use common::{repo_path, require_root_and, Machine};
use e2e::{all_active, pre_boot, states, timed, with_diagnostics, HOMELAB_JOURNAL};

const TREE: &str = "tests/fixtures/trees/supervise";
const WANTED: [&str; 4] = [
    "homelab-panel.service",
    "homelab-database.service",
    "homelab-genai-webui.service",
    "homelab-genai-embed.service",
];
/// (image, the stack's compose files).
const IMAGES: [(&str, &[&str]); 4] = [
    ("panel", &["panel/compose.yaml", "panel/compose.override.yaml"]),
    ("database", &["database/compose.yaml"]),
    ("genai", &["genai/webui/compose.yaml"]),
    ("embed", &["genai/embed/compose.yaml"]),
];
const REGISTRY: &str = "127.0.0.1:5000/upd";

/// The registry as a transient service.
const SETUP: &str = r#"set -euo pipefail
mkdir -p /run/upd-registry/data
printf '%s\n' 'version: 0.1' \
  'storage: {filesystem: {rootdirectory: /run/upd-registry/data}}' \
  'http: {addr: "127.0.0.1:5000"}' >/run/upd-registry/config.yml
systemd-run --quiet --unit=upd-registry /usr/bin/docker-registry serve /run/upd-registry/config.yml
for _ in $(seq 100); do curl -sf http://127.0.0.1:5000/v2/ >/dev/null && break; sleep 0.1; done
"#;

/// `push REF`: a small busybox image with a random payload built as REF and pushed; when
/// REF was there before, its tag goes back on the old image: the registry has a new
/// version, this machine still has the old one.
const PUSH: &str = r#"set -euo pipefail
ref=$1
old=$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)
d=$(mktemp -d); mkdir -p "$d/bin" "$d/tmp"; chmod 1777 "$d/tmp"; cp /bin/busybox "$d/bin/"
for a in sh sleep true echo touch test wget nc httpd cat; do ln -sf busybox "$d/bin/$a"; done
head -c 1M /dev/urandom >"$d/payload"
tar -C "$d" -c . | docker import - "$ref" >/dev/null
rm -rf "$d"
docker push -q "$ref" >/dev/null
if [ -n "$old" ]; then docker tag "$old" "$ref"; else docker rmi -f "$ref" >/dev/null; fi
"#;

fn push(m: &Machine, name: &str) {
    m.exec_ok(&["bash", "-c", PUSH, "push", &format!("{REGISTRY}/{name}:1")]);
}

fn install_tree(m: &Machine) {
    m.copy_in(repo_path(TREE), "/srv/compose");
    for (name, files) in IMAGES {
        for f in files {
            let sed = format!("s#local/busybox:latest#{REGISTRY}/{name}:1#");
            m.exec_ok(&["sed", "-i", &sed, &format!("/srv/compose/{f}")]);
        }
    }
    m.exec_ok(&["systemctl", "daemon-reload"]);
}

/// `hlsys update --check --json`: exit status and document.
fn check(m: &Machine) -> (i32, serde_json::Value) {
    let (st, out, err) = m.exec(&["hlsys", "update", "--check", "--json"]);
    let doc = serde_json::from_str(&out).unwrap_or_else(|e| panic!("--check --json {out:?} ({err}): {e}"));
    (st.code().expect("exit code"), doc)
}

/// (stack, image) of the entries in `state`, in the check's order (by stack).
fn in_state(doc: &serde_json::Value, state: &str) -> Vec<(String, String)> {
    doc["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter(|i| i["state"] == state)
        .map(|i| {
            (
                i["stack"].as_str().unwrap().to_string(),
                i["image"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn check_finds_exactly_the_new_images() {
    if !require_root_and(&["systemd-nspawn", "nsenter", "docker", "dockerd", "docker-registry"]) {
        return;
    }
    let t0 = Instant::now();
    let pre = pre_boot(TREE, false, &[]);
    let m = Machine::start("upd-e2e-update", Some(&pre));
    let extra: [&[&str]; 2] = [
        HOMELAB_JOURNAL,
        &["journalctl", "-b", "--no-pager", "-n", "50", "-u", "upd-registry"],
    ];
    with_diagnostics(&m, &extra, || {
        m.wait_docker();
        m.exec_ok(&["bash", "-c", SETUP]);
        for (name, _) in IMAGES {
            push(&m, name);
        }
        install_tree(&m);
        m.exec_ok(&["timeout", "300", "systemctl", "start", "homelab.target"]);
        assert!(all_active(&m, &WANTED), "{:?}", states(&m, &WANTED));
        timed(t0, "v1 pushed, the tree up");
        images_current(&m);
        timed(t0, "every pulled image current, exit 0");
        new_versions_listed(&m);
        timed(t0, "v2 of database and genai: --check lists exactly those, exit 1");
        registry_down(&m);
        timed(t0, "registry down: every image not checked, exit 2");
    });
    drop(m);
}

/// Everything just pulled: current (the stacks hlsys leaves alone, the lab's, on
/// local/busybox, never pulled: built locally).
fn images_current(m: &Machine) {
    let (code, doc) = check(m);
    assert_eq!(code, 0, "{doc:#}");
    let current: Vec<String> = in_state(&doc, "current").into_iter().map(|c| c.0).collect();
    for stack in ["panel", "database", "genai-webui", "genai-embed"] {
        assert!(current.iter().any(|c| c == stack), "{stack}: {doc:#}");
    }
    assert!(in_state(&doc, "update").is_empty(), "{doc:#}");
}

fn new_versions_listed(m: &Machine) {
    push(m, "database");
    push(m, "genai");
    let (code, doc) = check(m);
    assert_eq!(code, 1, "{doc:#}");
    let want = vec![
        ("database".to_string(), format!("{REGISTRY}/database:1")),
        ("genai-webui".to_string(), format!("{REGISTRY}/genai:1")),
    ];
    assert_eq!(in_state(&doc, "update"), want, "{doc:#}");
    assert_eq!(doc["updates"], 2, "{doc:#}");
    let images = doc["images"].as_array().unwrap();
    let db = images.iter().find(|i| i["stack"] == "database").unwrap();
    assert!(db["remote_digest"].as_str().unwrap().starts_with("sha256:"), "{db:#}");
    assert_ne!(db["local_digest"], db["remote_digest"], "{db:#}");
    assert!(db["local_created"].is_string(), "{db:#}");
    // The table names it too, one line each image; NAME narrows the check.
    let (st, out, _) = m.exec(&["hlsys", "update", "--check", "database"]);
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("database") && l.contains("update")),
        "{out}"
    );
    assert!(!out.contains("genai"), "{out}");
}

fn registry_down(m: &Machine) {
    m.exec_ok(&["systemctl", "stop", "upd-registry.service"]);
    let (code, doc) = check(m);
    assert_eq!(code, 2, "{doc:#}");
    let images = doc["images"].as_array().unwrap();
    for i in images
        .iter()
        .filter(|i| i["image"].as_str().unwrap().starts_with(REGISTRY))
    {
        assert_eq!(i["state"], "error", "{doc:#}");
        assert!(i["error"].is_string(), "{doc:#}");
    }
}
