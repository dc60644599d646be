//! `hlsys supervise`: main process (and ExecStop) of each generated stack unit.

use std::process::ExitCode;

use super::{config_failure, Global, EXIT_FAILURE};

#[derive(Debug, clap::Args)]
pub struct SuperviseArgs {
    /// Bring the stack down instead (`docker compose down`, volumes kept); used as ExecStop
    #[arg(long)]
    pub down: bool,
    /// Stack id
    pub stack: String,
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
        let msg = format!("stack {} cannot be started: {why}", args.stack);
        let _ = libsystemd::daemon::notify(false, &[libsystemd::daemon::NotifyState::Status(msg.clone())]);
        eprintln!("hlsys: {msg}");
        return Ok(ExitCode::from(EXIT_FAILURE));
    };
    crate::supervise::run(stack, args.down)
}
