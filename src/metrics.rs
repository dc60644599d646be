//! `hlsys metrics`: the Prometheus text exposition format (version 0.0.4) of the tree:
//! per stack its unit state, health (from the supervisor's STATUS=, src/health.rs, not
//! from Docker), restarts, last start duration and whether it is held back;
//! per container its health and the supervisor's restarts; the generator's last run;
//! per configured network its drift (the one family that asks Docker, through
//! src/network.rs, and is left out when Docker does not answer).
//! Only ids, layer names, Compose service names and numbers go in: no env value.

use std::collections::BTreeSet;
use std::fmt::Write;

use hlsys_core::model::Model;

use crate::health::Health;
use crate::network::NetworkStatus;

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

/// The whole exposition text. `networks`: `hlsys network status` of the configured
/// networks, `None` when Docker could not be asked (then no network family is written).
pub fn render(
    model: &Model,
    samples: &[StackSample],
    generator: Option<&GeneratorSample>,
    networks: Option<&[NetworkStatus]>,
) -> String {
    let mut o = Out(String::new());
    let healths: Vec<Option<Health>> = samples.iter().map(|s| Health::parse(&s.status_text)).collect();
    stacks(&mut o, model, samples, &healths);
    containers(&mut o, samples, &healths);
    if let Some(g) = generator {
        generator_run(&mut o, g);
    }
    if let Some(n) = networks {
        network_drift(&mut o, n);
    }
    o.family(
        "hlsys_stacks_in_error",
        "gauge",
        "Stacks of the tree left out of the model (errors).",
    );
    o.sample("hlsys_stacks_in_error", &[], model.errors.len() as f64);
    o.0
}

/// The per-stack families.
fn stacks(o: &mut Out, model: &Model, samples: &[StackSample], healths: &[Option<Health>]) {
    let held = held(model, samples);
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
    for (name, kind, help, f) in families {
        o.family(name, kind, help);
        for (s, h) in samples.iter().zip(healths) {
            if let Some(v) = f(s, h, held.contains(&s.id)) {
                let l = sl(s);
                o.sample(name, &[(l[0].0, &l[0].1), (l[1].0, &l[1].1)], v);
            }
        }
    }
}

/// The per-container families (from the supervisor's STATUS=).
fn containers(o: &mut Out, samples: &[StackSample], healths: &[Option<Health>]) {
    o.family(
        "hlsys_container_healthy",
        "gauge",
        "1 while the container is healthy (running, healthcheck passing or none).",
    );
    for (s, h) in samples.iter().zip(healths) {
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
    for (s, h) in samples.iter().zip(healths) {
        for r in h.iter().flat_map(|h| &h.restarts) {
            o.sample(
                "hlsys_container_restarts_total",
                &[("stack", &s.id), ("service", &r.service)],
                f64::from(r.count),
            );
        }
    }
}

/// The generator's last run.
fn generator_run(o: &mut Out, g: &GeneratorSample) {
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

/// `hlsys_network_drift`: 1 while a configured network is missing, differs from the
/// config or exists more than once, what `hlsys check` and `hlsys network status` report
/// (src/network.rs compares; nothing is compared here).
fn network_drift(o: &mut Out, networks: &[NetworkStatus]) {
    o.family(
        "hlsys_network_drift",
        "gauge",
        "1 while a configured Docker network is missing, differs from the config or is duplicated.",
    );
    for n in networks.iter().filter(|n| n.configured) {
        let bad = !n.exists || !n.drift.is_empty() || n.duplicates > 0;
        o.sample("hlsys_network_drift", &[("network", &n.name)], f64::from(u8::from(bad)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str, exists: bool, drift: usize, duplicates: usize) -> NetworkStatus {
        NetworkStatus {
            name: name.into(),
            configured: true,
            exists,
            id: exists.then(|| "abc".into()),
            managed: true,
            drift: (0..drift)
                .map(|_| crate::network::Drift {
                    field: "subnet".into(),
                    wanted: "172.21.0.0/24".into(),
                    found: "172.22.0.0/24".into(),
                })
                .collect(),
            containers: Vec::new(),
            duplicates,
        }
    }

    #[test]
    fn network_drift_is_one_when_missing_differing_or_duplicated() {
        let model = Model {
            config: hlsys_core::config::Config::default(),
            stacks: Vec::new(),
            errors: Vec::new(),
            layers: Vec::new(),
            tree_available: true,
            inputs: Default::default(),
        };
        let nets = [
            net("proxy", true, 0, 0),
            net("database", true, 1, 0),
            net("metrics", false, 0, 0),
            net("twice", true, 0, 1),
            NetworkStatus {
                configured: false,
                ..net("old", true, 0, 0)
            },
        ];
        let text = render(&model, &[], None, Some(&nets));
        let drift: Vec<&str> = text.lines().filter(|l| l.starts_with("hlsys_network_drift{")).collect();
        assert_eq!(
            drift,
            [
                "hlsys_network_drift{network=\"proxy\"} 0",
                "hlsys_network_drift{network=\"database\"} 1",
                "hlsys_network_drift{network=\"metrics\"} 1",
                "hlsys_network_drift{network=\"twice\"} 1",
            ]
        );
        assert!(text.contains("# TYPE hlsys_network_drift gauge\n"), "{text}");
        // Docker not asked: no family at all (absent, not a false 0).
        assert!(!render(&model, &[], None, None).contains("hlsys_network_drift"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
