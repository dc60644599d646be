//! `hlsys supervise --prepare <stack>`: the main process of `<prefix>-<stack>-prepare.service`
//! (hlsys_core::units::prepare says why that unit exists and how it is ordered). It gets the
//! stack ready to start without starting anything:
//!
//! 1. `docker compose create --pull never`: when every image is present, as usual, that
//!    one call is the whole preparation — no image list, no pull slot, no registry, so
//!    a registry that is down does not block the stack. Compose's config hash leaves
//!    containers whose config did not change alone (same container id);
//! 2. only when that fails: which images are missing (`docker compose config --images`,
//!    then the Engine API); none means the failure was something else, reported as is;
//! 3. else a pull slot (super::pull_slots, `max_parallel_pulls`), then `docker compose
//!    create` with each service's own `pull_policy` (default `missing`: never an image
//!    that is present, so no surprise update at boot; `never` is respected), with the
//!    pull's progress on STATUS=.
//!
//! Why not `docker compose pull --policy missing` and then `create`, which would hold the
//! slot for the download alone: `--policy` overrides the services' `pull_policy`, and a
//! service with `pull_policy: never` was sent to Docker Hub (Compose 2.40.3). Timing
//! does not decide it: the two differ by less than the host's noise (README,
//! "Measurements").
//!
//! The stack's own start (super::supervisor) still runs `docker compose up --wait`, which
//! now finds its containers created and only starts them: the start order and the health
//! gate stay where they were, on the stack unit.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bollard::Docker;

use super::notify::{extend_timeout, status as sd_status};
use super::pull_progress::PullProgress;
use super::pull_slots::{self, SLOTS_DIR};
use crate::compose_cli::{for_stack as compose, spawn_lines};
use hlsys_core::model::Stack;

/// How far a sign of life (a pull moving, a slot still taken by a moving pull) pushes
/// the start timeout out; only a pull that hangs this long fails the preparation.
const EXTEND_BY: Duration = Duration::from_secs(60);
/// STATUS= at most this often while pulling: progress lines come many per second.
const STATUS_EVERY: Duration = Duration::from_millis(500);

/// How a stack's missing images are pulled: `max_parallel_pulls` (0: by Compose at the
/// stack's turn, no slots) and the stack's rank in the start order for the slots (its
/// layer's depth, see super::pull_slots).
#[derive(Debug, Clone, Copy)]
pub struct Pulls {
    pub max: u32,
    pub rank: u32,
}

impl Pulls {
    pub fn of(model: &hlsys_core::model::Model, stack: &Stack) -> Pulls {
        Pulls {
            max: model.config.max_parallel_pulls,
            rank: model.layer_depth(&stack.layer),
        }
    }
}

/// Runs the preparation; `max_parallel_pulls` 0 turns it off (each stack then pulls and
/// creates at its own turn, in `compose up`).
pub fn run(stack: &Stack, pulls: Pulls) -> Result<ExitCode> {
    if pulls.max == 0 {
        sd_status("not prepared: max_parallel_pulls = 0 (pulls and creation happen at the stack's start)");
        return Ok(ExitCode::SUCCESS);
    }
    let rt = crate::docker::runtime()?;
    rt.block_on(async {
        let docker = crate::docker::connect().await?;
        super::takeover::take_over(&docker, stack).await?;
        sd_status("creating containers");
        let first = create(stack, &["create", "--pull", "never"], None).await;
        if first.is_err() && !pull_missing(stack, &docker, pulls).await? {
            first?;
        }
        // Created with the declared policy: dockerd must not start them at its next start.
        super::takeover::clear_policies(&docker, &stack.project).await?;
        let n = crate::docker::compose_containers(&docker, Some(&stack.project))
            .await?
            .len();
        sd_status(&format!("prepared: {n} containers created"));
        Ok(ExitCode::SUCCESS)
    })
}

/// After a `--pull never` that failed: pulls the stack's missing images under a pull slot
/// and creates its containers (`docker compose create`, each service's own
/// `pull_policy`), with progress on STATUS=. False when no image is missing: the failure
/// had another cause, for the caller to report. Used by the preparation unit and by the
/// supervisor of a stack that has none (hlsys_core::units::prepare::has_unit).
pub async fn pull_missing(stack: &Stack, docker: &Docker, pulls: Pulls) -> Result<bool> {
    eprintln!("looking for missing images");
    let missing = missing_images(stack, docker).await?;
    if missing.is_empty() {
        return Ok(false);
    }
    let _slot = pull_slot(missing.len(), pulls).await?;
    sd_status(&format!("pulling 0/{} images", missing.len()));
    let mut progress = PullProgress::new(&stack.services);
    create(stack, &["create"], Some(&mut progress)).await?;
    Ok(true)
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
        let hide = hlsys_core::redact::env_values(&stack.env_files);
        eprintln!(
            "{}",
            hlsys_core::redact::mask(String::from_utf8_lossy(&out.stderr).trim(), &hide)
        );
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

/// Waits for a pull slot as long as other stacks hold them all: they are pulls, each
/// bounded by its own timeout.
async fn pull_slot(missing: usize, pulls: Pulls) -> Result<pull_slots::Slot> {
    let max_parallel_pulls = pulls.max;
    let mut last_status = Instant::now() - STATUS_EVERY;
    let waited = Instant::now();
    pull_slots::acquire(SLOTS_DIR.as_ref(), max_parallel_pulls, pulls.rank, || {
        if last_status.elapsed() >= STATUS_EVERY {
            last_status = Instant::now();
            sd_status(&format!(
                "waiting for a pull slot ({missing} images missing; max_parallel_pulls = {max_parallel_pulls}, {} s)",
                waited.elapsed().as_secs()
            ));
            extend_timeout(Instant::now() + EXTEND_BY);
        }
    })
    .await
}

/// `docker compose <sub>` with its lines in the journal; with `pull`, its pull progress
/// on STATUS= too (and the start timeout extended while it moves). The error says which
/// services could not be pulled and why, never Compose's message (it names images).
async fn create(stack: &Stack, sub: &[&str], mut pull: Option<&mut PullProgress>) -> Result<()> {
    let (mut child, mut lines) = spawn_lines(compose(stack, sub), "`docker compose create`")?;
    let mut last_status = Instant::now();
    let mut no_such_image = false;
    // Compose names images, which may be interpolated from env files: masked.
    let hide = hlsys_core::redact::env_values(&stack.env_files);
    while let Some(line) = lines.recv().await {
        eprintln!("{}", hlsys_core::redact::mask(line.trim(), &hide));
        no_such_image |= line.contains("No such image");
        if let Some(p) = pull.as_deref_mut() {
            if p.feed(&line) && last_status.elapsed() >= STATUS_EVERY {
                last_status = Instant::now();
                sd_status(&p.text());
            }
            extend_timeout(Instant::now() + EXTEND_BY);
        }
    }
    let st = child.wait().await.context("waiting for docker compose create")?;
    if let Some(failed) = pull.and_then(|p| p.failure_text()) {
        bail!("cannot pull the images of {failed}");
    }
    if !st.success() && no_such_image {
        bail!("an image is missing and may not be pulled (see the services' pull_policy and the journal)");
    }
    if !st.success() {
        bail!("docker compose create failed ({st}); see the journal");
    }
    Ok(())
}
