//! `hlsys supervise <stack>`: the main process of each stack unit (Type=notify).
//!
//! It runs the real `docker compose` v2 (never a re-implementation): `up --detach --wait`
//! returns once every service with a healthcheck is healthy and the others run, and only
//! then does the unit report READY=1, so a layer target is reached when its stacks are
//! usable, not merely created. Afterwards it watches the project's containers through the
//! Docker events API and exits non-zero when one dies or turns unhealthy, so systemd's
//! `Restart=on-failure` brings the stack back.

use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use libsystemd::daemon::{notify, NotifyState};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::model::Stack;

/// Variables passed through to `docker compose`. Everything else is dropped: Compose
/// gives the process environment precedence over `--env-file`, so values systemd put
/// there (EnvironmentFile=) would otherwise override the stack's own .env files and
/// break the documented precedence order.
const PASS_ENV: &[&str] = &[
    "PATH", "HOME", "LANG", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
];

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `compose --project-name … --project-directory … --file … --env-file …` for a stack:
/// the same project, directory, file and env files (in precedence order) as the model.
pub fn compose_args(stack: &Stack) -> Vec<String> {
    let mut a = vec![
        "compose".to_string(),
        "--project-name".into(),
        stack.project.clone(),
        "--project-directory".into(),
        stack.dir.to_string_lossy().into_owned(),
        "--file".into(),
        stack.compose_file.to_string_lossy().into_owned(),
    ];
    for f in &stack.env_files {
        a.push("--env-file".into());
        a.push(f.to_string_lossy().into_owned());
    }
    a
}

fn compose(stack: &Stack, sub: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("docker");
    c.args(compose_args(stack)).args(sub).current_dir(&stack.dir).env_clear();
    for k in PASS_ENV {
        if let Some(v) = std::env::var_os(k) {
            c.env(k, v);
        }
    }
    if std::env::var_os("PATH").is_none() {
        c.env("PATH", DEFAULT_PATH);
    }
    c
}

fn sd(states: &[NotifyState]) {
    // Outside systemd (NOTIFY_SOCKET unset) this is a no-op, which keeps `hlsys
    // supervise` usable by hand.
    let _ = notify(false, states);
}

fn status(text: &str) {
    tracing::info!("{text}");
    sd(&[NotifyState::Status(text.to_string())]);
}

/// `compose up --detach --wait --remove-orphans`, with its progress lines forwarded to
/// the journal and to `systemctl status` (STATUS=).
async fn up(stack: &Stack) -> Result<()> {
    status("starting: docker compose up");
    let mut child = compose(stack, &["up", "--detach", "--wait", "--remove-orphans"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run `docker compose` (is docker with the compose v2 plugin installed?)")?;
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let mut lines = futures_util::stream::select(
        tokio_stream_lines(BufReader::new(out)),
        tokio_stream_lines(BufReader::new(err)),
    );
    let mut last = String::new();
    while let Some(line) = lines.next().await {
        let line = line.trim().to_string();
        if line.is_empty() {
            continue;
        }
        eprintln!("{line}");
        let lower = line.to_lowercase();
        let shown = if lower.contains("pull") {
            Some(format!("pulling: {line}"))
        } else if lower.contains("waiting") {
            Some(format!("waiting for health: {line}"))
        } else if lower.contains("creat") || lower.contains("start") {
            Some(format!("creating: {line}"))
        } else {
            None
        };
        if let Some(s) = shown {
            sd(&[NotifyState::Status(s)]);
        }
        last = line;
    }
    let st = child.wait().await.context("waiting for docker compose up")?;
    if !st.success() {
        bail!("docker compose up failed ({st}): {last}");
    }
    Ok(())
}

fn tokio_stream_lines<R: tokio::io::AsyncBufRead + Unpin + Send + 'static>(
    r: R,
) -> futures_util::stream::BoxStream<'static, String> {
    futures_util::stream::unfold(r.lines(), |mut l| async move {
        match l.next_line().await {
            Ok(Some(s)) => Some((s, l)),
            _ => None,
        }
    })
    .boxed()
}

/// Brings the stack down (`down`, never `-v`: named volumes hold the data).
pub async fn down(stack: &Stack) -> Result<()> {
    let st = compose(stack, &["down"])
        .stdin(Stdio::null())
        .status()
        .await
        .context("cannot run `docker compose down`")?;
    if !st.success() {
        bail!("docker compose down failed ({st})");
    }
    Ok(())
}

/// Waits until a container of the project dies or turns unhealthy; returns why.
async fn watch(project: &str) -> Result<String> {
    let docker = crate::docker::connect().await?;
    let mut filters = std::collections::HashMap::new();
    let label = format!("com.docker.compose.project={project}");
    filters.insert("type", vec!["container"]);
    filters.insert("label", vec![label.as_str()]);
    let opts = bollard::query_parameters::EventsOptionsBuilder::default().filters(&filters).build();
    let mut events = docker.events(Some(opts));
    while let Some(ev) = events.next().await {
        let ev = ev.context("reading Docker events")?;
        let action = ev.action.unwrap_or_default();
        let name = ev
            .actor
            .and_then(|a| a.attributes)
            .and_then(|a| a.get("name").cloned())
            .unwrap_or_default();
        if action == "die" || action == "oom" || action.starts_with("health_status: unhealthy") {
            return Ok(format!("container {name}: {action}"));
        }
    }
    bail!("the Docker event stream ended (Docker stopping?)")
}

/// Main entry: `down` for ExecStop, else up + ready + watch.
pub fn run(stack: &Stack, down_only: bool) -> Result<ExitCode> {
    let rt = crate::docker::runtime()?;
    rt.block_on(async {
        if down_only {
            // ExecStop: tell the main process first, so it does not take the containers
            // going away for a failure, then bring the stack down.
            if let Some(pid) = std::env::var("MAINPID").ok().and_then(|p| p.parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
            down(stack).await?;
            return Ok(ExitCode::SUCCESS);
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = up(stack) => r?,
            _ = term.recv() => return Ok(ExitCode::SUCCESS),
        }
        let n = stack.services.len();
        sd(&[NotifyState::Ready, NotifyState::Status(format!("ready ({n} services)"))]);
        tokio::select! {
            r = watch(&stack.project) => {
                let why = r?;
                status(&format!("failed: {why}"));
                eprintln!("hlsys: {}: {why}", stack.id);
                // Give the journal the reason before systemd restarts us.
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(ExitCode::from(1))
            }
            _ = term.recv() => {
                sd(&[NotifyState::Stopping]);
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}
