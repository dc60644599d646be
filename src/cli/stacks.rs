//! `hlsys stacks`: the resolved model of the tree, for people or (`--json`) for programs.

use std::process::ExitCode;

use serde_json::json;

use super::global::{config_failure, Global};
use super::output::print_table;
use hlsys_core::exit::{EXIT_FAILURE, EXIT_OK};

#[derive(Debug, clap::Args)]
pub struct StacksArgs {
    /// Print JSON: {"stacks": [...], "errors": [...]}
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: &StacksArgs) -> anyhow::Result<ExitCode> {
    let model = match global.load_model() {
        Ok(m) => m,
        Err(e) => return Ok(config_failure(&e)),
    };
    if args.json {
        let doc = json!({ "stacks": model.stacks, "errors": model.errors });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        let rows: Vec<Vec<String>> = model
            .stacks
            .iter()
            .map(|s| {
                let mut deps: Vec<String> = s.requires.clone();
                deps.extend(s.wants.iter().map(|w| format!("{w}?")));
                vec![
                    s.id.clone(),
                    s.layer.clone(),
                    if s.enabled { "yes" } else { "no" }.into(),
                    if s.gpu { "yes" } else { "-" }.into(),
                    s.services.join(","),
                    if deps.is_empty() { "-".into() } else { deps.join(",") },
                    s.networks.join(","),
                ]
            })
            .collect();
        print_table(
            &[
                "STACK",
                "LAYER",
                "ENABLED",
                "GPU",
                "SERVICES",
                "DEPENDS (?=wants)",
                "NETWORKS",
            ],
            &rows,
        );
        for e in &model.errors {
            eprintln!("hlsys: {}", super::output::stack_error(e));
        }
        println!("\n{} stacks, {} in error", model.stacks.len(), model.errors.len());
    }
    Ok(ExitCode::from(if model.errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILURE
    }))
}
