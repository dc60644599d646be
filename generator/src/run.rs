//! One generator run: the config found on the host, the tree read, the units rendered and
//! written, every skipped stack logged.

use std::path::{Path, PathBuf};

use hlsys_core::capped::thousands;
use hlsys_core::config::host::Host;
use hlsys_core::exit::{EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use hlsys_core::generator::write_all;
use hlsys_core::model::StackError;
use hlsys_core::units::render;

use crate::kmsg::KmsgLog;

/// The whole generator run. `args`: the 1 or 3 output directories systemd passes.
/// Returns the exit status: [`EXIT_OK`] whenever the config was usable (broken stacks
/// are skipped) and when there is no config file (then nothing is written),
/// [`EXIT_CONFIG`] when it is unusable, [`EXIT_FAILURE`] when writing failed.
pub fn main_with(args: &[String], host: &Host, log: &mut KmsgLog) -> u8 {
    if args.len() != 1 && args.len() != 3 {
        log.log(3, "usage: hlsys-generator NORMAL_DIR [EARLY_DIR LATE_DIR]");
        return EXIT_USAGE;
    }
    let out = PathBuf::from(&args[0]);
    // Opt-in: installing hlsys must not start whatever lies in /srv/compose at the next
    // boot. Only a config file the admin wrote turns the generator on. An error other
    // than "not found" (e.g. permissions) falls through to load, which reports it.
    let (path, _) = host.config_path();
    if let Ok(false) = path.try_exists() {
        log.log(6, &not_configured(&path));
        return EXIT_OK;
    }
    let config = match host.load_config() {
        Ok(c) => c,
        Err(e) => {
            log.log(3, &format!("config unusable, no units generated: {e}"));
            return EXIT_CONFIG;
        }
    };
    if !config.trust.strict {
        // The escape hatch is said at every run, so it cannot be forgotten.
        log.log(
            4,
            &hlsys_core::trust::hatch_line(config.source.as_deref().unwrap_or(&path)),
        );
    }
    let model = match hlsys_core::tree::build(config) {
        Ok(m) => m,
        Err(e) => {
            log.log(3, &format!("config unusable, no units generated: {e}"));
            return EXIT_CONFIG;
        }
    };
    let g = render(&model);
    log_skipped(log, model.errors.iter().chain(&g.skipped));
    match write_all(&out, &model, &g) {
        Ok(_) => {
            log.log(
                6,
                &format!(
                    "generated {} units for {} stacks ({} skipped) into {}",
                    g.units.len(),
                    model.stacks.len(),
                    model.errors.len() + g.skipped.len(),
                    out.display()
                ),
            );
            EXIT_OK
        }
        Err(e) => {
            log.log(3, &format!("writing units failed, none left behind: {e:#}"));
            EXIT_FAILURE
        }
    }
}

/// Skipped stacks logged one record each, up to this many; one more record counts the
/// rest (hlsys.toml(5), LIMITS). `hlsys stacks` lists them all.
pub const MAX_SKIPPED_LOGGED: usize = 100;

/// One record per skipped stack (or problem), the first [`MAX_SKIPPED_LOGGED`] of them,
/// then one that counts the rest.
fn log_skipped<'a>(log: &mut KmsgLog, errors: impl Iterator<Item = &'a StackError>) {
    let mut rest = 0usize;
    for (i, e) in errors.enumerate() {
        if i < MAX_SKIPPED_LOGGED {
            log.log(4, &format!("skipping {}: {}: {}", e.stack, e.file.display(), e.message));
        } else {
            rest += 1;
        }
    }
    if rest > 0 {
        log.log(
            4,
            &format!("… and {} more skipped (hlsys stacks lists them all)", thousands(rest)),
        );
    }
}

/// The one line logged when there is no config file: what to do to turn hlsys on.
fn not_configured(path: &Path) -> String {
    format!(
        "no config file {}: hlsys is not set up, no units generated (write it, then systemctl daemon-reload)",
        path.display()
    )
}
