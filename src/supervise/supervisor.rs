//! The main process of a stack unit, and its ExecStop/ExecStopPost.
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

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bollard::Docker;
use futures_util::StreamExt;
use libsystemd::daemon::NotifyState;

use super::notify;
use super::takeover;
use super::watch::{
    containers, health_of, health_pending, project_events, ready_now, report_health, unix_now, verify_running, watch,
};
use crate::compose_cli;
use hlsys_core::model::Stack;
use hlsys_core::units::DEFAULT_TIMEOUT_START_SEC;

/// How often progress is looked at during start-up (at most; twice per TimeoutStartSec
/// when that is shorter), and how far Compose's progress pushes the start timeout out
/// (at most TimeoutStartSec).
const PROGRESS_TICK: Duration = Duration::from_secs(5);
const EXTEND_BY: Duration = Duration::from_secs(30);

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
    notify::status("starting: docker compose up");
    let (mut child, mut rx) = compose_cli::spawn_lines(
        compose_cli::for_stack(
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
    let hide = hlsys_core::redact::env_values(&stack.env_files);
    loop {
        tokio::select! {
            line = rx.recv(), if open => match line {
                Some(line) => {
                    // Compose names containers and images, which may be interpolated
                    // from env files: masked before the journal and STATUS= see them.
                    let line = hlsys_core::redact::mask(line.trim(), &hide);
                    if line.is_empty() { continue; }
                    notify::forward_progress(&line);
                    moved = true;
                    last_progress = Instant::now();
                    last = line;
                }
                None => open = false,
            },
            ev = events.next(), if events_open && !ready => match ev {
                Some(Ok(ev)) => {
                    if let Some(cs) = on_up_event(stack, docker, ev).await {
                        ready = true;
                        on_ready(&cs);
                    }
                }
                // Without events, readiness waits for `up --wait` as before.
                _ => events_open = false,
            },
            _ = tick.tick() => {
                let pending = containers(docker, &stack.project).await.map(|c| health_pending(&c)).unwrap_or_default();
                if !pending.is_empty() {
                    let waited = last_progress.elapsed().as_secs();
                    notify::send(&[NotifyState::Status(format!("waiting for {} health ({waited} s)", pending.join(", ")))]);
                }
                if let Some(until) = start_deadline(last_progress, moved, !pending.is_empty(), start_timeout) {
                    notify::extend_timeout(until);
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

/// A Docker event while `compose up` runs: a container created is taken over before
/// Compose starts it, so no moment passes in which dockerd would restart it on its own
/// (takeover.rs; one missed here, gone or Docker hiccuped, is caught by the pass after
/// ready); a start or a health change may make the stack ready: its containers then.
async fn on_up_event(
    stack: &Stack,
    docker: &Docker,
    ev: bollard::models::EventMessage,
) -> Option<Vec<bollard::models::ContainerSummary>> {
    let action = ev.action.unwrap_or_default();
    if action == "create" {
        if let Some(id) = ev.actor.and_then(|a| a.id) {
            let _ = takeover::clear_policy(docker, &id).await;
        }
        return None;
    }
    if action != "start" && !action.starts_with("health_status") {
        return None;
    }
    let cs = containers(docker, &stack.project).await.ok()?;
    ready_now(&stack.services, &cs).then_some(cs)
}

/// The start: `compose up`. With pull slots (`max_parallel_pulls` > 0) it runs with
/// `--pull never`: an image that is present is never pulled at boot (no surprise update;
/// newer tags are pulled by hand), and the containers the preparation unit created are only
/// started. An image that is missing after all (a stack with no preparation unit, see
/// hlsys_core::units::prepare::has_unit, or an image removed since) is pulled under a slot, as a
/// preparation would, then `up` runs again; a failure with every image present is
/// reported as is. Compose fails such an `up` while creating, before it starts anything.
async fn start(
    stack: &Stack,
    docker: &Docker,
    pulls: super::prepare::Pulls,
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
    if !super::prepare::pull_missing(stack, docker, pulls).await? {
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
    run_down(compose_cli::for_stack(stack, &["down"]), "docker compose down").await
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
    let mut cmd = compose_cli::cleaned();
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

pub fn run(stack: &Stack, mode: Mode, pulls: super::prepare::Pulls) -> Result<ExitCode> {
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
        takeover::take_over(&docker, stack).await?;
        // Set when READY=1 went out early; `watch` replays Docker's events from then.
        let mut early_since: Option<String> = None;
        let on_ready = |cs: &[bollard::models::ContainerSummary]| {
            early_since = Some(unix_now());
            notify::send(&[NotifyState::Ready, NotifyState::Status(health_of(cs).to_string())]);
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
        notify::send(&[NotifyState::Ready]);
        takeover::clear_policies(&docker, &stack.project).await?;
        report_health(&docker, &stack.project, Vec::new()).await;
        if early_since.is_none() {
            eprintln!("ready ({n} containers)");
        }
        tokio::select! {
            biased; // SIGTERM first, as above
            _ = term.recv() => {
                notify::send(&[NotifyState::Stopping]);
                Ok(ExitCode::SUCCESS)
            }
            r = watch(&docker, stack, &since) => {
                // `why` names a container (its name may come from an env file).
                let why = hlsys_core::redact::mask(&r?, &hlsys_core::redact::env_values(&stack.env_files));
                notify::status(&format!("failed: {why}"));
                Ok(ExitCode::from(1))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
