//! `hlsys metrics`: the Prometheus text exposition format (version 0.0.4) of the tree:
//! per stack its unit state, health (from the supervisor's STATUS=, src/health.rs, so no
//! Docker socket is needed), restarts, last start duration and whether it is held back;
//! per container its health and the supervisor's restarts; the generator's last run.
//! Only ids, layer names, Compose service names and numbers go in: no env value.

use std::collections::BTreeSet;
use std::fmt::Write;

use hlsys_core::model::Model;

use crate::health::Health;

/// What systemd says about one stack unit.
#[derive(Debug, Clone, Default)]
pub struct StackSample {
    pub id: String,
    pub layer: String,
    pub services: Vec<String>,
    pub active_state: String,
    pub status_text: String,
    pub n_restarts: u32,
    /// ActiveEnterTimestamp − InactiveExitTimestamp of the last start, seconds.
    pub start_seconds: Option<f64>,
}

/// The generator's last run (its report beside the units).
#[derive(Debug, Clone, Default)]
pub struct GeneratorSample {
    pub units: usize,
    pub skipped: usize,
    /// mtime of the report, seconds since the epoch.
    pub time: Option<f64>,
}

/// A label value as the exposition format wants it: `\`, `"` and newlines escaped.
pub fn label(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect();
        if l.is_empty() {
            let _ = writeln!(self.0, "{name} {v}");
        } else {
            let _ = writeln!(self.0, "{name}{{{}}} {v}", l.join(","));
        }
    }
}

/// Stacks held back now: not active, and requiring (see crate::notify::held_back) a
/// failed one.
fn held(model: &Model, samples: &[StackSample]) -> BTreeSet<String> {
    let failed: BTreeSet<String> = samples
        .iter()
        .filter(|s| s.active_state == "failed")
        .map(|s| s.id.clone())
        .collect();
    let inactive: BTreeSet<&str> = samples
        .iter()
        .filter(|s| !matches!(s.active_state.as_str(), "active" | "reloading" | "activating"))
        .map(|s| s.id.as_str())
        .collect();
    crate::notify::held_back(model, &failed)
        .into_iter()
        .filter(|s| inactive.contains(s.as_str()))
        .collect()
}

/// The whole exposition text.
pub fn render(model: &Model, samples: &[StackSample], generator: Option<&GeneratorSample>) -> String {
    let held = held(model, samples);
    let mut o = Out(String::new());
    let sl = |s: &StackSample| [("stack", s.id.clone()), ("layer", s.layer.clone())];
    type F = fn(&StackSample, &Option<Health>, bool) -> Option<f64>;
    let families: [(&str, &str, &str, F); 8] = [
        (
            "hlsys_stack_up",
            "gauge",
            "1 while the stack's unit is active.",
            |s, _, _| {
                Some(f64::from(u8::from(matches!(
                    s.active_state.as_str(),
                    "active" | "reloading"
                ))))
            },
        ),
        (
            "hlsys_stack_failed",
            "gauge",
            "1 while the stack's unit is failed.",
            |s, _, _| Some(f64::from(u8::from(s.active_state == "failed"))),
        ),
        (
            "hlsys_stack_healthy",
            "gauge",
            "1 while every container of the stack is healthy (supervisor's STATUS=).",
            |_, h, _| {
                h.as_ref()
                    .map(|h| f64::from(u8::from(h.total > 0 && h.healthy == h.total)))
            },
        ),
        (
            "hlsys_stack_containers_healthy",
            "gauge",
            "Containers of the stack that are healthy.",
            |_, h, _| h.as_ref().map(|h| h.healthy as f64),
        ),
        (
            "hlsys_stack_containers",
            "gauge",
            "Containers of the stack.",
            |_, h, _| h.as_ref().map(|h| h.total as f64),
        ),
        (
            "hlsys_stack_unit_restarts_total",
            "counter",
            "Restarts of the stack's unit by systemd (NRestarts).",
            |s, _, _| Some(f64::from(s.n_restarts)),
        ),
        (
            "hlsys_stack_start_duration_seconds",
            "gauge",
            "How long the last start took until the stack was ready.",
            |s, _, _| s.start_seconds,
        ),
        (
            "hlsys_stack_held_back",
            "gauge",
            "1 while the stack cannot run because a stack it requires failed.",
            |_, _, h| Some(f64::from(u8::from(h))),
        ),
    ];
    let healths: Vec<Option<Health>> = samples.iter().map(|s| Health::parse(&s.status_text)).collect();
    for (name, kind, help, f) in families {
        o.family(name, kind, help);
        for (s, h) in samples.iter().zip(&healths) {
            if let Some(v) = f(s, h, held.contains(&s.id)) {
                let l = sl(s);
                o.sample(name, &[(l[0].0, &l[0].1), (l[1].0, &l[1].1)], v);
            }
        }
    }
    o.family(
        "hlsys_container_healthy",
        "gauge",
        "1 while the container is healthy (running, healthcheck passing or none).",
    );
    for (s, h) in samples.iter().zip(&healths) {
        let Some(h) = h else { continue };
        for svc in &s.services {
            let bad = h.not_healthy.iter().any(|n| &n.service == svc);
            o.sample(
                "hlsys_container_healthy",
                &[("stack", &s.id), ("service", svc)],
                if bad { 0.0 } else { 1.0 },
            );
        }
    }
    o.family(
        "hlsys_container_restarts_total",
        "counter",
        "Restarts of a service's container by the supervisor (its restart: policy).",
    );
    for (s, h) in samples.iter().zip(&healths) {
        for r in h.iter().flat_map(|h| &h.restarts) {
            o.sample(
                "hlsys_container_restarts_total",
                &[("stack", &s.id), ("service", &r.service)],
                f64::from(r.count),
            );
        }
    }
    if let Some(g) = generator {
        o.family(
            "hlsys_generator_units",
            "gauge",
            "Units the generator wrote at its last run.",
        );
        o.sample("hlsys_generator_units", &[], g.units as f64);
        o.family(
            "hlsys_generator_skipped_stacks",
            "gauge",
            "Stacks the generator left out at its last run.",
        );
        o.sample("hlsys_generator_skipped_stacks", &[], g.skipped as f64);
        if let Some(t) = g.time {
            o.family(
                "hlsys_generator_last_run_timestamp_seconds",
                "gauge",
                "When the generator last ran.",
            );
            o.sample("hlsys_generator_last_run_timestamp_seconds", &[], t);
        }
    }
    o.family(
        "hlsys_stacks_in_error",
        "gauge",
        "Stacks of the tree left out of the model (errors).",
    );
    o.sample("hlsys_stacks_in_error", &[], model.errors.len() as f64);
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
