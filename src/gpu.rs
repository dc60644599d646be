//! NVIDIA GPU support: what the host offers (driver, CDI specs, Docker runtimes), whether
//! each GPU stack's way of asking for a GPU works here, and `hlsys gpu setup`, which
//! registers the nvidia runtime in daemon.json.
//!
//! Every host path is read below a root (`/` normally) so tests run on fixture trees.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bollard::Docker;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use hlsys_core::compose::GpuMechanism;
use hlsys_core::model::Model;

/// Where CDI specs live (the CDI spec's static and dynamic directories).
pub const CDI_DIRS: [&str; 2] = ["etc/cdi", "var/run/cdi"];
/// The CDI kind NVIDIA's toolkit generates.
pub const CDI_GPU_KIND: &str = "nvidia.com/gpu";
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What this host offers for NVIDIA GPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostGpu {
    /// First line of /proc/driver/nvidia/version: the kernel driver is loaded.
    pub driver_version: Option<String>,
    /// /dev/nvidiactl exists.
    pub nvidiactl: bool,
    pub nvidia_smi: Option<PathBuf>,
    /// nvidia-container-runtime-hook on PATH: Docker's `--gpus` / device requests use it.
    pub toolkit_hook: Option<PathBuf>,
    pub cdi_specs: Vec<PathBuf>,
    /// `kind=name` of every device in those specs.
    pub cdi_devices: Vec<String>,
    /// Spec files that could not be read or parsed.
    pub cdi_errors: Vec<String>,
    /// The daemon's registered runtimes; `None` when Docker was not asked or not reachable.
    pub runtimes: Option<Vec<String>>,
    pub docker_error: Option<String>,
}

impl HostGpu {
    pub fn driver(&self) -> bool {
        self.driver_version.is_some() || self.nvidiactl
    }

    pub fn nvidia_runtime(&self) -> bool {
        self.runtimes.as_ref().is_some_and(|r| r.iter().any(|r| r == "nvidia"))
    }

    pub fn cdi_gpu(&self) -> bool {
        self.cdi_devices
            .iter()
            .any(|d| d.starts_with(&format!("{CDI_GPU_KIND}=")))
    }
}

/// `name` in one of `$PATH`'s directories, below `root`.
pub fn find_on_path(root: &Path, name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string());
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| root.join(d.trim_start_matches('/')).join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The host side only: files below `root`, no Docker.
pub fn detect_host(root: &Path) -> HostGpu {
    let driver_version = std::fs::read_to_string(root.join("proc/driver/nvidia/version"))
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
        .filter(|l| !l.is_empty());
    let mut host = HostGpu {
        driver_version,
        nvidiactl: root.join("dev/nvidiactl").exists(),
        nvidia_smi: find_on_path(root, "nvidia-smi"),
        toolkit_hook: find_on_path(root, "nvidia-container-runtime-hook"),
        ..Default::default()
    };
    for dir in CDI_DIRS {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")))
            .collect();
        files.sort();
        for f in files {
            match std::fs::read_to_string(&f)
                .map_err(|e| e.to_string())
                .and_then(|t| parse_cdi_spec(&t, f.extension().is_some_and(|e| e == "json")))
            {
                Ok(devs) => {
                    host.cdi_devices.extend(devs);
                    host.cdi_specs.push(f);
                }
                Err(e) => host.cdi_errors.push(format!("{}: {e}", f.display())),
            }
        }
    }
    host.cdi_devices.sort();
    host.cdi_devices.dedup();
    host
}

#[derive(Deserialize)]
struct CdiSpec {
    kind: String,
    #[serde(default)]
    devices: Vec<CdiDevice>,
}

#[derive(Deserialize)]
struct CdiDevice {
    name: String,
}

/// The fully qualified device names (`nvidia.com/gpu=0`) a CDI spec declares.
pub fn parse_cdi_spec(text: &str, json: bool) -> Result<Vec<String>, String> {
    let spec: CdiSpec = if json {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?
    };
    Ok(spec
        .devices
        .into_iter()
        .map(|d| format!("{}={}", spec.kind, d.name))
        .collect())
}

/// The daemon's registered runtimes (`docker info`'s Runtimes).
pub async fn runtimes(docker: &Docker) -> Result<Vec<String>> {
    let info = docker.info().await.context("cannot read Docker's info")?;
    let mut r: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
    r.sort();
    Ok(r)
}

