//! `hlsys swarm plan|deploy|status|rm`: the stack tree on a Docker Swarm (src/swarm/).

use std::collections::BTreeSet;
use std::process::ExitCode;

use serde_json::json;

use super::global::{model_and_targets, Global};
use super::output::{color_enabled, paint, print_table};
use crate::docker;
use crate::resolve::Target;
use crate::swarm::deploy::{self as swarm, StackOutcome};
use hlsys_core::exit::{EXIT_CONFIG, EXIT_FAILURE, EXIT_OK};
use hlsys_core::model::Model;

const SWARM_HELP: &str = "Run on a Swarm manager. GPU services are constrained to nodes labelled \
                          <gpu_label>=true ([swarm] gpu_label, default hlsys.gpu: `docker node update \
                          --label-add hlsys.gpu=true NODE`). See hlsys.toml(5), [swarm].";

#[derive(Debug, clap::Args)]
#[command(after_help = SWARM_HELP)]
pub struct SwarmArgs {
    #[command(subcommand)]
    pub command: SwarmCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SwarmCommand {
    /// Per layer: each stack's document for `docker stack deploy`, notes, GPU placement; changes nothing
    Plan(NamesArgs),
    /// Overlay networks, then each layer's stacks, waiting until every service runs healthy
    Deploy(NamesArgs),
    /// Per layer and stack: services, replicas, tasks with state, node and errors
    Status(NamesArgs),
    /// Remove the stacks in reverse layer order (named volumes and networks are kept)
    Rm(NamesArgs),
}

#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    /// Stack ids, tree paths or layers [default: every enabled stack]
    pub names: Vec<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: &SwarmArgs) -> anyhow::Result<ExitCode> {
    let names = match &args.command {
        SwarmCommand::Plan(a) | SwarmCommand::Deploy(a) | SwarmCommand::Status(a) | SwarmCommand::Rm(a) => a,
    };
    let (model, targets) = match model_and_targets(global, &names.names) {
        Ok(v) => v,
        Err(code) => return Ok(code),
    };
    let Some(selected) = selection(&model, &targets) else {
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    for e in &model.errors {
        eprintln!(
            "hlsys: stack {} skipped: {}",
            super::output::term(&e.stack),
            super::output::stack_error_cause(e)
        );
    }
    let rt = docker::runtime()?;
    let ok = rt.block_on(async {
        if let SwarmCommand::Plan(a) = &args.command {
            // A plan needs no swarm: it can be read before `docker swarm init`.
            return plan(docker::connect().await.ok(), &model, &selected, a.json).await;
        }
        let docker = docker::connect().await?;
        match &args.command {
            SwarmCommand::Plan(_) => unreachable!("handled above"),
            SwarmCommand::Deploy(a) => deploy(&docker, &model, &selected, a.json).await,
            SwarmCommand::Status(a) => status(&docker, &model, &selected, a.json).await,
            SwarmCommand::Rm(a) => rm(&docker, &model, &selected, a.json).await,
        }
    })?;
    Ok(ExitCode::from(if ok && model.errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILURE
    }))
}

/// Stack ids the NAMEs cover: enabled members of a layer or of everything, a named stack
/// even when disabled. `None` (after saying why) for a unit name.
fn selection(model: &Model, targets: &[Target]) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for t in targets {
        if let Target::Unit(u) = t {
            eprintln!("hlsys: {u} is a unit, not a stack or layer");
            return None;
        }
        let named = matches!(t, Target::Stack(_));
        out.extend(t.stacks(model, named).into_iter().map(|s| s.id.clone()));
    }
    Some(out)
}

/// Where the plan places things: this swarm when it is one, else a stand-in node.
async fn plan_site(docker: Option<bollard::Docker>, model: &Model) -> swarm::Site {
    let found = match &docker {
        Some(d) => swarm::site(d, &model.config).await,
        None => Err(anyhow::anyhow!("Docker is not reachable")),
    };
    found.unwrap_or_else(|e| {
        eprintln!("hlsys: {e:#}; planning for a swarm without GPU generic resources");
        swarm::Site {
            node: "THIS-NODE".into(),
            gpu_resource: false,
        }
    })
}

