//! `hlsys enable|disable NAME…`: whether a stack is part of its layer (started with it,
//! at boot too). Generated units cannot be enabled with systemctl, so the choice is
//! recorded in a drop-in next to the config (`hlsys.toml.d/50-hlsys-enable.toml`,
//! `[stacks.ID] enabled = …`; the user's hlsys.toml is never rewritten), then systemd is
//! reloaded over D-Bus so the generator writes the units anew. A layer NAME applies to
//! every stack of the layer. `--now` also starts (enable) or stops (disable) them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::authz::{config_write_refusal, map_denied, may_write};
use super::global::model_and_targets;
use super::global::{config_failure, Global};
use super::start::{execute, Action, Options};
use crate::resolve::Target;
use crate::systemd::{self, UnitState};
use hlsys_core::config::{Config, DropIn, DropInStack, DEFAULT_CONFIG};
use hlsys_core::exit::{EXIT_CONFIG, EXIT_FAILURE, EXIT_OK};
use hlsys_core::model::Model;
use hlsys_core::write::{write_atomic, Durability};

/// The drop-in hlsys writes, in `<config>.d/`.
pub const DROPIN_NAME: &str = "50-hlsys-enable.toml";

#[derive(Debug, clap::Args)]
pub struct EnableArgs {
    /// Stacks, layers (all their stacks) or tree paths
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
    /// Also start (enable) or stop (disable) the stacks now
    #[arg(long)]
    pub now: bool,
}

const HEADER: &str = "# Written by `hlsys enable|disable`: which stacks are part of their layer.\n\
# Edit with those commands; settings here override hlsys.toml.\n\n";

/// The drop-in's path for the config at `config_file`.
pub fn dropin_path(config_file: &Path) -> PathBuf {
    Config::dropin_dir(config_file).join(DROPIN_NAME)
}

/// The drop-in's text after setting `changes` (stack id → enabled) on top of `current`
/// (the file's text, if it exists). A file that does not parse is an error: it is not
/// overwritten.
pub fn updated_dropin(current: Option<&str>, changes: &[(String, bool)]) -> Result<String> {
    let mut d: DropIn = match current {
        Some(t) => toml::from_str(t).context("the existing drop-in does not parse; fix or remove it")?,
        None => DropIn::default(),
    };
    for (id, en) in changes {
        d.stacks.insert(id.clone(), DropInStack { enabled: Some(*en) });
    }
    Ok(format!("{HEADER}{}", toml::to_string(&d)?))
}

