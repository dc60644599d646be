//! `hlsys supervise <stack>`: the main process of each stack unit (Type=notify).
//!
//! It runs the real `docker compose` v2 (never a re-implementation; crate::compose_cli says
//! how it is called): `up --detach --wait` (with `--pull never` when pulls are bounded, see
//! `start`) returns once every service with a healthcheck is healthy and the others run, and only
//! then does the unit report READY=1, so a layer target is reached when its stacks are
//! usable, not merely created. While Compose makes progress (pulling, creating) it
//! extends the start timeout (EXTEND_TIMEOUT_USEC), so a slow first pull survives
//! TimeoutStartSec but a hang does not; pending health gets TimeoutStartSec after
//! Compose's last progress and no more, so a healthcheck that never passes fails the
//! start then. Once ready it watches the project's containers through the Docker events
//! API and exits non-zero when one dies or turns unhealthy, so systemd's
//! `Restart=on-failure` brings the stack back.

use std::collections::HashMap;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bollard::Docker;
use futures_util::StreamExt;
use libsystemd::daemon::{notify, NotifyState};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::docker::{container_name, label_of, ONEOFF_LABEL, PROJECT_LABEL, SERVICE_LABEL};
use crate::health::{Health, Observed};
use crate::model::Stack;
use crate::units::DEFAULT_TIMEOUT_START_SEC;

/// Variables passed through to `docker compose`. Everything else is dropped: Compose
/// gives the process environment precedence over `--env-file`, so anything else in the
/// supervisor's environment (the unit's is fixed, see sandbox.rs, but `hlsys supervise`
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

/// How often progress is looked at during start-up (at most; twice per TimeoutStartSec
/// when that is shorter), and how far Compose's progress pushes the start timeout out
/// (at most TimeoutStartSec).
const PROGRESS_TICK: Duration = Duration::from_secs(5);
const EXTEND_BY: Duration = Duration::from_secs(30);

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

pub(crate) fn compose(stack: &Stack, sub: &[&str]) -> tokio::process::Command {
    let mut c = compose_cli();
    c.args(compose_args(stack)).args(sub).current_dir(&stack.dir);
    c
}

/// `docker` with the cleaned environment every Compose run gets (see [`PASS_ENV`]).
pub(crate) fn docker_cli() -> tokio::process::Command {
    let mut c = tokio::process::Command::new("docker");
    clean_env(&mut c);
    c
}

/// Compose v2 (crate::compose_cli: the plugin binary, or `docker compose`) with the same
/// cleaned environment; the next arguments are Compose's own.
pub(crate) fn compose_cli() -> tokio::process::Command {
    let mut c = crate::compose_cli::command();
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

fn sd(states: &[NotifyState]) {
    // Outside systemd (NOTIFY_SOCKET unset) this is a no-op, which keeps `hlsys
    // supervise` usable by hand.
    let _ = notify(false, states);
}

pub(crate) fn status(text: &str) {
    eprintln!("{text}");
    sd(&[NotifyState::Status(text.to_string())]);
}

/// Until when the start may last, as far as the supervisor can tell at a progress tick
/// (`None`: no reason to extend). Progress is Compose printing something (pulling,
/// creating): it keeps the start alive for EXTEND_BY after the last line, never longer
/// than TimeoutStartSec. A healthcheck still deciding is not progress: it gets
/// TimeoutStartSec after the last progress (a long pull does not eat into it) and no
/// more, so a health that never arrives fails the start.
fn start_deadline(
    last_progress: Instant,
    moved: bool,
    health_pending: bool,
    start_timeout: Duration,
) -> Option<Instant> {
    let by_progress = moved.then(|| last_progress + EXTEND_BY.min(start_timeout));
    let by_health = health_pending.then(|| last_progress + start_timeout);
    by_progress.max(by_health)
}

/// Moves the start deadline to `until` if that is later (systemd never shortens it, and
/// never below TimeoutStartSec from the start).
pub(crate) fn extend_timeout(until: Instant) {
    let left = until.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        sd(&[NotifyState::Other(format!("EXTEND_TIMEOUT_USEC={}", left.as_micros()))]);
    }
}

