//! hlsys's reading of a stack directory (file selection, loading, model) against the real
//! `docker compose config` run in that directory without `-f`, on every fixture under
//! tests/fixtures/compose/: the same files (passing hlsys's list with `-f` renders the
//! same project), services, networks and GPU use, and per service the same healthcheck,
//! restart, networks, GPU forms, ports, bind mounts and depends_on. A fixture named
//! `err_*` must be rejected by both.

#[path = "common/compose_cli.rs"]
mod compose_cli;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use compose_cli::{
    compose_config_json, gpu_forms, require_compose, same_files_as_compose, service_networks, summarize,
};
use hlsys_core::compose::ComposeFile;
use hlsys_core::compose::{GpuMechanism, Service};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/compose");

/// What both sides must agree on for one service.
#[derive(Debug, PartialEq, Eq)]
struct Detail {
    healthcheck: bool,
    restart: Option<String>,
    networks: BTreeSet<String>,
    gpu: BTreeSet<&'static str>,
    /// (host_ip, host_port, protocol), in order.
    ports: Vec<(String, u16, String)>,
    bind_sources: Vec<PathBuf>,
    depends_on: BTreeSet<String>,
}

fn from_hlsys(s: &Service) -> Detail {
    Detail {
        healthcheck: s.healthcheck,
        restart: s.restart.clone(),
        networks: s.networks.iter().cloned().collect(),
        gpu: s
            .gpu
            .iter()
            .map(|g| match g {
                GpuMechanism::Runtime => "runtime",
                GpuMechanism::DeviceRequest => "device-request",
                GpuMechanism::Gpus => "gpus",
                GpuMechanism::Cdi => "cdi",
            })
            .collect(),
        ports: s
            .ports
            .iter()
            .map(|p| (p.host_ip.clone(), p.host_port, p.protocol.clone()))
            .collect(),
        bind_sources: s.bind_sources.clone(),
        depends_on: s.depends_on.iter().cloned().collect(),
    }
}

fn from_compose(json: &Value, s: &Value) -> Detail {
    let hc = &s["healthcheck"];
    let str_of = |v: &Value| v.as_str().map(str::to_string);
    Detail {
        healthcheck: hc.is_object()
            && hc["disable"] != true
            && hc["test"].as_array().and_then(|t| t.first()) != Some(&"NONE".into()),
        restart: str_of(&s["restart"]),
        networks: service_networks(json, s),
        gpu: gpu_forms(s),
        // Only ports with a known host port: Compose renders a host range for a single
        // container port ("7000-7010") as is, Docker picks one at run time.
        ports: s["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let port = p["published"].as_str()?.parse().ok()?;
                let ip = str_of(&p["host_ip"]).unwrap_or_default();
                Some((ip, port, str_of(&p["protocol"]).unwrap_or_default()))
            })
            .collect(),
        bind_sources: s["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["type"] == "bind")
            .map(|v| PathBuf::from(v["source"].as_str().unwrap()))
            .collect(),
        depends_on: s["depends_on"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect(),
    }
}

/// The fixture's compose file (one of the canonical names).
fn canonical(dir: &Path) -> PathBuf {
    hlsys_core::tree::COMPOSE_FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .unwrap()
}

/// hlsys's reading of a fixture: its files as [`hlsys_core::compose::load::files::select`] picks them,
/// loaded and modelled; the error says in which file.
fn ours(
    case: &str,
    dir: &Path,
    env: &hlsys_core::compose::interpolate::Env,
) -> Result<(Vec<PathBuf>, ComposeFile), String> {
    let files = hlsys_core::compose::load::files::select(
        dir,
        &canonical(dir),
        hlsys_core::compose::load::files::override_file(dir).as_deref(),
        env,
    )
    .map_err(|e| e.to_string())?;
    let loaded = hlsys_core::compose::load::load(&files, dir, env).map_err(|e| e.to_string())?;
    let model = hlsys_core::compose::project::read(&loaded.root, case, dir, env).map_err(|e| e.to_string())?;
    Ok((files, model))
}

/// Compares one fixture; returns what differs.
fn check(dir: &Path) -> Result<(), String> {
    let case = dir.file_name().unwrap().to_str().unwrap();
    let env_files: Vec<PathBuf> = Some(dir.join(".env")).filter(|p| p.exists()).into_iter().collect();
    let env = hlsys_core::compose::envfile::load_layered(&env_files).map_err(|e| format!("env: {e}"))?;

    let ours = ours(case, dir, &env.into());
    let theirs = compose_config_json(case, dir, &[], &env_files);
    let ((files, ours), json) = match (ours, theirs) {
        (Err(_), Err(_)) if case.starts_with("err_") => return Ok(()),
        (Ok(o), Ok(j)) if !case.starts_with("err_") => (o, j),
        (ours, theirs) => {
            return Err(format!(
                "hlsys: {:?}\ncompose: {:?}",
                ours.map(|_| "ok"),
                theirs.map(|_| "ok")
            ))
        }
    };
    // The files hlsys selected (and `hlsys supervise` passes) give Compose the same project.
    same_files_as_compose(case, dir, &files, &env_files)?;

    let mut diffs = Vec::new();
    let summary = summarize(&json);
    if summary.services.is_empty() {
        diffs.push("fixture runs no service: it checks nothing".to_string());
    }
    let our_services: BTreeSet<_> = ours.services.iter().map(|s| s.name.clone()).collect();
    let our_networks: BTreeSet<_> = ours.services.iter().flat_map(|s| s.networks.clone()).collect();
    let our_gpu = ours.services.iter().any(|s| !s.gpu.is_empty());
    if our_services != summary.services {
        diffs.push(format!(
            "services: hlsys {our_services:?}, compose {:?}",
            summary.services
        ));
    }
    if our_networks != summary.networks {
        diffs.push(format!(
            "networks: hlsys {our_networks:?}, compose {:?}",
            summary.networks
        ));
    }
    if our_gpu != summary.gpu {
        diffs.push(format!("gpu: hlsys {our_gpu}, compose {}", summary.gpu));
    }
    for service in &ours.services {
        let Some(rendered) = json["services"].get(&service.name) else {
            continue;
        };
        let (a, b) = (from_hlsys(service), from_compose(&json, rendered));
        if a != b {
            diffs.push(format!("service {}:\n  hlsys   {a:?}\n  compose {b:?}", service.name));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n"))
    }
}

#[test]
fn parse_matches_docker_compose_config() {
    if !require_compose() {
        return;
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("compose.yaml").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 20, "fixtures missing under {FIXTURES}");

    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|dir| check(dir).err().map(|e| format!("== {}\n{e}", dir.display())))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}
