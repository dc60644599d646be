//! `hlsys logs NAME [-f] [-n N] [--since T]`: the journal of the units behind NAME —
//! a stack's service; a layer's target and all its stacks; everything for the root — by
//! running `journalctl` with one `-u` per unit.

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use super::global::model_and_targets;
use super::global::Global;
use crate::resolve::Target;
use hlsys_core::exit::EXIT_FAILURE;
use hlsys_core::model::Model;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Stack, layer, tree path or unit [default: everything]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Follow: keep printing new lines
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show the last N lines
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<u32>,
    /// Show lines since T (any time journalctl accepts: "1h ago", "today", "2024-05-01 10:00")
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
}

/// The units whose journal NAME stands for.
pub fn units(model: &Model, targets: &[Target]) -> Vec<String> {
    let prefix = &model.config.unit_prefix;
    let mut out: Vec<String> = Vec::new();
    let mut push = |u: String| {
        if !out.contains(&u) {
            out.push(u);
        }
    };
    for t in targets {
        match t {
            Target::Root => {
                push(model.root_target());
                for l in &model.layers {
                    push(l.target.clone());
                }
                for s in &model.stacks {
                    push(s.unit.clone());
                }
                for extra in ["networks", "gpu", "tree"] {
                    push(format!("{prefix}-{extra}.service"));
                }
            }
            Target::Layer(_) => {
                push(t.unit(model));
                for s in t.stacks(model, true) {
                    push(s.unit.clone());
                }
            }
            Target::Stack(_) | Target::Unit(_) => push(t.unit(model)),
        }
    }
    out
}

/// journalctl's arguments.
pub fn journalctl_args(units: &[String], args: &LogsArgs) -> Vec<String> {
    let mut a = Vec::new();
    for u in units {
        a.push("-u".to_string());
        a.push(u.clone());
    }
    if let Some(n) = args.lines {
        a.push("-n".into());
        a.push(n.to_string());
    }
    if let Some(s) = &args.since {
        a.push("--since".into());
        a.push(s.clone());
    }
    if args.follow {
        a.push("-f".into());
    }
    a
}

pub fn run(global: &Global, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let (model, targets) = match model_and_targets(global, &args.names) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let a = journalctl_args(&units(&model, &targets), args);
    // exec: journalctl gets the terminal, the pager and the signals as if run directly.
    let err = std::process::Command::new("journalctl").args(&a).exec();
    eprintln!("hlsys: cannot run journalctl: {err}");
    Ok(ExitCode::from(EXIT_FAILURE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journalctl_gets_one_unit_option_per_unit_and_the_filters() {
        let args = LogsArgs {
            names: vec![],
            follow: true,
            lines: Some(20),
            since: Some("1h ago".into()),
        };
        assert_eq!(
            journalctl_args(&["a.service".into(), "b.target".into()], &args),
            vec![
                "-u",
                "a.service",
                "-u",
                "b.target",
                "-n",
                "20",
                "--since",
                "1h ago",
                "-f"
            ]
        );
        let plain = LogsArgs {
            names: vec![],
            follow: false,
            lines: None,
            since: None,
        };
        assert_eq!(journalctl_args(&["a.service".into()], &plain), vec!["-u", "a.service"]);
    }
}
