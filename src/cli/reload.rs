//! `hlsys reload`: daemon-reload over D-Bus (the generator runs again), optionally
//! followed by starting homelab.target and every enabled stack. `homelab-tree.service` runs `reload --start`
//! when a stack tree that was not mounted at boot appears.

use std::process::ExitCode;

use super::authz::map_denied;
use super::global::{config_failure, Global};

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
    let prefix = config.unit_prefix.clone();
    let rt = crate::docker::runtime()?;
    let r = rt.block_on(async {
        let conn = crate::systemd::system_bus().await?;
        crate::systemd::reload(&conn).await?;
        eprintln!("systemd reloaded: units regenerated");
        if args.start {
            // Starting an already active target does not pull in Wants= added by the
            // reload (systemd drops the redundant job with what it would pull in), so
            // the enabled stacks are started one by one as well; their After= keeps
            // the layer order across the separately enqueued jobs.
            let target = format!("{}.target", config.unit_prefix);
            let mut units = vec![target];
            match hlsys_core::tree::build(config) {
                Ok(model) => units.extend(model.stacks.iter().filter(|s| s.enabled).map(|s| s.unit.clone())),
                Err(e) => eprintln!("hlsys: config error, starting only the root target: {e}"),
            }
            for unit in &units {
                let job = crate::systemd::start_unit(&conn, unit).await?;
                eprintln!("start of {unit} enqueued ({job})");
            }
        }
        Ok(ExitCode::SUCCESS)
    });
    // daemon-reload is polkit's org.freedesktop.systemd1.reload-daemon; `--start` then
    // needs manage-units for each unit.
    map_denied("reload", &prefix, r)
}