/// The project's containers (not one-off `compose run` ones).
async fn containers(docker: &Docker, project: &str) -> Result<Vec<bollard::models::ContainerSummary>> {
    crate::docker::compose_containers(docker, Some(project)).await
}

/// The containers' health as the `ready` STATUS= line (see health.rs).
fn health_of(cs: &[bollard::models::ContainerSummary]) -> Health {
    let states: Vec<String> = cs
        .iter()
        .map(|c| c.state.map(|s| s.to_string()).unwrap_or_default())
        .collect();
    Health::of(
        "ready",
        cs.iter().zip(&states).map(|(c, state)| Observed {
            service: label_of(c, SERVICE_LABEL).unwrap_or("?"),
            state,
            status: c.status.as_deref().unwrap_or_default(),
        }),
    )
}

/// STATUS= with the containers' health as Docker sees it now (kept when Docker does not
/// answer: the next event tries again).
async fn report_health(docker: &Docker, project: &str) {
    if let Ok(cs) = containers(docker, project).await {
        sd(&[NotifyState::Status(health_of(&cs).to_string())]);
    }
}

/// Containers whose healthcheck has not decided yet (Docker's status text says
/// "health: starting"; it is the same on every API version).
fn health_pending(cs: &[bollard::models::ContainerSummary]) -> Vec<String> {
    cs.iter()
        .filter(|c| c.status.as_deref().is_some_and(|s| s.contains("health: starting")))
        .map(container_name)
        .collect()
}

/// Whether every service the stack runs by default has containers, all running and none
/// with a pending or failed healthcheck (the image's own healthcheck counts too: Docker's
/// status text shows it).
fn ready_now(services: &[String], cs: &[bollard::models::ContainerSummary]) -> bool {
    !services.is_empty()
        && services.iter().all(|svc| {
            let of: Vec<&bollard::models::ContainerSummary> = cs
                .iter()
                .filter(|c| label_of(c, SERVICE_LABEL) == Some(svc.as_str()))
                .collect();
            !of.is_empty()
                && of.iter().all(|c| {
                    let st = c.status.as_deref().unwrap_or_default();
                    c.state.map(|s| s.to_string()).as_deref() == Some("running")
                        && !st.contains("health: starting")
                        && !st.contains("unhealthy")
                })
        })
}

/// Docker's container events of the project from now on.
fn project_events(
    docker: &Docker,
    project: &str,
    since: &str,
) -> impl futures_util::Stream<Item = Result<bollard::models::EventMessage, bollard::errors::Error>> {
    let mut filters = HashMap::new();
    filters.insert("type", vec!["container".to_string()]);
    filters.insert("label", vec![format!("{PROJECT_LABEL}={project}")]);
    let opts = bollard::query_parameters::EventsOptionsBuilder::default()
        .since(since)
        .filters(&filters)
        .build();
    docker.events(Some(opts))
}