/// Host files plus, when a daemon is given, its runtimes.
pub async fn detect(root: &Path, docker: Result<&Docker, &anyhow::Error>) -> HostGpu {
    let mut host = detect_host(root);
    match docker {
        Ok(d) => match runtimes(d).await {
            Ok(r) => host.runtimes = Some(r),
            Err(e) => host.docker_error = Some(format!("{e:#}")),
        },
        Err(e) => host.docker_error = Some(format!("{e:#}")),
    }
    host
}

/// Whether one way of asking for a GPU works on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MechanismStatus {
    pub mechanism: GpuMechanism,
    pub works: bool,
    pub reason: String,
    /// What to do about it when it does not work.
    pub remedy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackGpu {
    pub stack: String,
    pub enabled: bool,
    /// Services asking for a GPU, with their mechanisms.
    pub services: BTreeMap<String, Vec<GpuMechanism>>,
    pub mechanisms: Vec<MechanismStatus>,
}

impl StackGpu {
    pub fn works(&self) -> bool {
        self.mechanisms.iter().all(|m| m.works)
    }
}

pub fn mechanism_status(m: GpuMechanism, host: &HostGpu) -> MechanismStatus {
    let runtime_unknown = || {
        host.docker_error
            .as_ref()
            .map(|e| format!("Docker's runtimes are unknown ({e})"))
    };
    let (works, reason, remedy) = match m {
        GpuMechanism::Runtime if host.nvidia_runtime() => {
            (true, "the nvidia runtime is registered with Docker".to_string(), None)
        }
        GpuMechanism::Runtime => (
            false,
            runtime_unknown().unwrap_or_else(|| {
                format!(
                    "Docker has no nvidia runtime (it has: {})",
                    host.runtimes.as_deref().unwrap_or_default().join(", ")
                )
            }),
            Some("install nvidia-container-toolkit, then `hlsys gpu setup` and restart Docker".into()),
        ),
        GpuMechanism::DeviceRequest | GpuMechanism::Gpus if !host.driver() => (
            false,
            "no NVIDIA driver loaded (/proc/driver/nvidia/version, /dev/nvidiactl missing)".into(),
            Some("install and load the NVIDIA kernel driver".into()),
        ),
        GpuMechanism::DeviceRequest | GpuMechanism::Gpus => {
            let via = if host.nvidia_runtime() {
                Some("the nvidia runtime")
            } else if host.toolkit_hook.is_some() {
                Some("nvidia-container-runtime-hook")
            } else if host.cdi_gpu() {
                Some("CDI")
            } else {
                None
            };
            match via {
                Some(v) => (true, format!("driver loaded, served by {v}"), None),
                None => (
                    false,
                    runtime_unknown().unwrap_or_else(|| {
                        "driver loaded, but neither the nvidia runtime, the toolkit hook nor a CDI spec is present"
                            .into()
                    }),
                    Some("install nvidia-container-toolkit, then `hlsys gpu setup` and restart Docker".into()),
                ),
            }
        }
        GpuMechanism::Cdi if host.cdi_gpu() => (
            true,
            format!(
                "CDI spec lists {}",
                host.cdi_devices
                    .iter()
                    .filter(|d| d.starts_with(CDI_GPU_KIND))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        ),
        GpuMechanism::Cdi => (
            false,
            format!("no CDI spec in /etc/cdi or /var/run/cdi lists {CDI_GPU_KIND} devices"),
            Some("nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml".into()),
        ),
    };
    MechanismStatus {
        mechanism: m,
        works,
        reason,
        remedy,
    }
}

/// Each GPU stack of the model and whether each of its mechanisms works on `host`.
pub fn assess(model: &Model, host: &HostGpu) -> Vec<StackGpu> {
    model
        .stacks
        .iter()
        .filter(|s| s.gpu)
        .map(|s| {
            let services: BTreeMap<String, Vec<GpuMechanism>> = s
                .service_details
                .iter()
                .filter(|svc| !svc.gpu.is_empty())
                .map(|svc| (svc.name.clone(), svc.gpu.clone()))
                .collect();
            let mut mechs: Vec<GpuMechanism> = services.values().flatten().copied().collect();
            mechs.sort();
            mechs.dedup();
            StackGpu {
                stack: s.id.clone(),
                enabled: s.enabled,
                mechanisms: mechs.into_iter().map(|m| mechanism_status(m, host)).collect(),
                services,
            }
        })
        .collect()
}

/// What `hlsys gpu setup` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum SetupOutcome {
    /// nvidia-container-runtime is not installed: nothing to register.
    NoRuntime,
    /// daemon.json already registers it; the file was not touched.
    Unchanged { path: PathBuf },
    /// daemon.json was written; Docker needs a restart to see the runtime.
    Changed { path: PathBuf, backup: Option<PathBuf> },
}

