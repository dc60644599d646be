//! The connection to the Docker Engine API (bollard). hlsys never runs the docker CLI for
//! engine state; only `hlsys check` runs `docker compose version`.

use std::time::Duration;

use std::collections::HashMap;

use anyhow::{anyhow, Context, Result};
use bollard::models::ContainerSummary;
use bollard::Docker;

/// The socket used when `DOCKER_HOST` is unset.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long the first round trip may take before Docker counts as unreachable; a hung
/// daemon must not hang `hlsys check` for bollard's default two minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Where [`connect`] goes: `DOCKER_HOST`, else the default socket.
pub fn host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

/// Connects to the daemon named by `DOCKER_HOST` (unix:// or tcp://), else the local socket.
pub async fn connect() -> Result<Docker> {
    connect_to(&host()).await
}

/// Connects to `host` and agrees on an API version: bollard speaks a newer API than many
/// installed engines (Debian's 20.10 stops at 1.41) and the daemon refuses newer clients.
pub async fn connect_to(host: &str) -> Result<Docker> {
    let fail = |e: &dyn std::fmt::Display| anyhow!("cannot reach Docker at {host}: {e}");
    let docker = if host.starts_with("unix://") || host.starts_with('/') {
        let path = host.strip_prefix("unix://").unwrap_or(host);
        Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_host(host)
    }
    .map_err(|e| fail(&e))?;
    match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => Err(fail(&e)),
        Err(_) => Err(fail(&format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))),
    }
}

/// The labels Compose puts on the containers it creates.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
/// "True" on the containers of `compose run`, which no stack owns.
pub const ONEOFF_LABEL: &str = "com.docker.compose.oneoff";

/// The containers Compose created, in any state: those of `project`, or of every project
/// when `None`. One-off `compose run` containers are left out.
pub async fn compose_containers(docker: &Docker, project: Option<&str>) -> Result<Vec<ContainerSummary>> {
    let label = match project {
        Some(p) => format!("{PROJECT_LABEL}={p}"),
        None => PROJECT_LABEL.to_string(),
    };
    let filters = HashMap::from([("label", vec![label])]);
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let all = docker
        .list_containers(Some(opts))
        .await
        .context("listing Compose's containers")?;
    Ok(all
        .into_iter()
        .filter(|c| label_of(c, ONEOFF_LABEL) != Some("True"))
        .collect())
}

/// A label of a container.
pub fn label_of<'c>(c: &'c ContainerSummary, label: &str) -> Option<&'c str> {
    c.labels.as_ref()?.get(label).map(String::as_str)
}

/// The container's name as `docker ps` shows it (no leading `/`), else its id.
pub fn container_name(c: &ContainerSummary) -> String {
    c.names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_else(|| c.id.clone().unwrap_or_default())
}

/// The HTTP status of a daemon error response, if that is what `e` is.
pub fn status_code(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// A current-thread runtime for the synchronous CLI entry points.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
