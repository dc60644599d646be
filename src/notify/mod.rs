//! `hlsys notify`: the messages of `[notify]` (hlsys.toml(5)). Started by systemd through
//! `OnFailure=<prefix>-notify@%n.service` (core/src/units/notify.rs), which systemd 252
//! fires once a unit is failed for good (its restarts given up), so a restart loop makes
//! one activation; what is left to collect is many units failing together: see
//! [`window`]. A message names the failed stacks, their layer, the supervisor's last
//! STATUS= (which already masks env values, src/supervise), the unit's NRestarts and the
//! stacks held back because they require a failed one ([`held_back`]). No env file is
//! read here, and the token of a target is read from its file at send time only.

pub mod http;
pub mod window;

use std::collections::BTreeSet;

use serde::Serialize;

use hlsys_core::model::{Model, GPU_UNIT, NETWORKS_UNIT};

/// One failed unit, as the message shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub unit: String,
    /// The stack id; null for hlsys's own units (networks, GPU).
    pub stack: Option<String>,
    pub layer: Option<String>,
    /// The supervisor's last STATUS= (`failed: container db-1: die (exit code 3)`).
    pub status: String,
    /// systemd's NRestarts of the unit.
    pub restarts: u32,
    /// Stacks that require it (directly, through a stack or through their layer).
    pub held_back: Vec<String>,
}

/// A message: a title and a text, and the failures for a webhook's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `failed`, `ready`, `test`.
    pub event: String,
    pub title: String,
    pub message: String,
    pub failures: Vec<Failure>,
}

/// The stacks that cannot run while `failed` (stack ids, or hlsys's own unit names
/// `networks`/`gpu`) is down: those requiring a failed stack (transitively, `requires`),
/// every stack of a layer that requires (transitively) a failed stack's layer, every
/// stack for the networks unit, every GPU stack for the GPU unit. Failed ones excluded.
pub fn held_back(model: &Model, failed: &BTreeSet<String>) -> Vec<String> {
    let mut down: BTreeSet<String> = failed.clone();
    let mut down_layers: BTreeSet<String> = BTreeSet::new();
    for s in &model.stacks {
        if failed.contains(NETWORKS_UNIT) || (s.gpu && failed.contains(GPU_UNIT)) {
            down.insert(s.id.clone());
        }
        if failed.contains(&s.id) {
            down_layers.insert(s.layer.clone());
        }
    }
    loop {
        let before = (down.len(), down_layers.len());
        for l in &model.layers {
            if l.requires.iter().any(|r| down_layers.contains(r)) {
                down_layers.insert(l.name.clone());
            }
        }
        for s in &model.stacks {
            let layer_down = model
                .layer(&s.layer)
                .is_some_and(|l| l.requires.iter().any(|r| down_layers.contains(r)));
            if layer_down || s.requires.iter().any(|r| down.contains(r)) {
                down.insert(s.id.clone());
            }
        }
        if (down.len(), down_layers.len()) == before {
            break;
        }
    }
    down.into_iter().filter(|s| !failed.contains(s)).collect()
}

/// The stack of `unit` (`<prefix>-<id>.service`), or hlsys's own unit's short name.
pub fn unit_subject(model: &Model, unit: &str) -> Option<String> {
    let prefix = format!("{}-", model.config.unit_prefix);
    let short = unit.strip_prefix(&prefix)?.strip_suffix(".service")?;
    (model.stacks.iter().any(|s| s.id == short) || short == NETWORKS_UNIT || short == GPU_UNIT)
        .then(|| short.to_string())
}

/// Fills in layer and held-back stacks of each failure (`stack` set by the caller).
pub fn complete(model: &Model, failures: &mut [Failure]) {
    let failed: BTreeSet<String> = failures.iter().filter_map(|f| f.stack.clone()).collect();
    for f in failures.iter_mut() {
        let Some(id) = f.stack.clone() else { continue };
        f.layer = model.stacks.iter().find(|s| s.id == id).map(|s| s.layer.clone());
        f.held_back = held_back(model, &BTreeSet::from([id]))
            .into_iter()
            .filter(|h| !failed.contains(h))
            .collect();
    }
}

/// One message for every failure of the window.
pub fn failed_message(prefix: &str, failures: &[Failure]) -> Message {
    let names: Vec<&str> = failures
        .iter()
        .map(|f| f.stack.as_deref().unwrap_or(f.unit.as_str()))
        .collect();
    let title = match names.as_slice() {
        [one] => format!("{prefix}: {one} failed"),
        many => format!("{prefix}: {} stacks failed", many.len()),
    };
    let mut lines = Vec::new();
    for f in failures {
        let mut line = format!("{}", f.stack.as_deref().unwrap_or(&f.unit));
        if let Some(l) = &f.layer {
            line.push_str(&format!(" (layer {l})"));
        }
        let status = if f.status.is_empty() {
            "failed"
        } else {
            f.status.as_str()
        };
        line.push_str(&format!(": {status}; unit restarts: {}", f.restarts));
        if !f.held_back.is_empty() {
            line.push_str(&format!("; held back: {}", f.held_back.join(", ")));
        }
        lines.push(line);
    }
    Message {
        event: "failed".into(),
        title,
        message: lines.join("\n"),
        failures: failures.to_vec(),
    }
}

/// "homelab ready: N/M stacks healthy in S s".
pub fn ready_message(prefix: &str, healthy: usize, total: usize, secs: f64) -> Message {
    let text = format!("{prefix} ready: {healthy}/{total} stacks healthy in {secs:.0} s");
    Message {
        event: "ready".into(),
        title: text.clone(),
        message: text,
        failures: Vec::new(),
    }
}

pub fn test_message(prefix: &str) -> Message {
    Message {
        event: "test".into(),
        title: format!("{prefix}: test notification"),
        message: format!("hlsys notify --test on {prefix}: this target works"),
        failures: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_lists_every_failure() {
        let f = |id: &str, held: &[&str]| Failure {
            unit: format!("homelab-{id}.service"),
            stack: Some(id.into()),
            layer: Some("database".into()),
            status: "failed: container db-1: die (exit code 3)".into(),
            restarts: 9,
            held_back: held.iter().map(|s| s.to_string()).collect(),
        };
        let m = failed_message("homelab", &[f("db", &["app"])]);
        assert_eq!(m.title, "homelab: db failed");
        assert_eq!(
            m.message,
            "db (layer database): failed: container db-1: die (exit code 3); unit restarts: 9; held back: app"
        );
        let m = failed_message("homelab", &[f("a", &[]), f("b", &[])]);
        assert_eq!(m.title, "homelab: 2 stacks failed");
        assert_eq!(m.message.lines().count(), 2);
    }
}