async fn plan(
    docker: Option<bollard::Docker>,
    model: &Model,
    selected: &BTreeSet<String>,
    as_json: bool,
) -> anyhow::Result<bool> {
    let site = plan_site(docker, model).await;
    let mut ok = true;
    let mut layers = Vec::new();
    for layer in &model.layers {
        let mut stacks = Vec::new();
        for id in layer.stacks.iter().filter(|id| selected.contains(*id)) {
            let stack = model.stack(id).expect("layer members are stacks");
            match swarm::prepare(stack, &model.config, &site).await {
                Ok(p) => stacks.push(serde_json::to_value(&p)?),
                Err(e) => {
                    ok = false;
                    stacks.push(json!({"stack": id, "layer": layer.name, "error": format!("{e:#}")}));
                }
            }
        }
        let timeout = model.config.swarm.layer_timeout(&layer.name);
        layers.push(json!({"layer": layer.name, "requires": layer.requires, "timeout_sec": timeout, "stacks": stacks}));
    }
    let networks: Vec<_> = model
        .config
        .networks
        .iter()
        .map(|(name, n)| {
            json!({"name": name, "driver": "overlay", "attachable": true, "internal": n.internal,
               "subnet": n.subnet, "gateway": n.gateway, "labels": n.labels})
        })
        .collect();
    let gpu = json!({"label": model.config.swarm.gpu_label, "constraint": format!("node.labels.{} == true", model.config.swarm.gpu_label),
                     "generic_resource": site.gpu_resource.then_some(&model.config.swarm.gpu_resource)});
    if as_json {
        println!(
            "{:#}",
            json!({"ok": ok, "networks": networks, "gpu": gpu, "layers": layers})
        );
        return Ok(ok);
    }
    println!(
        "# overlay networks: {}",
        model.config.networks.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    println!("# GPU services: {}", gpu["constraint"].as_str().unwrap_or_default());
    for l in &layers {
        println!(
            "\n## layer {} (timeout {}s)",
            l["layer"].as_str().unwrap_or(""),
            l["timeout_sec"]
        );
        for s in l["stacks"].as_array().into_iter().flatten() {
            println!("\n### stack {}", s["stack"].as_str().unwrap_or(""));
            if let Some(e) = s.get("error") {
                println!("error: {}", e.as_str().unwrap_or(""));
                continue;
            }
            for n in s["notes"].as_array().into_iter().flatten() {
                println!("# note: {}", n.as_str().unwrap_or(""));
            }
            print!("{}", serde_yaml_ng::to_string(&s["document"])?);
        }
    }
    Ok(ok)
}

async fn deploy(
    docker: &bollard::Docker,
    model: &Model,
    selected: &BTreeSet<String>,
    as_json: bool,
) -> anyhow::Result<bool> {
    let report = swarm::deploy(docker, model, selected).await?;
    let ok = report.success();
    if as_json {
        println!(
            "{:#}",
            json!({"ok": ok, "networks": report.networks, "stacks": report.stacks})
        );
        return Ok(ok);
    }
    if let Some(n) = &report.networks {
        for p in &n.problems {
            println!("network problem: {p}");
        }
        for r in &n.networks {
            let notes = if r.notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.notes.join("; "))
            };
            println!("network {}: {:?}{notes}", r.name, r.outcome);
        }
    }
    print_outcomes(&report.stacks);
    Ok(ok)
}

/// One line per stack, then its notes and problems indented.
fn print_outcomes(stacks: &[StackOutcome]) {
    let color = color_enabled(&std::io::stdout());
    for s in stacks {
        let code = match s.outcome.as_str() {
            "converged" => 32,
            "absent" => 33,
            _ => 31,
        };
        let action = if s.action == "none" {
            String::new()
        } else {
            format!(" ({})", s.action)
        };
        println!(
            "{:<10} {:<24} {}{action}",
            s.layer,
            s.stack,
            paint(color, code, &s.outcome)
        );
        for n in &s.notes {
            println!("    note: {n}");
        }
        for p in &s.problems {
            println!("    {p}");
        }
    }
}

async fn status(
    docker: &bollard::Docker,
    model: &Model,
    selected: &BTreeSet<String>,
    as_json: bool,
) -> anyhow::Result<bool> {
    let stacks = swarm::status(docker, model, selected).await?;
    let ok = stacks.iter().all(|s| s.outcome == "converged");
    if as_json {
        println!("{:#}", json!({"ok": ok, "stacks": stacks}));
        return Ok(ok);
    }
    let mut rows = Vec::new();
    for s in &stacks {
        if s.services.is_empty() {
            rows.push(vec![
                s.layer.clone(),
                s.stack.clone(),
                "-".into(),
                "-".into(),
                s.outcome.clone(),
                "".into(),
                "".into(),
                "".into(),
            ]);
        }
        for svc in &s.services {
            for t in svc.tasks.iter().filter(|t| t.desired_state == "running") {
                let why = t.error.clone().unwrap_or_else(|| t.message.clone());
                rows.push(vec![
                    s.layer.clone(),
                    s.stack.clone(),
                    svc.name.clone(),
                    format!("{}/{}", svc.running, svc.desired),
                    t.state.clone(),
                    t.health.clone().unwrap_or_else(|| "-".into()),
                    t.node.clone(),
                    why,
                ]);
            }
        }
    }
    print_table(
        &[
            "LAYER", "STACK", "SERVICE", "REPLICAS", "TASK", "HEALTH", "NODE", "MESSAGE",
        ],
        &rows,
    );
    Ok(ok)
}

async fn rm(
    docker: &bollard::Docker,
    model: &Model,
    selected: &BTreeSet<String>,
    as_json: bool,
) -> anyhow::Result<bool> {
    let removed = swarm::rm(docker, model, selected).await?;
    let ok = removed.values().all(|v| !v.starts_with("error"));
    if as_json {
        println!("{:#}", json!({"ok": ok, "stacks": removed}));
    } else {
        for (id, what) in &removed {
            println!("{id}: {what}");
        }
    }
    Ok(ok)
}
