//! `hlsys supervise --prepare <stack>`: the main process of `<prefix>-<stack>-prepare.service`
//! (hlsys_core::prepare says why that unit exists and how it is ordered). It gets the
//! stack ready to start without starting anything:
//!
//! 1. which of the stack's images are missing: first simply `docker compose create
//!    --pull never` (step 3), which succeeds when none is, as usual; only if it fails,
//!    `docker compose config --images` and the Engine API say which. A stack whose
//!    images are all present never waits for a pull slot and never talks to a
//!    registry, so a registry that is down does not block it;
//! 2. only if some are missing: a pull slot (crate::pull_slots, `max_parallel_pulls`),
//!    then `docker compose pull --policy missing --ignore-buildable` — never an image
//!    that is present (no surprise update at boot) — with progress on STATUS=;
//! 3. `docker compose create --pull never`, outside the slot: Compose's config hash
//!    leaves containers whose config did not change alone (same container id).
//!
//! `pull` then `create` rather than `create --pull missing`: the slot is held for the
//! download only, not for container creation, and measured on this project's 2-core
//! host (a 43 MB layer from a local registry, three runs) the two steps took
//! 872–1076 ms against 1105–1423 ms for the single command, so splitting costs nothing.
//!
//! The stack's own start (crate::supervise) still runs `docker compose up --wait`, which
//! now finds its containers created and only starts them: the start order and the health
//! gate stay where they were, on the stack unit.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bollard::Docker;

use crate::model::Stack;
use crate::pull_progress::PullProgress;
use crate::pull_slots::{self, SLOTS_DIR};
use crate::supervise::{compose, extend_timeout, output_lines, status as sd_status};

/// How far a sign of life (a pull moving, a slot still taken by a moving pull) pushes
/// the start timeout out; only a pull that hangs this long fails the preparation.
const EXTEND_BY: Duration = Duration::from_secs(60);
/// STATUS= at most this often while pulling: progress lines come many per second.
const STATUS_EVERY: Duration = Duration::from_millis(500);

/// Runs the preparation; `max_parallel_pulls` 0 turns it off (each stack then pulls and
/// creates at its own turn, in `compose up`).
pub fn run(stack: &Stack, max_parallel_pulls: u32) -> Result<ExitCode> {
    if max_parallel_pulls == 0 {
        sd_status("not prepared: max_parallel_pulls = 0 (pulls and creation happen at the stack's start)");
        return Ok(ExitCode::SUCCESS);
    }
    let rt = crate::docker::runtime()?;
    rt.block_on(async {
        // Usually every image is there, and then one `create` (which never pulls) is the
        // whole preparation: no image list, no registry. Only when it fails are the
        // missing images looked for (a failure for another reason fails again below).
        if let Ok(n) = create(stack).await {
            sd_status(&format!("prepared: no image missing, {n} containers created"));
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("looking for missing images");
        let docker = crate::docker::connect().await?;
        let missing = missing_images(stack, &docker).await?;
        if !missing.is_empty() {
            pull(stack, missing.len(), max_parallel_pulls).await?;
        }
        let n = create(stack).await?;
        let pulled = if missing.is_empty() {
            "no image missing".to_string()
        } else {
            format!("{} images pulled", missing.len())
        };
        sd_status(&format!("prepared: {pulled}, {n} containers created"));
        Ok(ExitCode::SUCCESS)
    })
}

/// The stack's images (as Compose resolves them, with its env files) that Docker does
/// not have. Only their number leaves this function: references may come from env files.
async fn missing_images(stack: &Stack, docker: &Docker) -> Result<Vec<String>> {
    sd_status("checking images");
    let out = compose(stack, &["config", "--images"])
        .stdin(Stdio::null())
        .output()
        .await
        .context("cannot run `docker compose config --images`")?;
    if !out.status.success() {
        // Compose's own message: the journal gets it, STATUS= only that it failed.
        eprintln!("{}", String::from_utf8_lossy(&out.stderr).trim());
        bail!("docker compose config failed ({})", out.status);
    }
    let mut missing = Vec::new();
    for image in String::from_utf8_lossy(&out.stdout).lines().map(str::trim) {
        if image.is_empty() || missing.iter().any(|m| m == image) {
            continue;
        }
        match docker.inspect_image(image).await {
            Ok(_) => {}
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                missing.push(image.to_string())
            }
            Err(e) => return Err(e).context("asking Docker for the stack's images"),
        }
    }
    Ok(missing)
}

/// Takes a pull slot (waiting as long as other stacks hold them all), then pulls what
/// is missing, with progress on STATUS= and in the journal.
async fn pull(stack: &Stack, missing: usize, max_parallel_pulls: u32) -> Result<()> {
    let mut last_wait_status = Instant::now() - STATUS_EVERY;
    let waited = Instant::now();
    let _slot = pull_slots::acquire(SLOTS_DIR.as_ref(), max_parallel_pulls, || {
        // The holders are pulls that are themselves bounded by their timeouts.
        if last_wait_status.elapsed() >= STATUS_EVERY {
            last_wait_status = Instant::now();
            sd_status(&format!(
                "waiting for a pull slot ({missing} images missing; max_parallel_pulls = {max_parallel_pulls}, {} s)",
                waited.elapsed().as_secs()
            ));
            extend_timeout(Instant::now() + EXTEND_BY);
        }
    })
    .await?;
    sd_status(&format!("pulling 0/{missing} images"));
    let mut child = compose(stack, &["pull", "--policy", "missing", "--ignore-buildable"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run `docker compose pull`")?;
    let mut lines = output_lines(&mut child);
    let mut progress = PullProgress::new(&stack.services);
    let mut last_status = Instant::now();
    while let Some(line) = lines.recv().await {
        eprintln!("{}", line.trim());
        if progress.feed(&line) && last_status.elapsed() >= STATUS_EVERY {
            last_status = Instant::now();
            sd_status(&progress.text());
        }
        extend_timeout(Instant::now() + EXTEND_BY);
    }
    let st = child.wait().await.context("waiting for docker compose pull")?;
    if let Some(failed) = progress.failure_text() {
        bail!("cannot pull the images of {failed}");
    }
    if !st.success() {
        bail!("docker compose pull failed ({st}); see the journal");
    }
    Ok(())
}

/// `compose create`: new containers for what has none or whose config changed, nothing
/// else. Returns how many containers the project has then.
async fn create(stack: &Stack) -> Result<usize> {
    sd_status("creating containers");
    let mut child = compose(stack, &["create", "--pull", "never"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run `docker compose create`")?;
    let mut lines = output_lines(&mut child);
    let mut last = String::new();
    while let Some(line) = lines.recv().await {
        let line = line.trim().to_string();
        eprintln!("{line}");
        last = line;
    }
    let st = child.wait().await.context("waiting for docker compose create")?;
    if !st.success() {
        eprintln!("docker compose create: {last}");
        bail!("docker compose create failed ({st}); see the journal");
    }
    let docker = crate::docker::connect().await?;
    Ok(crate::docker::compose_containers(&docker, Some(&stack.project))
        .await?
        .len())
}
