//! `hlsys supervise`: main process (and ExecStop/ExecStopPost) of each generated stack unit.

use std::process::ExitCode;

use libsystemd::daemon::{notify, NotifyState};

use super::{config_failure, Global, EXIT_FAILURE};
use crate::supervise::Mode;

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
    let model = match global.load_model() {
        Ok(m) => m,
        Err(e) => return Ok(config_failure(&e)),
    };
    let Some(stack) = model.stack(&args.stack) else {
        let why = model
            .errors
            .iter()
            .find(|e| e.stack == args.stack)
            .map(|e| format!("{}: {}", e.file.display(), e.message))
            .unwrap_or_else(|| "no such stack in the tree".into());
        return Ok(fail(&format!("stack {} cannot be started: {why}", args.stack)));
    };
    if args.prepare {
        return match crate::prepare::run(stack, model.config.max_parallel_pulls) {
            Ok(code) => Ok(code),
            Err(e) => Ok(fail(&format!("{}: {e:#}", stack.id))),
        };
    }
    let mode = if args.down {
        Mode::Down
    } else if args.cleanup {
        Mode::Cleanup
    } else {
        Mode::Run
    };
    match crate::supervise::run(stack, mode) {
        Ok(code) => Ok(code),
        Err(e) => Ok(fail(&format!("{}: {e:#}", stack.id))),
    }
}
