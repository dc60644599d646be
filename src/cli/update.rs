//! `hlsys update --check [NAME…]`: which images of the stacks have a newer version in
//! their registry, from the Engine API's distribution inspect (nothing is pulled).
//! Exit 0 every image current, 1 updates exist, 2 the check could not be made (a registry
//! that did not answer, named per image, or unusable config or NAME).

use std::process::ExitCode;

use serde_json::json;

use super::global::{model_and_targets, Global};
use super::output::{color_enabled, paint, print_table, term};
use crate::update::check::{check_all, ImageCheck, State};
use hlsys_core::exit::{EXIT_CONFIG, EXIT_FAILURE, EXIT_OK};
use hlsys_core::model::Stack;

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// Stacks (id, tree path or last path component) or layers [default: every stack]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Only look: compare each image's local digest with its registry's, pull nothing
    #[arg(long, required = true)]
    pub check: bool,
    /// Print JSON: {"images": [{"stack","image","services","state","local_id",
    /// "local_digest","remote_digest","local_created","error"}], "updates": N, "errors": N}
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: &UpdateArgs) -> anyhow::Result<ExitCode> {
    let (model, targets) = match model_and_targets(global, &args.names) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let stacks: Vec<&Stack> = if targets.is_empty() {
        model.stacks.iter().collect()
    } else {
        let mut v: Vec<&Stack> = targets.iter().flat_map(|t| t.stacks(&model, true)).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v.dedup_by(|a, b| a.id == b.id);
        v
    };
    let rt = crate::docker::runtime()?;
    let checks = match rt.block_on(async {
        let docker = crate::docker::connect().await?;
        anyhow::Ok(check_all(&docker, &stacks).await)
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hlsys: {e:#}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let checks = masked(checks, &stacks);
    let updates = checks.iter().filter(|c| c.state.pending()).count();
    let errors = checks.iter().filter(|c| c.state == State::Error).count();
    if args.json {
        let doc = json!({ "images": checks, "updates": updates, "errors": errors });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_checks(&checks, updates, errors);
    }
    Ok(ExitCode::from(exit_code(updates, errors)))
}

/// The checks with every value of their stack's env files (4 characters or more) hidden
/// in the image reference and the registry's message, as `swarm plan` hides them: an
/// `image:` may be interpolated from an env file, and a registry echoes the reference.
fn masked(mut checks: Vec<ImageCheck>, stacks: &[&Stack]) -> Vec<ImageCheck> {
    for c in &mut checks {
        let Some(stack) = stacks.iter().find(|s| s.id == c.stack) else {
            continue;
        };
        let values = hlsys_core::redact::env_values(&stack.env_files);
        c.image = hlsys_core::redact::mask(&c.image, &values);
        c.error = c.error.as_deref().map(|e| hlsys_core::redact::mask(e, &values));
    }
    checks
}

/// 2 when some image could not be checked (the answer would be incomplete), else 1 when
/// something is pending, else 0.
fn exit_code(updates: usize, errors: usize) -> u8 {
    if errors > 0 {
        EXIT_CONFIG
    } else if updates > 0 {
        EXIT_FAILURE
    } else {
        EXIT_OK
    }
}

fn print_checks(checks: &[ImageCheck], updates: usize, errors: usize) {
    let on = color_enabled(&std::io::stdout());
    let short = |d: &Option<String>| {
        d.as_deref().map_or("-".to_string(), |d| {
            d.trim_start_matches("sha256:").chars().take(12).collect()
        })
    };
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            let colour = match c.state {
                State::Current | State::BuiltLocally | State::Pinned => 32,
                State::Update | State::Absent => 33,
                State::Error => 31,
            };
            vec![
                term(&c.stack).into_owned(),
                term(&c.image).into_owned(),
                term(&c.services.join(",")).into_owned(),
                paint(on, colour, c.state.word()),
                short(&c.local_digest),
                short(&c.remote_digest),
                c.local_created.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(
        &[
            "STACK",
            "IMAGE",
            "SERVICES",
            "STATE",
            "LOCAL",
            "REGISTRY",
            "LOCAL CREATED",
        ],
        &rows,
    );
    for c in checks {
        if let Some(e) = &c.error {
            eprintln!("hlsys: {}: {}: {}", term(&c.stack), term(&c.image), term(e));
        }
    }
    println!(
        "\n{} images, {updates} with updates, {errors} not checked",
        checks.len()
    );
}
