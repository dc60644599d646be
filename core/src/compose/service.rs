//! What hlsys keeps of one Compose service: the part of `docker compose config` that the
//! units, the checks and the supervisor act on.

use std::path::PathBuf;

use serde::Serialize;

/// How a Compose service asks for an NVIDIA GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GpuMechanism {
    /// `runtime: nvidia`
    Runtime,
    /// `deploy.resources.reservations.devices` with driver nvidia or capability gpu
    DeviceRequest,
    /// `gpus: all` / `gpus: [...]`
    Gpus,
    /// `devices: ["nvidia.com/gpu=all"]` (Container Device Interface)
    Cdi,
}

/// A published host port, as far as it can be known without Docker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PublishedPort {
    /// Host IP, empty for all addresses.
    pub host_ip: String,
    pub host_port: u16,
    /// "tcp" or "udp"
    pub protocol: String,
}

/// One Compose service that runs by default (its profile, if any, is active).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub name: String,
    /// Has a healthcheck that is not disabled: readiness waits for "healthy".
    pub healthcheck: bool,
    /// `restart:` as written (`None` when absent).
    pub restart: Option<String>,
    /// Docker network names this service joins.
    pub networks: Vec<String>,
    pub gpu: Vec<GpuMechanism>,
    pub ports: Vec<PublishedPort>,
    /// `env_file:` entries (absolute) with whether each is required.
    pub env_files: Vec<(PathBuf, bool)>,
    /// Host paths of bind mounts (absolute).
    pub bind_sources: Vec<PathBuf>,
    /// `depends_on` targets inside the same stack.
    pub depends_on: Vec<String>,
}
