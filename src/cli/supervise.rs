//! `hlsys supervise`: main process (and ExecStop/ExecStopPost) of each generated stack unit.

use std::process::ExitCode;

use libsystemd::daemon::{notify, NotifyState};

use super::global::{config_failure, Global};
use crate::supervise::Mode;
use hlsys_core::exit::EXIT_FAILURE;

#[derive(Debug, clap::Args)]
pub struct SuperviseArgs {
    /// Bring the stack down instead (`docker compose down`, volumes kept); used as ExecStop
    #[arg(long, conflicts_with_all = ["cleanup", "prepare"])]
    pub down: bool,
    /// Bring the stack down only if containers are left over; used as ExecStopPost
    #[arg(long, conflicts_with = "prepare")]
    pub cleanup: bool,
    /// Pull the stack's missing images and create its containers, start nothing; used as
    /// ExecStart of the stack's preparation unit
    #[arg(long)]
    pub prepare: bool,
    /// Stack id
    pub stack: String,
}

/// Says why in `systemctl status` (STATUS=) as well as in the journal.
fn fail(msg: &str) -> ExitCode {
    let _ = notify(false, &[NotifyState::Status(format!("failed: {msg}"))]);
    eprintln!("hlsys: {msg}");
    ExitCode::from(EXIT_FAILURE)
}

pub fn run(global: &Global, args: &SuperviseArgs) -> anyhow::Result<ExitCode> {
    let mode = if args.down {
        Mode::Down
    } else if args.cleanup {
        Mode::Cleanup
    } else {
        Mode::Run
    };
    let model = match global.load_model() {
        Ok(m) => m,
        Err(e) if mode != Mode::Run => {
            return Ok(fallback(&args.stack, mode, &format!("config error: {e}")));
        }
        Err(e) => return Ok(config_failure(&e)),
    };
    let Some(stack) = model.stack(&args.stack) else {
        let why = model
            .errors
            .iter()
            .find(|e| e.stack == args.stack)
            .map(|e| format!("{}: {}", e.file.display(), e.message))
            .unwrap_or_else(|| "no such stack in the tree".into());
        if mode != Mode::Run {
            return Ok(fallback(&args.stack, mode, &why));
        }
        return Ok(fail(&format!("stack {} cannot be started: {why}", args.stack)));
    };
    let pulls = crate::supervise::prepare::Pulls::of(&model, stack);
    let result = if args.prepare {
        crate::supervise::prepare::run(stack, pulls)
    } else {
        crate::supervise::run(stack, mode, pulls)
    };
    // Errors may carry Docker's or Compose's words (container and image names, which may
    // be interpolated from env files): masked before STATUS= and the journal.
    result.or_else(|e| {
        let hide = hlsys_core::redact::env_values(&stack.env_files);
        Ok(fail(&hlsys_core::redact::mask(&format!("{}: {e:#}", stack.id), &hide)))
    })
}

/// Stopping must not need a healthy tree: when the stack's model cannot be built, its
/// containers are found by project name (the stack id) and brought down all the same.
fn fallback(id: &str, mode: Mode, why: &str) -> ExitCode {
    // The id comes from the unit's command line; only a valid project name goes to Compose.
    if let Err(e) = hlsys_core::tree::stack_id(id) {
        return fail(&format!("stack {id} cannot be stopped: {why}; and {e}"));
    }
    eprintln!("hlsys: stack {id}: cannot load it ({why}); falling back to `docker compose -p {id} down`");
    match crate::supervise::run_fallback(id, mode) {
        Ok(code) => code,
        Err(e) => fail(&format!("{id}: {e:#}")),
    }
}
