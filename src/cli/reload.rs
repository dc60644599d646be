//! `hlsys reload`: daemon-reload over D-Bus (the generator runs again), optionally
//! followed by starting homelab.target. `homelab-tree.service` runs `reload --start`
//! when a stack tree that was not mounted at boot appears.

use std::process::ExitCode;

use super::{config_failure, Global};

#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// Also start the root target (homelab.target) after reloading, without waiting
    #[arg(long)]
    pub start: bool,
}

pub fn run(global: &Global, args: &ReloadArgs) -> anyhow::Result<ExitCode> {
    let config = match global.load_config() {
        Ok(c) => c,
        Err(e) => return Ok(config_failure(&e)),
    };
    let rt = crate::docker::runtime()?;
    rt.block_on(async {
        let conn = crate::systemd::system_bus().await?;
        crate::systemd::reload(&conn).await?;
        eprintln!("systemd reloaded: units regenerated");
        if args.start {
            let target = format!("{}.target", config.unit_prefix);
            let job = crate::systemd::start_unit(&conn, &target).await?;
            eprintln!("start of {target} enqueued ({job})");
        }
        Ok(ExitCode::SUCCESS)
    })
}
