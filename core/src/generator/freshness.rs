//! Whether the units in a generator directory are still what the tree gives now.

use std::path::Path;

use super::report::{GeneratorReport, REPORT_NAME};
use crate::model::Model;
use crate::units::render;

/// Where systemd runs generators with their normal output directory.
pub const SYSTEM_GENERATOR_DIR: &str = "run/systemd/generator";

/// How the units in a generator directory compare with what the tree gives now.
#[derive(Debug, PartialEq, Eq)]
pub enum Freshness {
    /// No report there: the generator never ran (not installed, or no reload since).
    NotGenerated,
    Current {
        units: usize,
    },
    /// Units that differ, are missing or are left over.
    Stale {
        changed: Vec<String>,
    },
}

/// Compares `dir` (e.g. /run/systemd/generator) with a fresh render of `model`: the
/// same renderer as the generator, so any difference means the tree changed since the
/// last daemon-reload.
pub fn freshness(model: &Model, dir: &Path) -> Freshness {
    let Ok(text) = crate::bounded::read_text(&dir.join(REPORT_NAME), crate::bounded::REPORT_CAP) else {
        return Freshness::NotGenerated;
    };
    let previous: Vec<String> = serde_json::from_str::<GeneratorReport>(&text)
        .map(|r| r.units)
        .unwrap_or_default();
    let g = render(model);
    let mut changed: Vec<String> = g
        .units
        .iter()
        .filter(|u| {
            crate::bounded::read_text(&dir.join(&u.name), crate::bounded::REPORT_CAP)
                .ok()
                .as_deref()
                != Some(u.content.as_str())
        })
        .map(|u| u.name.clone())
        .collect();
    let current: std::collections::HashSet<&str> = g.units.iter().map(|u| u.name.as_str()).collect();
    changed.extend(previous.into_iter().filter(|p| !current.contains(p.as_str())));
    changed.sort();
    if changed.is_empty() {
        Freshness::Current { units: g.units.len() }
    } else {
        Freshness::Stale { changed }
    }
}