/// `cmd` started with stdin closed and its stdout and stderr piped (killed when dropped),
/// and the lines it prints on either, as they come; `what` names it in the error.
pub(crate) fn spawn_lines(
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

/// A line of Compose's progress: to the journal, and as STATUS= with its phase.
fn forward_progress(line: &str) {
    eprintln!("{line}");
    let lower = line.to_lowercase();
    let phase = if lower.contains("pull") {
        "pulling"
    } else if lower.contains("waiting") || lower.contains("healthy") {
        "waiting for health"
    } else {
        "creating"
    };
    sd(&[NotifyState::Status(format!("{phase}: {line}"))]);
}

/// `compose up --detach --wait --remove-orphans`, with its progress forwarded to the
/// journal and to `systemctl status`, and the start timeout extended while it moves.
///
/// READY=1 goes out as soon as Docker's own events show every service running and
/// healthy, which is up to half a second before `up --wait` (which polls) returns;
/// `on_ready` is called then, once, with the containers. Compose's exit status is still awaited: a failure
/// after that point fails the unit like a container dying would.
async fn up(
    stack: &Stack,
    docker: &Docker,
    extra: &[&str],
    on_ready: &mut impl FnMut(&[bollard::models::ContainerSummary]),
) -> Result<()> {
    let mut events = Box::pin(project_events(docker, &stack.project, &unix_now()));
    let mut events_open = true;
    let mut ready = false;
    // The unit's TimeoutStartSec (the generator wrote the same value).
    let start_timeout = Duration::from_secs(stack.timeout_start_sec.unwrap_or(DEFAULT_TIMEOUT_START_SEC));
    status("starting: docker compose up");
    let (mut child, mut rx) = spawn_lines(
        compose(
            stack,
            &[&["up", "--detach", "--wait", "--remove-orphans"], extra].concat(),
        ),
        "`docker compose` (is docker with the compose v2 plugin installed?)",
    )?;
    let mut tick = tokio::time::interval(PROGRESS_TICK.min(start_timeout / 2));
    let mut moved = false;
    let mut last_progress = Instant::now();
    let mut last = String::new();
    let mut open = true;
    let hide = crate::redact::env_values(&stack.env_files);
    loop {
        tokio::select! {
            line = rx.recv(), if open => match line {
                Some(line) => {
                    // Compose names containers and images, which may be interpolated
                    // from env files: masked before the journal and STATUS= see them.
                    let line = crate::redact::mask(line.trim(), &hide);
                    if line.is_empty() { continue; }
                    forward_progress(&line);
                    moved = true;
                    last_progress = Instant::now();
                    last = line;
                }
                None => open = false,
            },
            ev = events.next(), if events_open && !ready => match ev {
                Some(Ok(ev)) => {
                    let action = ev.action.unwrap_or_default();
                    if action == "start" || action.starts_with("health_status") {
                        if let Ok(cs) = containers(docker, &stack.project).await {
                            if ready_now(&stack.services, &cs) {
                                ready = true;
                                on_ready(&cs);
                            }
                        }
                    }
                }
                // Without events, readiness waits for `up --wait` as before.
                _ => events_open = false,
            },
            _ = tick.tick() => {
                let pending = containers(docker, &stack.project).await.map(|c| health_pending(&c)).unwrap_or_default();
                if !pending.is_empty() {
                    let waited = last_progress.elapsed().as_secs();
                    sd(&[NotifyState::Status(format!("waiting for {} health ({waited} s)", pending.join(", ")))]);
                }
                if let Some(until) = start_deadline(last_progress, moved, !pending.is_empty(), start_timeout) {
                    extend_timeout(until);
                }
                moved = false;
            },
            st = child.wait(), if !open => {
                let st = st.context("waiting for docker compose up")?;
                if !st.success() {
                    bail!("docker compose up failed ({st}): {last}");
                }
                return Ok(());
            }
        }
    }
}

/// The start: `compose up`. With pull slots (`max_parallel_pulls` > 0) it runs with
/// `--pull never`: an image that is present is never pulled at boot (no surprise update;
/// newer tags are pulled by hand), and the containers the preparation unit created are only
/// started. An image that is missing after all (a stack with no preparation unit, see
/// hlsys_core::prepare::has_unit, or an image removed since) is pulled under a slot, as a
/// preparation would, then `up` runs again; a failure with every image present is
/// reported as is. Compose fails such an `up` while creating, before it starts anything.
async fn start(
    stack: &Stack,
    docker: &Docker,
    pulls: crate::prepare::Pulls,
    mut on_ready: impl FnMut(&[bollard::models::ContainerSummary]),
) -> Result<()> {
    if pulls.max == 0 {
        // The serialized path: Compose pulls at the stack's turn, each service's pull_policy.
        return up(stack, docker, &[], &mut on_ready).await;
    }
    let never = ["--pull", "never"];
    let Err(first) = up(stack, docker, &never, &mut on_ready).await else {
        return Ok(());
    };
    if !crate::prepare::pull_missing(stack, docker, pulls).await? {
        return Err(first);
    }
    up(stack, docker, &never, &mut on_ready).await
}

/// ExecStop's first step: SIGTERM to the supervisor (MAINPID), then wait, bounded, until it
/// has exited. Only then does `compose down` stop containers, so the supervisor can never
/// see them die while it still watches, however late it gets the CPU. If it does not exit
/// in time, the stop goes on (systemd's TimeoutStopSec and final SIGKILL still apply).
async fn stop_main_process(pid: nix::unistd::Pid) {
    use nix::sys::signal::{kill, Signal};
    if kill(pid, Signal::SIGTERM).is_err() {
        return; // already gone
    }
    let deadline = Instant::now() + MAIN_EXIT_WAIT;
    // kill(pid, 0) fails with ESRCH once the process is gone (systemd, its parent, reaps it).
    while kill(pid, None).is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long ExecStop waits for the supervisor to exit after SIGTERM.
const MAIN_EXIT_WAIT: Duration = Duration::from_secs(10);

/// Brings the stack down (`down`, never `-v`: named volumes hold the data).
pub async fn down(stack: &Stack) -> Result<()> {
    run_down(compose(stack, &["down"]), "docker compose down").await
}

/// Runs a `compose … down` to its end; `what` names it in the error.
async fn run_down(mut cmd: tokio::process::Command, what: &str) -> Result<()> {
    let st = cmd
        .stdin(Stdio::null())
        .status()
        .await
        .with_context(|| format!("cannot run `{what}`"))?;
    if !st.success() {
        bail!("{what} failed ({st})");
    }
    Ok(())
}

/// `docker compose -p <project> down`, for a stack whose model cannot be built (its `.env`
/// or compose file broken after it started): Compose finds the containers by their
/// project label. It runs in `/`, where no compose file is, because in the stack's
/// directory Compose would load the very files that are broken.
pub async fn down_project(project: &str) -> Result<()> {
    let mut cmd = compose_cli();
    cmd.args(["--project-name", project, "down"]).current_dir("/");
    run_down(cmd, &format!("docker compose -p {project} down")).await
}

/// ExecStop/ExecStopPost of a stack hlsys cannot load any more: stop the main process
/// (ExecStop), then `down` by project name, so a stop never needs a healthy tree.
pub fn run_fallback(project: &str, mode: Mode) -> Result<ExitCode> {
    let rt = crate::docker::runtime()?;
    rt.block_on(async {
        if mode == Mode::Down {
            if let Some(pid) = std::env::var("MAINPID").ok().and_then(|p| p.parse::<i32>().ok()) {
                stop_main_process(nix::unistd::Pid::from_raw(pid)).await;
            }
        }
        down_project(project).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// After `up --wait`: every container runs (or completed with 0) and none is unhealthy.
async fn verify_running(docker: &Docker, stack: &Stack) -> Result<usize> {
    let cs = containers(docker, &stack.project).await?;
    for c in &cs {
        let state = c.state.map(|s| s.to_string()).unwrap_or_default();
        let st = c.status.clone().unwrap_or_default();
        let completed = state == "exited" && st.starts_with("Exited (0)");
        if !(state == "running" || completed) || st.contains("(unhealthy)") {
            bail!(
                "container {} is {state} ({st}) after docker compose up",
                container_name(c)
            );
        }
    }
    Ok(cs.len())
}

/// Waits until a container of the project dies or turns unhealthy after `since`
/// (events are replayed from then, so nothing between ready and subscribing is lost).
/// Every other event of a container (start, health, pause…) updates STATUS= with the
/// health; the healthchecks' own `exec_*` events change nothing and are skipped.
async fn watch(docker: &Docker, project: &str, since: &str) -> Result<String> {
    let mut events = Box::pin(project_events(docker, project, since));
    // A second look SETTLE after the last event: Docker publishes some events (pause,
    // unpause) before its container list shows the change.
    let settle = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(settle);
    let mut look_again = false;
    loop {
        tokio::select! {
            ev = events.next() => {
                let Some(ev) = ev else { break };
                let ev = ev.context("reading Docker events")?;
                match classify(ev) {
                    Seen::Fatal(why) => return Ok(why),
                    Seen::Nothing => continue,
                    Seen::Change => report_health(docker, project).await,
                }
                settle.as_mut().reset(tokio::time::Instant::now() + SETTLE);
                look_again = true;
            }
            _ = &mut settle, if look_again => {
                look_again = false;
                report_health(docker, project).await;
            }
        }
    }
    bail!("the Docker event stream ended (Docker stopped?)")
}

/// How long after an event the health is looked at once more (see [`watch`]).
const SETTLE: Duration = Duration::from_secs(1);

/// What a Docker event means to the watch.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// A container died or turned unhealthy: the watch ends, with this reason.
    Fatal(String),
    /// A change of some container (start, health, pause…): STATUS= is refreshed.
    Change,
    /// A one-off container (`compose run`) or a healthcheck's own `exec_*`: nothing.
    Nothing,
}

fn classify(ev: bollard::models::EventMessage) -> Seen {
    let action = ev.action.unwrap_or_default();
    let attrs = ev.actor.and_then(|a| a.attributes).unwrap_or_default();
    if attrs.get(ONEOFF_LABEL).map(String::as_str) == Some("True") || action.starts_with("exec_") {
        return Seen::Nothing;
    }
    let name = attrs.get("name").cloned().unwrap_or_default();
    if action == "die" || action == "oom" || action.starts_with("health_status: unhealthy") {
        let code = attrs
            .get("exitCode")
            .map(|c| format!(" (exit code {c})"))
            .unwrap_or_default();
        return Seen::Fatal(format!("container {name}: {action}{code}"));
    }
    Seen::Change
}

fn unix_now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// How the process was asked to act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Main process: up, ready, watch.
    Run,
    /// ExecStop: `compose down`.
    Down,
    /// ExecStopPost: `compose down` only if containers are left (a start that failed or
    /// was interrupted, when ExecStop does not run).
    Cleanup,
}

pub fn run(stack: &Stack, mode: Mode, pulls: crate::prepare::Pulls) -> Result<ExitCode> {
    let rt = crate::docker::runtime()?;
    rt.block_on(async {
        match mode {
            Mode::Down => {
                // Tell the main process first, and let it end, so it cannot take the
                // containers going away for a failure, then bring the stack down.
                if let Some(pid) = std::env::var("MAINPID").ok().and_then(|p| p.parse::<i32>().ok()) {
                    stop_main_process(nix::unistd::Pid::from_raw(pid)).await;
                }
                down(stack).await?;
                return Ok(ExitCode::SUCCESS);
            }
            Mode::Cleanup => {
                let docker = crate::docker::connect().await?;
                if !containers(&docker, &stack.project).await?.is_empty() {
                    down(stack).await?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            Mode::Run => {}
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let docker = crate::docker::connect().await?;
        // Set when READY=1 went out early; `watch` replays Docker's events from then.
        let mut early_since: Option<String> = None;
        let on_ready = |cs: &[bollard::models::ContainerSummary]| {
            early_since = Some(unix_now());
            sd(&[NotifyState::Ready, NotifyState::Status(health_of(cs).to_string())]);
            eprintln!("ready ({} containers)", cs.len());
        };
        // `biased`: SIGTERM is looked at first. Without it, a supervisor that got no CPU
        // between ExecStop's SIGTERM and `compose down` stopping the containers (a busy
        // host) would find both ready and could pick the containers' `die` at random —
        // exit 1, and a clean stop would leave the unit "failed".
        tokio::select! {
            biased;
            _ = term.recv() => return Ok(ExitCode::SUCCESS),
            r = start(stack, &docker, pulls, on_ready) => r?,
        }
        let since = early_since.clone().unwrap_or_else(unix_now);
        let n = verify_running(&docker, stack).await?;
        sd(&[NotifyState::Ready]);
        report_health(&docker, &stack.project).await;
        if early_since.is_none() {
            eprintln!("ready ({n} containers)");
        }
        tokio::select! {
            biased; // SIGTERM first, as above
            _ = term.recv() => {
                sd(&[NotifyState::Stopping]);
                Ok(ExitCode::SUCCESS)
            }
            r = watch(&docker, &stack.project, &since) => {
                // `why` names a container (its name may come from an env file).
                let why = crate::redact::mask(&r?, &crate::redact::env_values(&stack.env_files));
                status(&format!("failed: {why}"));
                Ok(ExitCode::from(1))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(
        service: &str,
        state: bollard::models::ContainerSummaryStateEnum,
        status: &str,
    ) -> bollard::models::ContainerSummary {
        bollard::models::ContainerSummary {
            labels: Some([(SERVICE_LABEL.to_string(), service.to_string())].into()),
            state: Some(state),
            status: Some(status.into()),
            ..Default::default()
        }
    }

    #[test]
    fn ready_only_when_every_service_runs_healthy() {
        use bollard::models::ContainerSummaryStateEnum::{CREATED, RUNNING};
        let svcs = vec!["db".to_string(), "web".to_string()];
        let db_ok = container("db", RUNNING, "Up 3 seconds (healthy)");
        let web_ok = container("web", RUNNING, "Up 1 second");
        assert!(ready_now(&svcs, &[db_ok.clone(), web_ok.clone()]));
        assert!(!ready_now(&svcs, &[db_ok.clone()]), "web has no container yet");
        assert!(!ready_now(
            &svcs,
            &[
                container("db", RUNNING, "Up 1 second (health: starting)"),
                web_ok.clone()
            ]
        ));
        assert!(!ready_now(
            &svcs,
            &[container("db", RUNNING, "Up 9 seconds (unhealthy)"), web_ok.clone()]
        ));
        assert!(!ready_now(
            &svcs,
            &[db_ok.clone(), container("web", CREATED, "Created")]
        ));
        // A second replica still starting holds readiness back.
        assert!(!ready_now(
            &svcs,
            &[
                db_ok,
                web_ok,
                container("web", RUNNING, "Up 1 second (health: starting)")
            ]
        ));
        assert!(!ready_now(&[], &[]), "no known services: leave it to compose --wait");
    }

    #[test]
    fn events_end_the_watch_refresh_health_or_do_nothing() {
        let ev = |action: &str, oneoff: bool| bollard::models::EventMessage {
            action: Some(action.into()),
            actor: Some(bollard::models::EventActor {
                attributes: Some(
                    [
                        ("name".to_string(), "db-1".to_string()),
                        ("exitCode".to_string(), "3".to_string()),
                        (
                            ONEOFF_LABEL.to_string(),
                            if oneoff { "True" } else { "False" }.to_string(),
                        ),
                    ]
                    .into(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            classify(ev("die", false)),
            Seen::Fatal("container db-1: die (exit code 3)".into())
        );
        assert!(matches!(
            classify(ev("health_status: unhealthy", false)),
            Seen::Fatal(_)
        ));
        for change in ["start", "pause", "unpause", "health_status: healthy"] {
            assert_eq!(classify(ev(change, false)), Seen::Change, "{change}");
        }
        assert_eq!(classify(ev("exec_start: test -f /tmp/ready", false)), Seen::Nothing);
        assert_eq!(classify(ev("die", true)), Seen::Nothing, "a compose run container");
    }

    #[test]
    fn start_deadline_follows_progress_and_bounds_health() {
        let t = Instant::now();
        let s = Duration::from_secs;
        // Nothing moved, nothing pending: no reason to extend.
        assert_eq!(start_deadline(t, false, false, s(300)), None);
        // Compose printing: EXTEND_BY after its last line, at most TimeoutStartSec.
        assert_eq!(start_deadline(t, true, false, s(300)), Some(t + EXTEND_BY));
        assert_eq!(start_deadline(t, true, false, s(6)), Some(t + s(6)));
        // Pending health: TimeoutStartSec after the last progress, however long it stays
        // pending (the tick keeps asking with the same last_progress).
        assert_eq!(start_deadline(t, false, true, s(6)), Some(t + s(6)));
        assert_eq!(start_deadline(t, true, true, s(300)), Some(t + s(300)));
    }
}
