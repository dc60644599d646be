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
    /// The policy Docker would give its containers: `restart:`, overridden by
    /// `deploy.restart_policy` as Compose does. hlsys's supervisor applies it itself.
    pub restart_policy: RestartPolicy,
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
    /// The image reference Compose runs: `image:` as written (interpolated), else the name
    /// Compose gives a built image, `<project>-<service>`. `hlsys update` checks these.
    pub image: String,
    /// Has a `build:` section: its image is made here, no registry has a newer one.
    pub build: bool,
}

/// A container restart policy as Docker defines it (docker-run(1) `--restart`). hlsys
/// gives the containers it runs none ("no"), so dockerd never starts one on its own, and
/// its supervisor restarts a container that dies the way this says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// `on-failure[:N]`: only after a non-zero exit, at most `max_retries` times (0: no limit).
    OnFailure {
        max_retries: u32,
    },
}

impl RestartPolicy {
    /// Reads `restart:` (`no`, `always`, `unless-stopped`, `on-failure[:N]`) or the
    /// engine's name for a `deploy.restart_policy.condition` (`none`, `any` too), as
    /// Compose maps them; `None` for a word Docker does not know.
    pub fn parse(text: &str, max_attempts: Option<u32>) -> Option<RestartPolicy> {
        let (name, count) = match text.split_once(':') {
            Some((name, n)) => (name, Some(n.parse::<u32>().ok()?)),
            None => (text, max_attempts),
        };
        match name {
            "" | "no" | "none" => Some(RestartPolicy::No),
            "always" | "any" => Some(RestartPolicy::Always),
            "unless-stopped" => Some(RestartPolicy::UnlessStopped),
            "on-failure" => Some(RestartPolicy::OnFailure {
                max_retries: count.unwrap_or(0),
            }),
            _ => None,
        }
    }

    /// Whether Docker would start a container again that exited with `exit_code` after
    /// being restarted `restarts` times already (a container stopped by hand aside).
    pub fn restarts(self, exit_code: i64, restarts: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max_retries } => exit_code != 0 && (max_retries == 0 || restarts < max_retries),
        }
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
            RestartPolicy::OnFailure { max_retries: 0 } => f.write_str("on-failure"),
            RestartPolicy::OnFailure { max_retries } => write!(f, "on-failure:{max_retries}"),
        }
    }
}

impl From<RestartPolicy> for String {
    fn from(p: RestartPolicy) -> String {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_read_as_compose_maps_them_and_restart_as_docker_would() {
        use RestartPolicy::*;
        assert_eq!(RestartPolicy::parse("unless-stopped", None), Some(UnlessStopped));
        assert_eq!(RestartPolicy::parse("any", Some(2)), Some(Always));
        assert_eq!(RestartPolicy::parse("none", None), Some(No));
        assert_eq!(
            RestartPolicy::parse("on-failure:3", None),
            Some(OnFailure { max_retries: 3 })
        );
        assert_eq!(
            RestartPolicy::parse("on-failure", Some(2)),
            Some(OnFailure { max_retries: 2 })
        );
        assert_eq!(RestartPolicy::parse("on-failure:x", None), None);
        assert_eq!(RestartPolicy::parse("sometimes", None), None);
        assert!(!No.restarts(1, 0));
        assert!(Always.restarts(0, 100) && UnlessStopped.restarts(137, 7));
        assert!(
            !OnFailure { max_retries: 0 }.restarts(0, 0),
            "a clean exit is not a failure"
        );
        assert!(OnFailure { max_retries: 0 }.restarts(1, 1000));
        assert!(OnFailure { max_retries: 2 }.restarts(1, 1));
        assert!(!OnFailure { max_retries: 2 }.restarts(1, 2));
        assert_eq!(OnFailure { max_retries: 3 }.to_string(), "on-failure:3");
    }
}
