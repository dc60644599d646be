//! `hlsys notify --failed UNIT | --ready | --test`: the messages of `[notify]`
//! (src/notify/). `--failed` is what `<prefix>-notify@.service` runs for the unit that
//! failed; failures until none came for 5 s (at most 60 s) go out as one message.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::global::{config_failure, Global};
use crate::notify::{self, http, window, Failure, Message};
use crate::systemd;
use hlsys_core::exit::{EXIT_CONFIG, EXIT_FAILURE, EXIT_OK};
use hlsys_core::model::Model;

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct NotifyArgs {
    /// Report UNIT as failed (with the others failing within a few seconds)
    #[arg(long, value_name = "UNIT")]
    pub failed: Option<String>,
    /// Send "homelab ready: N/M stacks healthy in S s"
    #[arg(long)]
    pub ready: bool,
    /// Send a test message to every target
    #[arg(long)]
    pub test: bool,
}

/// Where the window's lock and pending list live (`RuntimeDirectory=hlsys/notify`).
const STATE_DIR: &str = "/run/hlsys/notify";

async fn failures(model: &Model, units: &[String]) -> Result<Vec<Failure>> {
    let conn = systemd::system_bus().await?;
    let mut out = Vec::new();
    // systemd 252 also starts OnFailure= of a unit whose start job failed because of a
    // dependency (JOB_DEPENDENCY: a stack that requires a failing one, at its first
    // failure), and that unit is not failed: not an incident of its own, it is listed as
    // held back by the one that is.
    let states = systemd::list_units_by_names(&conn, units).await?;
    for (unit, st) in units.iter().zip(&states) {
        if st.active_state != "failed" {
            tracing::info!("{unit} is {}, not failed: not reported on its own", st.active_state);
            continue;
        }
        let path = st.path.clone();
        let (status, restarts) = match systemd::service(&conn, &path).await {
            Ok(s) => (
                s.status_text().await.unwrap_or_default(),
                s.n_restarts().await.unwrap_or(0),
            ),
            Err(_) => (String::new(), 0),
        };
        let stack = notify::unit_subject(model, unit);
        out.push(Failure {
            unit: unit.clone(),
            stack,
            layer: None,
            status,
            restarts,
            held_back: Vec::new(),
        });
    }
    notify::complete(model, &mut out);
    // Hold-backs for the networks/GPU units are every (GPU) stack.
    for f in out.iter_mut().filter(|f| f.layer.is_none()) {
        if let Some(s) = &f.stack {
            f.held_back = notify::held_back(model, &BTreeSet::from([s.clone()]));
        }
    }
    Ok(out)
}

async fn ready(model: &Model) -> Result<Message> {
    let conn = systemd::system_bus().await?;
    let names: Vec<String> = model
        .stacks
        .iter()
        .filter(|s| s.enabled)
        .map(|s| s.unit.clone())
        .collect();
    let states = systemd::list_units_by_names(&conn, &names).await?;
    let mut healthy = 0;
    for st in states.iter().filter(|s| s.is_active()) {
        let text = match systemd::service(&conn, &st.path).await {
            Ok(s) => s.status_text().await.unwrap_or_default(),
            Err(_) => continue,
        };
        if crate::health::Health::parse(&text).is_some_and(|h| h.healthy == h.total) {
            healthy += 1;
        }
    }
    let root = systemd::unit(&conn, &systemd::unit_path(&model.root_target())).await?;
    let (a, b) = (
        root.active_enter_timestamp().await?,
        root.inactive_exit_timestamp().await?,
    );
    let secs = if a >= b { (a - b) as f64 / 1e6 } else { 0.0 };
    Ok(notify::ready_message(
        &model.config.unit_prefix,
        healthy,
        names.len(),
        secs,
    ))
}

/// Sends to every target; the number that failed.
fn send_all(model: &Model, msg: &Message) -> usize {
    let mut bad = 0;
    for t in &model.config.notify.target {
        match http::send(t, msg) {
            Ok(()) => tracing::info!("sent {:?} to {}", msg.title, t.url),
            Err(e) => {
                bad += 1;
                eprintln!("hlsys notify: {}: {e:#}", t.url);
            }
        }
    }
    bad
}

pub fn run(global: &Global, args: &NotifyArgs) -> Result<ExitCode> {
    let model = match global.load_model() {
        Ok(m) => m,
        Err(e) => return Ok(config_failure(&e)),
    };
    if !model.config.notify.enabled() {
        eprintln!("hlsys notify: no [[notify.target]] in the config");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let prefix = model.config.unit_prefix.clone();
    let rt = crate::docker::runtime()?;
    let msg = if args.test {
        notify::test_message(&prefix)
    } else if args.ready {
        rt.block_on(ready(&model))?
    } else if let Some(unit) = &args.failed {
        if unit.contains(['\n', '/']) {
            bail!("not a unit name: {unit:?}");
        }
        let units = window::collect(Path::new(STATE_DIR), unit, window::WINDOW)?;
        if units.is_empty() {
            tracing::info!("{unit}: reported with another failure");
            return Ok(ExitCode::from(EXIT_OK));
        }
        let f = rt.block_on(failures(&model, &units))?;
        if f.is_empty() {
            return Ok(ExitCode::from(EXIT_OK));
        }
        notify::failed_message(&prefix, &f)
    } else {
        unreachable!("clap requires one of the options")
    };
    let bad = send_all(&model, &msg);
    Ok(ExitCode::from(if bad == 0 { EXIT_OK } else { EXIT_FAILURE }))
}
