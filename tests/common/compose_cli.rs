//! What the real `docker compose config` says about a compose file, reduced to what
//! hlsys reads statically, so tests can check hlsys against it.
//!
//! Include with `#[path = "common/compose_cli.rs"] mod compose_cli;`.
#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Services Compose runs by default, the Docker networks they join, and whether any
/// asks for an NVIDIA GPU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub services: BTreeSet<String>,
    pub networks: BTreeSet<String>,
    pub gpu: bool,
}

/// Whether `docker compose` (the v2 plugin) can be run.
pub fn compose_available() -> bool {
    clean_command()
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether a test that needs `docker compose` runs: false, after a SKIP line, when Compose
/// is missing outside CI; in CI, where such tests must run, a missing Compose panics.
pub fn require_compose() -> bool {
    if compose_available() {
        return true;
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "docker compose is required in CI"
    );
    println!("SKIP: docker compose (v2 plugin) not available");
    false
}

/// `docker` with only PATH and HOME: the user's environment must not leak into
/// interpolation, exactly as hlsys only sees the env files.
fn clean_command() -> Command {
    let mut cmd = Command::new("docker");
    cmd.env_clear();
    for var in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd
}

/// `docker compose -p <project> --project-directory <dir> [-f <file>…] [--env-file …]
/// config --format json` run in `dir`, parsed; `Err` carries Compose's stderr. With no
/// files Compose selects them itself (compose file plus override, or `COMPOSE_FILE`
/// from the env files), as a user running `docker compose up` there gets them. With no
/// env files Compose reads `<dir>/.env` itself, as it always does.
pub fn compose_config_json(
    project: &str,
    dir: &Path,
    files: &[PathBuf],
    env_files: &[PathBuf],
) -> Result<Value, String> {
    let mut cmd = clean_command();
    cmd.current_dir(dir)
        .args(["compose", "-p", project])
        .arg("--project-directory")
        .arg(dir);
    for file in files {
        cmd.arg("-f").arg(file);
    }
    for env_file in env_files {
        cmd.arg("--env-file").arg(env_file);
    }
    cmd.args(["config", "--format", "json"]);
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("compose config JSON: {e}"))
}

/// Whether `files` are the files Compose selects itself in `dir` with `env_files`:
/// passing them with `-f` (as `hlsys supervise` does) renders the same project as
/// passing none. `Err` says what differs.
pub fn same_files_as_compose(
    project: &str,
    dir: &Path,
    files: &[PathBuf],
    env_files: &[PathBuf],
) -> Result<(), String> {
    let selected = compose_config_json(project, dir, &[], env_files)?;
    let ours = compose_config_json(project, dir, files, env_files)?;
    if selected == ours {
        Ok(())
    } else {
        Err(format!(
            "with -f {files:?} compose renders\n{ours}\nwithout -f\n{selected}"
        ))
    }
}

/// [`compose_config_json`] with the files Compose selects, reduced to a [`Summary`];
/// panics if Compose rejects the project.
pub fn compose_config_summary(project: &str, dir: &Path, env_files: &[PathBuf]) -> Summary {
    let json = compose_config_json(project, dir, &[], env_files)
        .unwrap_or_else(|e| panic!("docker compose config in {}: {e}", dir.display()));
    summarize(&json)
}

pub fn summarize(json: &Value) -> Summary {
    let mut summary = Summary::default();
    for (name, service) in services(json) {
        summary.services.insert(name.clone());
        summary.networks.extend(service_networks(json, service));
        summary.gpu |= !gpu_forms(service).is_empty();
    }
    summary
}

/// `services` of the rendered project (only the active ones: Compose drops the rest).
pub fn services(json: &Value) -> impl Iterator<Item = (&String, &Value)> {
    json["services"].as_object().into_iter().flatten()
}

/// Docker names of the networks a rendered service joins (none with `network_mode`).
pub fn service_networks(json: &Value, service: &Value) -> BTreeSet<String> {
    if service.get("network_mode").is_some_and(|m| !m.is_null()) {
        return BTreeSet::new();
    }
    service["networks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, _)| {
            let name = json["networks"][key]["name"]
                .as_str()
                .unwrap_or_else(|| panic!("network {key} has no name in compose config"));
            // `config` re-escapes `$` as `$$` so its output can be read back.
            name.replace("$$", "$")
        })
        .collect()
}

/// How a rendered service asks for an NVIDIA GPU, as compose renders each form:
/// "runtime", "device-request", "gpus", "cdi" (sorted, each once).
pub fn gpu_forms(service: &Value) -> BTreeSet<&'static str> {
    let mut forms = BTreeSet::new();
    if service["runtime"] == "nvidia" {
        forms.insert("runtime");
    }
    let devices = &service["deploy"]["resources"]["reservations"]["devices"];
    if devices.as_array().into_iter().flatten().any(|d| {
        d["driver"] == "nvidia"
            || d["capabilities"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c == "gpu"))
    }) {
        forms.insert("device-request");
    }
    // `gpus: all` renders as `[{"count": -1}]`.
    if service["gpus"].as_array().is_some_and(|g| !g.is_empty()) {
        forms.insert("gpus");
    }
    // Short and long `devices:` both render as {source, target, permissions}.
    if service["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["source"].as_str().is_some_and(|s| s.starts_with("nvidia.com/gpu=")))
    {
        forms.insert("cdi");
    }
    forms
}
