//! The connection to the Docker Engine API (bollard). hlsys never runs the docker CLI for
//! engine state; only `hlsys check` runs `docker compose version`.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
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