/// Writes the drop-in at `path` atomically and durably (it is state kept on disk).
pub fn write_dropin(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().context("drop-in path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomic(path, text.as_bytes(), Durability::Synced).context("writing the drop-in")
}

pub fn run(global: &Global, args: &EnableArgs, enable: bool) -> anyhow::Result<ExitCode> {
    let verb = if enable { "enable" } else { "disable" };
    let (model, targets) = match model_and_targets(global, &args.names) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let ids = match stack_ids(&model, &targets, verb) {
        Ok(ids) => ids,
        Err(code) => return Ok(code),
    };
    // The drop-in is config: whoever may write it decides what root starts at boot, so a
    // user who may not (a member of the homelab group included) is refused before anything
    // changes, with the command to run instead. No root-owned helper writes it for them:
    // that would hand the config to the group, which README's trust model keeps root's.
    let dropin = dropin_path(&config_file(&model));
    if !may_write(&dropin) {
        eprintln!("{}", config_write_refusal(verb, &dropin, &args.names));
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    let before: BTreeMap<String, bool> = model.stacks.iter().map(|s| (s.id.clone(), s.enabled)).collect();
    let path = record(&model, &ids, enable)?;
    eprintln!("recorded in {}", path.display());
    // The model as the generator will now see it.
    let after = match global.load_model() {
        Ok(m) => m,
        Err(e) => return Ok(config_failure(&e)),
    };
    let r = crate::docker::runtime()?.block_on(async {
        let conn = systemd::system_bus().await?;
        systemd::reload(&conn).await?;
        let units: Vec<String> = ids
            .iter()
            .filter_map(|id| after.stack(id))
            .map(|s| s.unit.clone())
            .collect();
        let states = systemd::list_units_by_names(&conn, &units).await?;
        let mut ok = print_changes(&after, &ids, &before, &states, enable);
        if !ok {
            eprintln!(
                "hlsys: hlsys.toml.d has a later drop-in that overrides {}",
                path.display()
            );
        }
        if args.now {
            let action = if enable { Action::Start } else { Action::Stop };
            let opts = Options {
                no_block: false,
                json: false,
            };
            ok &= execute(&conn, &units, action, &opts).await?;
        } else if enable {
            eprintln!("(not started: run hlsys start, or use --now)");
        }
        Ok(ExitCode::from(if ok { EXIT_OK } else { EXIT_FAILURE }))
    });
    map_denied(verb, &after.config.unit_prefix, r)
}

/// The stacks the targets stand for, each once; `Err(exit code)` for a target without any.
fn stack_ids(model: &Model, targets: &[Target], verb: &str) -> Result<Vec<String>, ExitCode> {
    let mut ids: Vec<String> = Vec::new();
    for t in targets {
        let stacks = t.stacks(model, true);
        if stacks.is_empty() {
            eprintln!("hlsys: {} has no stacks to {verb}", t.describe(model));
            return Err(ExitCode::from(EXIT_CONFIG));
        }
        for s in stacks {
            if !ids.contains(&s.id) {
                ids.push(s.id.clone());
            }
        }
    }
    Ok(ids)
}

/// The config file the model was loaded from.
fn config_file(model: &Model) -> PathBuf {
    model
        .config
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
}

/// Records `enabled` for `ids` in the drop-in beside the config; returns its path.
fn record(model: &Model, ids: &[String], enabled: bool) -> Result<PathBuf> {
    let path = dropin_path(&config_file(model));
    let current = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
    };
    let changes: Vec<(String, bool)> = ids.iter().map(|id| (id.clone(), enabled)).collect();
    let text = updated_dropin(current.as_deref(), &changes).with_context(|| path.display().to_string())?;
    write_dropin(&path, &text)?;
    Ok(path)
}

/// One line per stack: what changed, its unit and state. Whether every stack now is as
/// asked (a later drop-in can override ours).
fn print_changes(
    after: &Model,
    ids: &[String],
    before: &BTreeMap<String, bool>,
    states: &[UnitState],
    enable: bool,
) -> bool {
    let mut ok = true;
    for id in ids {
        let Some(s) = after.stack(id) else { continue };
        let was = before.get(id).copied().unwrap_or(s.enabled);
        let state = states
            .iter()
            .find(|u| u.name == s.unit)
            .map(|u| u.active_state.as_str())
            .unwrap_or("unknown");
        let change = match (was, s.enabled) {
            (a, b) if a == b => format!("already {}", if b { "enabled" } else { "disabled" }),
            (_, true) => "enabled".to_string(),
            (_, false) => "disabled".to_string(),
        };
        println!("{id}: {change} ({}, {state}; layer {})", s.unit, s.layer);
        ok &= s.enabled == enable;
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dropin_keeps_other_stacks_and_parses_as_config_does() {
        let first = updated_dropin(None, &[("genai-webui".into(), false)]).unwrap();
        assert!(first.starts_with("# Written by `hlsys enable|disable`"));
        assert!(first.contains("[stacks.genai-webui]\nenabled = false\n"), "{first}");
        let second = updated_dropin(Some(&first), &[("media".into(), true), ("genai-webui".into(), true)]).unwrap();
        let d: DropIn = toml::from_str(&second).unwrap();
        assert_eq!(d.stacks.len(), 2);
        assert!(d.stacks["genai-webui"].enabled == Some(true) && d.stacks["media"].enabled == Some(true));
        assert!(
            updated_dropin(Some("stacks = 3"), &[]).is_err(),
            "a broken file is not overwritten"
        );
    }

    #[test]
    fn config_load_sees_what_enable_writes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("hlsys.toml");
        std::fs::write(&cfg, "stacks_dir = \"tree\"\n[stacks.a]\nenabled = true\n").unwrap();
        let path = dropin_path(&cfg);
        assert_eq!(path, dir.path().join("hlsys.toml.d/50-hlsys-enable.toml"));
        write_dropin(&path, &updated_dropin(None, &[("a".into(), false)]).unwrap()).unwrap();
        let c = Config::load(&cfg, true).unwrap();
        assert_eq!(c.stacks["a"].enabled, Some(false));
        assert_eq!(
            std::fs::read_to_string(&cfg).unwrap(),
            "stacks_dir = \"tree\"\n[stacks.a]\nenabled = true\n"
        );
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left");
    }
}