/// `daemon.json` with the nvidia runtime merged in, or `None` when it already has one
/// (an existing entry pointing at nvidia-container-runtime, wherever installed, is kept).
/// Every other key is kept.
pub fn merge_daemon_json(existing: Option<&str>) -> Result<Option<String>> {
    let mut doc: Value = match existing {
        Some(t) if !t.trim().is_empty() => {
            serde_json::from_str(t).context("daemon.json is not valid JSON; fix it first")?
        }
        _ => json!({}),
    };
    let Some(obj) = doc.as_object_mut() else {
        bail!("daemon.json is not a JSON object")
    };
    let runtimes = obj.entry("runtimes").or_insert_with(|| json!({}));
    let Some(runtimes) = runtimes.as_object_mut() else {
        bail!("daemon.json: \"runtimes\" is not an object")
    };
    let current = runtimes
        .get("nvidia")
        .and_then(|n| n.get("path"))
        .and_then(Value::as_str);
    if current.is_some_and(|p| {
        Path::new(p)
            .file_name()
            .is_some_and(|f| f == "nvidia-container-runtime")
    }) {
        return Ok(None);
    }
    runtimes.insert("nvidia".into(), json!({"path": "nvidia-container-runtime", "args": []}));
    Ok(Some(serde_json::to_string_pretty(&doc)? + "\n"))
}

