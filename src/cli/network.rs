//! `hlsys network ensure|status`: the configured Docker networks.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use super::check::print_status_table;
use super::global::{config_failure, Global};
use crate::network::{self, Drift, EnsureAction, EnsureOptions, EnsureResult, NetworkStatus};
use hlsys_core::config::Config;
use hlsys_core::exit::{EXIT_FAILURE, EXIT_OK};

#[derive(Debug, clap::Args)]
pub struct NetworkArgs {
    #[command(subcommand)]
    pub command: NetworkCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum NetworkCommand {
    /// Create the configured networks that are missing (idempotent, safe to run concurrently)
    Ensure(EnsureArgs),
    /// Show each configured network and each other hlsys-managed one: drift, containers
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct EnsureArgs {
    /// Show what would be done, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace drifted networks that hlsys manages and no container uses
    #[arg(long)]
    pub recreate: bool,
    /// Print JSON: {"ok": bool, "networks": [...], "problems": [...]}
    #[arg(long)]
    pub json: bool,
    /// Host root for /proc/net/route (for tests)
    #[arg(long, value_name = "DIR", default_value = "/", hide = true)]
    pub root: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON: [{name, configured, exists, id, managed, drift, containers, duplicates}]
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: &NetworkArgs) -> anyhow::Result<ExitCode> {
    let config = match global.load_config() {
        Ok(c) => c,
        Err(e) => return Ok(config_failure(&e)),
    };
    let ok = match &args.command {
        NetworkCommand::Ensure(a) => ensure(&config, a)?,
        NetworkCommand::Status(a) => status(&config, a)?,
    };
    Ok(ExitCode::from(if ok { EXIT_OK } else { EXIT_FAILURE }))
}

/// `hlsys network ensure`; whether it succeeded.
fn ensure(config: &Config, a: &EnsureArgs) -> anyhow::Result<bool> {
    let opts = EnsureOptions {
        dry_run: a.dry_run,
        recreate: a.recreate,
        root: a.root.clone(),
    };
    let report = crate::docker::runtime()?.block_on(async {
        let docker = crate::docker::connect().await?;
        network::ensure(&docker, config, &opts).await.context("network ensure")
    })?;
    if a.json {
        let doc = json!({ "ok": report.success(), "networks": report.networks, "problems": report.problems });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(report.success());
    }
    for p in &report.problems {
        eprintln!("hlsys: refused: {p}");
    }
    if !report.problems.is_empty() {
        eprintln!("hlsys: no network was created or changed");
    }
    let rows: Vec<Vec<String>> = report.networks.iter().map(ensure_row).collect();
    if !rows.is_empty() {
        print_status_table(&["NETWORK", "RESULT", "ID", "DETAILS"], &rows, 1);
    }
    Ok(report.success())
}

fn ensure_row(n: &EnsureResult) -> Vec<String> {
    let mut details = drift_words(&n.drift);
    details.extend(n.notes.iter().cloned());
    vec![
        n.name.clone(),
        outcome_word(n.outcome).into(),
        short(n.id.as_deref()),
        dash_if_empty(details.join("; ")),
    ]
}

fn drift_words(drift: &[Drift]) -> Vec<String> {
    drift
        .iter()
        .map(|d| format!("{}: {} (wanted {})", d.field, d.found, d.wanted))
        .collect()
}

fn dash_if_empty(s: String) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

/// `hlsys network status`; whether every network is there, as configured, once.
fn status(config: &Config, a: &StatusArgs) -> anyhow::Result<bool> {
    let status = crate::docker::runtime()?.block_on(async {
        let docker = crate::docker::connect().await?;
        network::status(&docker, config).await
    })?;
    let good = status
        .iter()
        .all(|s| s.exists && s.drift.is_empty() && s.duplicates == 0);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        let rows: Vec<Vec<String>> = status.iter().map(status_row).collect();
        print_status_table(&["NETWORK", "STATE", "ID", "MANAGED", "CONTAINERS", "DRIFT"], &rows, 1);
    }
    Ok(good)
}

fn status_row(s: &NetworkStatus) -> Vec<String> {
    let state = if !s.exists {
        "missing"
    } else if !s.configured {
        "orphan"
    } else if !s.drift.is_empty() {
        "drift"
    } else if s.duplicates > 0 {
        "duplicate"
    } else {
        "ok"
    };
    vec![
        s.name.clone(),
        state.into(),
        short(s.id.as_deref()),
        if s.managed { "yes" } else { "-" }.into(),
        dash_if_empty(s.containers.join(",")),
        dash_if_empty(drift_words(&s.drift).join("; ")),
    ]
}

fn outcome_word(o: EnsureAction) -> &'static str {
    match o {
        EnsureAction::Created => "created",
        EnsureAction::Exists => "exists",
        EnsureAction::Recreated => "recreated",
        EnsureAction::WouldCreate => "would-create",
        EnsureAction::WouldRecreate => "would-recreate",
        EnsureAction::DriftKept => "drift-kept",
    }
}

fn short(id: Option<&str>) -> String {
    id.map_or("-".into(), |i| i.chars().take(12).collect())
}
