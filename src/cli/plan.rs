//! `hlsys plan`: what the generator would write, through the same renderer, without
//! touching systemd: printed with a header per unit, or written to a directory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::global::{config_failure, Global};
use hlsys_core::exit::{EXIT_FAILURE, EXIT_OK};
use hlsys_core::model::Model;
use hlsys_core::units::render;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Write the units (and .wants links) into DIR instead of printing them
    #[arg(long, value_name = "DIR", conflicts_with_all = ["graph", "dot"])]
    pub out: Option<PathBuf>,
    /// Print layers and stacks in start order instead of the units
    #[arg(long, conflicts_with = "dot")]
    pub graph: bool,
    /// Print the dependency graph in Graphviz dot format
    #[arg(long, conflicts_with = "json")]
    pub dot: bool,
    /// Print {"units": [{"name","content"}], "links": [{"dir","unit"}], "errors": [...]}
    #[arg(long, conflicts_with = "graph")]
    pub json: bool,
}

pub fn run(global: &Global, args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let model = match global.load_model() {
        Ok(m) => m,
        Err(e) => return Ok(config_failure(&e)),
    };
    let g = render(&model);
    if args.json {
        let errors: Vec<&hlsys_core::model::StackError> = model.errors.iter().chain(&g.skipped).collect();
        let doc = serde_json::json!({
            "units": g.units.iter().map(|u| serde_json::json!({"name": u.name, "content": u.content})).collect::<Vec<_>>(),
            "links": g.links.iter().map(|l| serde_json::json!({"dir": l.dir, "unit": l.unit})).collect::<Vec<_>>(),
            "errors": errors,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::from(if errors.is_empty() { EXIT_OK } else { EXIT_FAILURE }));
    }
    if args.graph {
        print!("{}", graph_text(&model));
    } else if args.dot {
        print!("{}", dot(&model));
    } else if let Some(dir) = &args.out {
        let written = hlsys_core::generator::write_all(dir, &model, &g)
            .with_context(|| format!("writing units to {}", dir.display()))?;
        eprintln!("wrote {} files to {}", written.len(), dir.display());
    } else {
        for u in &g.units {
            println!("# ===== {} =====", u.name);
            print!("{}", u.content);
            println!();
        }
        for l in &g.links {
            println!("# ===== {}/{} -> ../{} =====", l.dir, l.unit, l.unit);
        }
    }
    let mut failed = false;
    for e in model.errors.iter().chain(&g.skipped) {
        failed = true;
        eprintln!("hlsys: skipped {}", super::output::stack_error(e));
    }
    Ok(ExitCode::from(if failed { EXIT_FAILURE } else { EXIT_OK }))
}

/// Layers in start order, each with its stacks and their dependencies.
fn graph_text(model: &Model) -> String {
    let mut out = String::new();
    for (i, l) in model.layers.iter().enumerate() {
        let mut deps: Vec<String> = l.requires.iter().map(|r| format!("requires {r}")).collect();
        deps.extend(l.after.iter().map(|a| format!("after {a}")));
        let deps = if deps.is_empty() {
            String::new()
        } else {
            format!(" ({})", deps.join(", "))
        };
        out.push_str(&format!("{}. {}{}\n", i + 1, l.target, deps));
        for s in model.stacks.iter().filter(|s| s.layer == l.name) {
            let mut d: Vec<String> = s.requires.iter().map(|r| format!("requires {r}")).collect();
            d.extend(s.wants.iter().map(|w| format!("wants {w}")));
            if !s.enabled {
                d.push("disabled".into());
            }
            if s.gpu {
                d.push("gpu".into());
            }
            let d = if d.is_empty() {
                String::new()
            } else {
                format!(" ({})", d.join(", "))
            };
            out.push_str(&format!("   {}{}\n", s.unit, d));
        }
    }
    out
}

fn dot(model: &Model) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from("digraph hlsys {\n  rankdir=LR;\n");
    for l in &model.layers {
        out.push_str(&format!(
            "  subgraph {} {{\n    label={};\n",
            q(&format!("cluster_{}", l.name)),
            q(&l.name)
        ));
        for s in model.stacks.iter().filter(|s| s.layer == l.name) {
            out.push_str(&format!("    {};\n", q(&s.id)));
        }
        out.push_str("  }\n");
        for dep in l.after.iter().chain(&l.requires) {
            out.push_str(&format!(
                "  {} -> {} [style=bold];\n",
                q(&format!("cluster_{}", l.name)),
                q(&format!("cluster_{dep}"))
            ));
        }
    }
    for s in &model.stacks {
        for r in &s.requires {
            out.push_str(&format!("  {} -> {};\n", q(&s.id), q(r)));
        }
        for w in &s.wants {
            out.push_str(&format!("  {} -> {} [style=dashed];\n", q(&s.id), q(w)));
        }
    }
    out.push_str("}\n");
    out
}
