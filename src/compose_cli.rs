//! How hlsys runs Docker Compose v2 and the docker CLI: which binary, with which
//! environment and arguments for a stack, and how their output is followed.
//!
//! Which program: the plugin binary the docker CLI would run, called directly, or
//! `docker compose` when hlsys cannot tell which binary that is. Why directly: `docker
//! compose …` starts the docker CLI, which runs every candidate plugin once with
//! `docker-cli-plugin-metadata` before running Compose itself, so each call starts a Go
//! program three times; called directly (Compose v2's standalone mode, the same binary
//! with the same flags, environment, contexts and config), a call costs one start, and a
//! stack's start runs Compose on the critical path of the boot (`up`), once per layer
//! (the README's measurements give the difference).
//!
//! Which binary: the first `docker-compose` in the docker CLI's plugin directories, in its
//! order: `$DOCKER_CONFIG/cli-plugins` (or `~/.docker/cli-plugins`), then the system ones.
//! When the CLI's config.json names extra plugin directories (`cliPluginsExtraDirs`, which
//! come before the system ones), or no binary is found, hlsys leaves the choice to the
//! docker CLI: `docker compose`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result};
use hlsys_core::model::Stack;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// The docker CLI's system plugin directories, in its search order (docker/cli
/// cli-plugins/manager, Unix).
const SYSTEM_PLUGIN_DIRS: [&str; 4] = [
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
];

/// What runs Compose: the plugin binary, or `docker` with `compose` as its first argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    Plugin(PathBuf),
    DockerCli,
}

/// The docker CLI's config directory: `DOCKER_CONFIG`, else `~/.docker`.
fn config_dir(docker_config: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    docker_config
        .map(Path::to_path_buf)
        .or_else(|| home.map(|h| h.join(".docker")))
}

/// Whether the CLI config names extra plugin directories (a config that cannot be read
/// or parsed counts as naming none: the CLI would fail on it anyway). Read bounded, and
/// only a regular file: a FIFO there must not hang every stack's start.
fn has_extra_plugin_dirs(config_dir: &Path) -> bool {
    hlsys_core::bounded::read(&config_dir.join("config.json"), hlsys_core::bounded::CONFIG_CAP)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("cliPluginsExtraDirs").is_some())
}

fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Which runner, given the environment's `DOCKER_CONFIG` and `HOME` and the system plugin
/// directories (a parameter, so tests can use a fixture tree).
pub fn find(docker_config: Option<&Path>, home: Option<&Path>, system_dirs: &[&Path]) -> Runner {
    let user = config_dir(docker_config, home);
    if user.as_deref().is_some_and(has_extra_plugin_dirs) {
        return Runner::DockerCli;
    }
    user.map(|d| d.join("cli-plugins"))
        .into_iter()
        .chain(system_dirs.iter().map(|d| d.to_path_buf()))
        .map(|d| d.join("docker-compose"))
        .find(|p| is_executable_file(p))
        .map_or(Runner::DockerCli, Runner::Plugin)
}

/// The runner for this process's environment (looked up once).
pub fn runner() -> &'static Runner {
    static RUNNER: std::sync::OnceLock<Runner> = std::sync::OnceLock::new();
    RUNNER.get_or_init(|| {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let system: Vec<&Path> = SYSTEM_PLUGIN_DIRS.iter().map(Path::new).collect();
        find(var("DOCKER_CONFIG").as_deref(), var("HOME").as_deref(), &system)
    })
}

/// A command that runs Compose ([`runner`]): its next arguments are Compose's own (`up`,
/// `--file`, …).
pub fn command() -> tokio::process::Command {
    match runner() {
        Runner::Plugin(p) => tokio::process::Command::new(p),
        Runner::DockerCli => {
            let mut c = tokio::process::Command::new("docker");
            c.arg("compose");
            c
        }
    }
}

/// Variables passed through to `docker compose`. Everything else is dropped: Compose
/// gives the process environment precedence over `--env-file`, so anything else in the
/// supervisor's environment (the unit's is fixed, see hlsys_core::units::sandbox, but `hlsys supervise`
/// also runs by hand) would override the stack's own .env files and break the
/// documented precedence order.
const PASS_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Compose's `--project-name … --project-directory … --file … --env-file …` for a stack:
/// the same project, directory, files and env files (in precedence order) as the model.
pub fn compose_args(stack: &Stack) -> Vec<String> {
    let mut a = vec![
        "--project-name".to_string(),
        stack.project.clone(),
        "--project-directory".into(),
        stack.dir.to_string_lossy().into_owned(),
    ];
    for f in &stack.compose_files {
        a.push("--file".into());
        a.push(f.to_string_lossy().into_owned());
    }
    for f in &stack.env_files {
        a.push("--env-file".into());
        a.push(f.to_string_lossy().into_owned());
    }
    a
}

