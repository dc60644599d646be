//! `hlsys check`: the preflight, as a table or (`--json`) for programs.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::global::Global;
use super::output::{color_enabled, paint, term};
use crate::check::{self, CheckOptions, CheckResult, Status};
use hlsys_core::model::Model;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Print JSON: {"ok": bool, "checks": [{name, status, message, remedy}]}
    #[arg(long)]
    pub json: bool,
    /// Run only the GPU checks
    #[arg(long)]
    pub gpu: bool,
    /// Warnings fail too (exit 1)
    #[arg(long)]
    pub strict: bool,
    /// Host root for /proc, /dev and /etc/cdi (for tests)
    #[arg(long, value_name = "DIR", default_value = "/", hide = true)]
    pub root: PathBuf,
    /// Check only these stacks (default: every enabled stack)
    #[arg(value_name = "STACK")]
    pub stacks: Vec<String>,
}

pub fn run(global: &Global, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let model = global.load_model();
    let opts = CheckOptions {
        gpu_only: args.gpu,
        stacks: args.stacks.clone(),
        root: args.root.clone(),
        docker_host: None,
        units_current: if args.gpu {
            None
        } else {
            model.as_ref().ok().and_then(|m| units_current(m, &args.root))
        },
    };
    let results = crate::docker::runtime()?.block_on(check::run(model.as_ref(), &opts));
    let code = check::exit_code(&results, args.strict);
    if args.json {
        let doc = json!({ "ok": code == 0, "checks": results });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_results(&results);
    }
    Ok(ExitCode::from(code))
}

/// The "generated units current" check: whether the units in systemd's generator
/// directory (below `root`) match what the generator would write now.
pub fn units_current(model: &Model, root: &std::path::Path) -> Option<CheckResult> {
    use hlsys_core::generator::{freshness, Freshness, SYSTEM_GENERATOR_DIR};
    const NAME: &str = "units current";
    // Like sd_booted(): without systemd as PID 1 no generator runs, so there is
    // nothing to compare.
    if !root.join("run/systemd/system").is_dir() {
        return None;
    }
    Some(match freshness(model, &root.join(SYSTEM_GENERATOR_DIR)) {
        Freshness::Current { units } => CheckResult::ok(NAME, format!("{units} generated units match the tree")),
        Freshness::NotGenerated => CheckResult::warn(
            NAME,
            "no units generated yet (no hlsys-generator.json in /run/systemd/generator)",
            "install hlsys-generator in /usr/lib/systemd/system-generators/ and run systemctl daemon-reload",
        ),
        Freshness::Stale { changed } => CheckResult::warn(
            NAME,
            format!(
                "the tree changed since the units were generated: {}",
                changed.join(", ")
            ),
            "run systemctl daemon-reload",
        ),
    })
}

fn print_results(results: &[CheckResult]) {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| vec![r.name.clone(), r.status.as_str().into(), r.message.clone()])
        .collect();
    print_status_table(&["CHECK", "STATUS", "MESSAGE"], &rows, 1);
    let bad: Vec<&CheckResult> = results.iter().filter(|r| r.status != Status::Ok).collect();
    if !bad.is_empty() {
        println!();
        for r in bad {
            if let Some(remedy) = r.remedy.as_deref().filter(|s| !s.is_empty()) {
                println!("{}: {}", r.name, term(remedy));
            }
        }
    }
}

/// Colour for a status word: green ok, yellow warn, red fail (and their synonyms).
pub(super) fn status_color(word: &str) -> Option<u8> {
    match word {
        "ok" | "created" | "exists" | "recreated" | "yes" => Some(32),
        "warn" | "would-create" | "would-recreate" | "missing" | "orphan" => Some(33),
        "fail" | "drift" | "drift-kept" | "duplicate" | "no" => Some(31),
        _ => None,
    }
}

/// Like [`super::output::print_table`], with column `status_col` coloured by [`status_color`]:
/// widths come from the plain text so escape codes do not break the alignment.
pub(super) fn print_status_table(header: &[&str], rows: &[Vec<String>], status_col: usize) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| term(c).into_owned()).collect())
        .collect();
    let rows = rows.as_slice();
    let color = color_enabled(&std::io::stdout());
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>, paint_status: bool| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = if i == last {
                0
            } else {
                widths[i] - c.chars().count() + 2
            };
            match status_color(c).filter(|_| paint_status && i == status_col) {
                Some(code) => s.push_str(&paint(color, code, c)),
                None => s.push_str(c),
            }
            s.push_str(&" ".repeat(pad));
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec(), false);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), true);
    }
}