/// Registers the nvidia runtime in `<root>/etc/docker/daemon.json` when
/// nvidia-container-runtime is installed. The old file is kept as
/// `daemon.json.bak-<unix seconds>`; an unchanged file is never rewritten.
pub fn setup(root: &Path) -> Result<SetupOutcome> {
    if find_on_path(root, "nvidia-container-runtime").is_none() {
        return Ok(SetupOutcome::NoRuntime);
    }
    let path = root.join("etc/docker/daemon.json");
    let old = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let Some(new) = merge_daemon_json(old.as_deref()).with_context(|| path.display().to_string())? else {
        return Ok(SetupOutcome::Unchanged { path });
    };
    let dir = path.parent().expect("daemon.json has a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut backup = None;
    if old.is_some() {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let b = dir.join(format!("daemon.json.bak-{secs}"));
        std::fs::copy(&path, &b).with_context(|| format!("cannot back up {} to {}", path.display(), b.display()))?;
        backup = Some(b);
    }
    // Written beside it (a new, unpredictable temporary file) and renamed, so a crash
    // never leaves Docker a half-written file; the old mode is kept.
    let mode = path.metadata().map_or(0o644, |m| m.permissions().mode() & 0o7777);
    hlsys_core::write::write_atomic_mode(&path, new.as_bytes(), mode, hlsys_core::write::Durability::Synced)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(SetupOutcome::Changed { path, backup })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, rel: &str, text: &str, mode: u32) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    const CDI_YAML: &str = "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"0\"\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n- name: all\n  containerEdits: {}\ncontainerEdits: {}\n";

    #[test]
    fn cdi_specs_yaml_and_json() {
        assert_eq!(
            parse_cdi_spec(CDI_YAML, false).unwrap(),
            vec!["nvidia.com/gpu=0", "nvidia.com/gpu=all"]
        );
        let j = r#"{"cdiVersion":"0.6.0","kind":"vendor.com/fpga","devices":[{"name":"f0","containerEdits":{}}]}"#;
        assert_eq!(parse_cdi_spec(j, true).unwrap(), vec!["vendor.com/fpga=f0"]);
        assert!(parse_cdi_spec("devices: []", false).is_err());
    }

    #[test]
    fn host_detection_from_fixture_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        assert!(!detect_host(r).driver());
        put(
            r,
            "proc/driver/nvidia/version",
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54\nGCC\n",
            0o444,
        );
        put(r, "dev/nvidiactl", "", 0o666);
        put(r, "usr/bin/nvidia-smi", "#!/bin/sh\n", 0o755);
        put(r, "etc/cdi/nvidia.yaml", CDI_YAML, 0o644);
        put(r, "var/run/cdi/broken.json", "{", 0o644);
        put(r, "etc/cdi/README", "not a spec", 0o644);
        let h = detect_host(r);
        assert!(h.driver_version.as_deref().unwrap().contains("550.54"));
        assert!(h.nvidiactl);
        assert_eq!(h.nvidia_smi, Some(r.join("usr/bin/nvidia-smi")));
        assert!(h.cdi_gpu());
        assert_eq!(h.cdi_specs, vec![r.join("etc/cdi/nvidia.yaml")]);
        assert_eq!(h.cdi_errors.len(), 1);
    }

    #[test]
    fn mechanisms() {
        let mut h = HostGpu {
            runtimes: Some(vec!["runc".into()]),
            ..Default::default()
        };
        assert!(!mechanism_status(GpuMechanism::Runtime, &h).works);
        assert!(!mechanism_status(GpuMechanism::Gpus, &h).works);
        h.nvidiactl = true;
        assert!(!mechanism_status(GpuMechanism::Gpus, &h).works);
        h.cdi_devices = vec!["nvidia.com/gpu=all".into()];
        assert!(mechanism_status(GpuMechanism::Gpus, &h).works);
        assert!(mechanism_status(GpuMechanism::Cdi, &h).works);
        assert!(!mechanism_status(GpuMechanism::Runtime, &h).works);
        h.runtimes = Some(vec!["nvidia".into(), "runc".into()]);
        assert!(mechanism_status(GpuMechanism::Runtime, &h).works);
        let unknown = HostGpu {
            docker_error: Some("down".into()),
            ..Default::default()
        };
        assert!(mechanism_status(GpuMechanism::Runtime, &unknown)
            .reason
            .contains("down"));
    }

    #[test]
    fn daemon_json_merge_keeps_other_keys() {
        let merged = merge_daemon_json(Some(
            r#"{"log-driver":"journald","runtimes":{"crun":{"path":"/usr/bin/crun"}}}"#,
        ))
        .unwrap()
        .unwrap();
        let v: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(v["log-driver"], "journald");
        assert_eq!(v["runtimes"]["crun"]["path"], "/usr/bin/crun");
        assert_eq!(
            v["runtimes"]["nvidia"],
            json!({"path": "nvidia-container-runtime", "args": []})
        );
        // Already there (nvidia-ctk writes the same; an absolute path is fine too).
        assert_eq!(merge_daemon_json(Some(&merged)).unwrap(), None);
        let abs = r#"{"runtimes":{"nvidia":{"path":"/usr/bin/nvidia-container-runtime"}}}"#;
        assert_eq!(merge_daemon_json(Some(abs)).unwrap(), None);
        assert!(merge_daemon_json(None).unwrap().is_some());
        assert!(merge_daemon_json(Some("[1]")).is_err());
        assert!(merge_daemon_json(Some("{oops")).is_err());
    }

    #[test]
    fn setup_writes_backs_up_and_is_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        let daemon = r.join("etc/docker/daemon.json");
        put(r, "etc/docker/daemon.json", "{\"debug\": true}\n", 0o600);
        assert_eq!(setup(r).unwrap(), SetupOutcome::NoRuntime);
        put(r, "usr/bin/nvidia-container-runtime", "#!/bin/sh\n", 0o755);
        let SetupOutcome::Changed { path, backup: Some(b) } = setup(r).unwrap() else {
            panic!("not changed")
        };
        assert_eq!(path, daemon);
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "{\"debug\": true}\n");
        assert!(b.file_name().unwrap().to_str().unwrap().starts_with("daemon.json.bak-"));
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&daemon).unwrap()).unwrap();
        assert_eq!(v["debug"], true);
        assert_eq!(v["runtimes"]["nvidia"]["path"], "nvidia-container-runtime");
        assert_eq!(daemon.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        let before = std::fs::metadata(&daemon).unwrap().modified().unwrap();
        let backups = || std::fs::read_dir(r.join("etc/docker")).unwrap().count();
        let n = backups();
        assert_eq!(setup(r).unwrap(), SetupOutcome::Unchanged { path: daemon.clone() });
        assert_eq!(std::fs::metadata(&daemon).unwrap().modified().unwrap(), before);
        assert_eq!(backups(), n);
        // No daemon.json yet: created, nothing to back up.
        std::fs::remove_file(&daemon).unwrap();
        assert!(matches!(setup(r).unwrap(), SetupOutcome::Changed { backup: None, .. }));
    }
}
