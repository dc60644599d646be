//! `hlsys swarm plan` without a swarm (Docker unreachable on purpose): the documents of
//! the stacks that Swarm can take, a per-stack error for one it cannot, and no value of an
//! env file anywhere in what it prints. Needs `docker compose` (the plan runs the real
//! `docker compose config`), not a daemon.

#[path = "common/compose_cli.rs"]
mod compose_cli;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const CANARY: &str = "hlsys-canary-5e1f0b";

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn tree(root: &Path) {
    write(
        root,
        "hlsys.toml",
        "stacks_dir = \"srv\"\n[layers.apps]\n[layers.web]\nafter = [\"apps\"]\n",
    );
    write(root, "srv/apps/.env", &format!("TOKEN={CANARY}\nTAG={CANARY}-tag\n"));
    write(
        root,
        "srv/apps/db/compose.yaml",
        "services:\n  db:\n    image: \"postgres:${TAG}\"\n    restart: always\n    container_name: db\n    \
         environment:\n      POSTGRES_PASSWORD: ${TOKEN}\n    labels:\n      note: \"token ${TOKEN}\"\n",
    );
    write(
        root,
        "srv/web/site/compose.yaml",
        "services:\n  site:\n    build: .\n    image: local/site\n",
    );
}

#[test]
fn plan_shows_documents_and_errors_and_hides_env_values() {
    if !compose_cli::require_compose() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_hlsys"))
        .arg("--config")
        .arg(dir.path().join("hlsys.toml"))
        .args(["swarm", "plan", "--json"])
        .env("DOCKER_HOST", format!("unix://{}/no-docker.sock", dir.path().display()))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        !stdout.contains(CANARY) && !stderr.contains(CANARY),
        "env value leaked:\n{stdout}\n{stderr}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a stack Swarm cannot take fails the plan: {stderr}"
    );
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let layers = plan["layers"].as_array().unwrap();
    assert_eq!(
        layers.iter().map(|l| l["layer"].as_str().unwrap()).collect::<Vec<_>>(),
        ["apps", "web"]
    );
    let db = &layers[0]["stacks"][0];
    assert_eq!(db["stack"], "apps-db");
    let svc = &db["document"]["services"]["db"];
    assert_eq!(svc["deploy"]["restart_policy"]["condition"], "any");
    assert_eq!(svc["environment"]["POSTGRES_PASSWORD"], "(hidden)");
    assert_eq!(svc["image"], "postgres:(hidden)");
    assert_eq!(svc["labels"]["note"], "token (hidden)");
    assert!(svc.get("container_name").is_none());
    assert!(db["notes"].to_string().contains("container_name dropped"), "{db:#}");
    let site = &layers[1]["stacks"][0];
    assert_eq!(site["stack"], "web-site");
    assert!(
        site["error"]
            .as_str()
            .unwrap()
            .contains("service site: build is not supported"),
        "{site:#}"
    );
}