/// Compose run on `stack` (its project, directory, files and env files) with `sub`, in the
/// stack directory.
pub fn for_stack(stack: &Stack, sub: &[&str]) -> tokio::process::Command {
    let mut c = cleaned();
    c.args(compose_args(stack)).args(sub).current_dir(&stack.dir);
    c
}

/// `docker` with the cleaned environment every Compose run gets (see [`PASS_ENV`]).
pub fn docker() -> tokio::process::Command {
    let mut c = tokio::process::Command::new("docker");
    clean_env(&mut c);
    c
}

/// Compose v2 ([`command`]: the plugin binary, or `docker compose`) with the same
/// cleaned environment; the next arguments are Compose's own.
pub fn cleaned() -> tokio::process::Command {
    let mut c = command();
    clean_env(&mut c);
    c
}

fn clean_env(c: &mut tokio::process::Command) {
    c.env_clear();
    for k in PASS_ENV {
        if let Some(v) = std::env::var_os(k) {
            c.env(k, v);
        }
    }
    if std::env::var_os("PATH").is_none() {
        c.env("PATH", DEFAULT_PATH);
    }
    // Compose's own progress output, one line per event: readable in the journal.
    c.env("COMPOSE_PROGRESS", "plain").env("COMPOSE_ANSI", "never");
}

/// `cmd` started with stdin closed and its stdout and stderr piped (killed when dropped),
/// and the lines it prints on either, as they come; `what` names it in the error.
pub fn spawn_lines(
    mut cmd: tokio::process::Command,
    what: &str,
) -> Result<(tokio::process::Child, mpsc::UnboundedReceiver<String>)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {what}"))?;
    let rx = output_lines(&mut child);
    Ok((child, rx))
}

/// The lines a child prints on stdout and stderr, as they come.
fn output_lines(child: &mut tokio::process::Child) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel::<String>();
    for stream in [
        Box::new(child.stdout.take().expect("piped")) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box::new(child.stderr.take().expect("piped")),
    ] {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let _ = tx.send(l);
            }
        });
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn plugin(dir: &Path, mode: u32) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join("docker-compose");
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn the_first_plugin_in_the_docker_clis_order_or_the_docker_cli() {
        let t = tempfile::tempdir().unwrap();
        let (home, sys1, sys2) = (t.path().join("home"), t.path().join("sys1"), t.path().join("sys2"));
        let system = [sys1.as_path(), sys2.as_path()];
        assert_eq!(find(None, Some(&home), &system), Runner::DockerCli, "none installed");
        plugin(&sys2, 0o755);
        assert_eq!(
            find(None, Some(&home), &system),
            Runner::Plugin(sys2.join("docker-compose"))
        );
        // Not executable: skipped, as the CLI would.
        plugin(&sys1, 0o644);
        assert_eq!(
            find(None, Some(&home), &system),
            Runner::Plugin(sys2.join("docker-compose"))
        );
        plugin(&sys1, 0o755);
        assert_eq!(
            find(None, Some(&home), &system),
            Runner::Plugin(sys1.join("docker-compose"))
        );
        // The user's own plugin directory comes first: DOCKER_CONFIG, else ~/.docker.
        let user = plugin(&home.join(".docker/cli-plugins"), 0o755);
        assert_eq!(find(None, Some(&home), &system), Runner::Plugin(user));
        let cfg = t.path().join("cfg");
        let theirs = plugin(&cfg.join("cli-plugins"), 0o755);
        assert_eq!(find(Some(&cfg), Some(&home), &system), Runner::Plugin(theirs));
        // Extra plugin directories in config.json: the CLI decides.
        std::fs::write(cfg.join("config.json"), r#"{"cliPluginsExtraDirs": ["/opt/x"]}"#).unwrap();
        assert_eq!(find(Some(&cfg), Some(&home), &system), Runner::DockerCli);
        std::fs::write(cfg.join("config.json"), r#"{"auths": {}}"#).unwrap();
        assert!(matches!(find(Some(&cfg), Some(&home), &system), Runner::Plugin(_)));
        // A FIFO in its place is not read (it would block).
        std::fs::remove_file(cfg.join("config.json")).unwrap();
        nix::unistd::mkfifo(
            &cfg.join("config.json"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(matches!(find(Some(&cfg), Some(&home), &system), Runner::Plugin(_)));
    }
}
