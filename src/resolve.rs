//! NAME → what `hlsys start|stop|restart|status|logs|enable|disable` act on. Pure: a
//! NAME and the [`Model`] in, a [`Target`] or an error listing the candidates out.
//!
//! A NAME is, in this order of exactness:
//! - a unit name: `homelab.target`, `homelab-genai.target`, `homelab-genai-ollama.service`,
//!   or another unit of ours (`homelab-networks.service`);
//! - `stack:X` or `layer:X`, which say what X is;
//! - the unit prefix (`homelab`: the root target), a stack id (`genai-ollama`), a tree
//!   path (`genai/ollama`, absolute or relative to stacks_dir), or a layer (`genai`);
//! - failing all of these, the last component of a stack's path (`ollama`).
//!
//! A NAME that fits more than one thing is an error naming each candidate — except a
//! stack that has its layer to itself under the same name (`database/compose.yaml`,
//! stack `database` alone in layer `database`): that is the stack.

use std::collections::BTreeSet;
use std::path::Path;

use hlsys_core::model::{Model, Stack};

/// What a NAME stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// `homelab.target`: every layer.
    Root,
    /// A layer: its target.
    Layer(String),
    /// A stack id: its service.
    Stack(String),
    /// Another unit of ours, by name (`homelab-networks.service`).
    Unit(String),
}

impl Target {
    /// The unit that stands for it.
    pub fn unit(&self, model: &Model) -> String {
        match self {
            Target::Root => model.root_target(),
            Target::Layer(l) => hlsys_core::model::layer_target(&model.config.unit_prefix, l),
            Target::Stack(id) => model
                .stack(id)
                .map(|s| s.unit.clone())
                .unwrap_or_else(|| format!("{}-{id}.service", model.config.unit_prefix)),
            Target::Unit(u) => u.clone(),
        }
    }

    /// Stacks it covers: all for the root, the layer's members for a layer (disabled
    /// ones too when `include_disabled`), the stack itself.
    pub fn stacks<'m>(&self, model: &'m Model, include_disabled: bool) -> Vec<&'m Stack> {
        match self {
            Target::Root => model.stacks.iter().filter(|s| include_disabled || s.enabled).collect(),
            Target::Layer(l) => model
                .stacks
                .iter()
                .filter(|s| &s.layer == l && (include_disabled || s.enabled))
                .collect(),
            Target::Stack(id) => model.stack(id).into_iter().collect(),
            Target::Unit(_) => Vec::new(),
        }
    }

    /// "stack genai-ollama (homelab-genai-ollama.service, genai/ollama)" and the like.
    pub fn describe(&self, model: &Model) -> String {
        match self {
            Target::Root => format!("everything ({})", model.root_target()),
            Target::Layer(l) => format!("layer {l} ({})", self.unit(model)),
            Target::Stack(id) => match model.stack(id) {
                Some(s) => format!("stack {id} ({}, {})", s.unit, rel_path(model, s)),
                None => format!("stack {id}"),
            },
            Target::Unit(u) => format!("unit {u}"),
        }
    }
}

/// Why a NAME does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("{name:?} is no stack, layer, tree path or unit of hlsys ({known})")]
    Unknown { name: String, known: String },
    #[error(
        "{name:?} is ambiguous; it could be: {}. Name one of them by its unit, its tree path, \
         or as stack:{name} / layer:{name}",
        candidates.join("; ")
    )]
    Ambiguous { name: String, candidates: Vec<String> },
    /// The stack exists on disk but is left out of the model.
    #[error("stack {name} is in error and has no unit: {message}")]
    InError { name: String, message: String },
}

/// The stack's directory relative to stacks_dir (`genai/ollama`).
pub fn rel_path(model: &Model, s: &Stack) -> String {
    s.dir
        .strip_prefix(&model.config.stacks_dir)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| s.dir.to_string_lossy().into_owned())
}

const UNIT_SUFFIXES: &[&str] = &[
    ".service", ".target", ".mount", ".socket", ".timer", ".path", ".slice", ".scope",
];

fn known_summary(model: &Model) -> String {
    const MAX: usize = 12;
    let list = |v: Vec<&str>| {
        if v.is_empty() {
            "none".to_string()
        } else if v.len() > MAX {
            format!("{}, … ({} in all)", v[..MAX].join(", "), v.len())
        } else {
            v.join(", ")
        }
    };
    format!(
        "stacks: {}; layers: {}",
        list(model.stacks.iter().map(|s| s.id.as_str()).collect()),
        list(model.layers.iter().map(|l| l.name.as_str()).collect())
    )
}

fn stacks_matching<'m>(model: &'m Model, name: &str) -> Vec<&'m Stack> {
    let trimmed = name.trim_end_matches('/');
    model
        .stacks
        .iter()
        .filter(|s| {
            s.id == name
                || rel_path(model, s) == trimmed
                || (Path::new(trimmed).is_absolute() && s.dir == Path::new(trimmed))
        })
        .collect()
}

fn short_matching<'m>(model: &'m Model, name: &str) -> Vec<&'m Stack> {
    model
        .stacks
        .iter()
        .filter(|s| rel_path(model, s).rsplit('/').next() == Some(name))
        .collect()
}

fn unknown(model: &Model, name: &str) -> ResolveError {
    if let Some(e) = model
        .errors
        .iter()
        .find(|e| e.stack == name || e.stack.replace('/', "-") == name)
    {
        return ResolveError::InError {
            name: name.to_string(),
            message: e.message.clone(),
        };
    }
    ResolveError::Unknown {
        name: name.to_string(),
        known: known_summary(model),
    }
}

/// Resolves one NAME.
pub fn target(model: &Model, name: &str) -> Result<Target, ResolveError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ResolveError::Unknown {
            name: String::new(),
            known: known_summary(model),
        });
    }
    if let Some(x) = name.strip_prefix("stack:") {
        let mut found = stacks_matching(model, x);
        if found.is_empty() {
            found = short_matching(model, x);
        }
        return one_stack(model, name, x, &found);
    }
    if let Some(x) = name.strip_prefix("layer:") {
        return match model.layer(x) {
            Some(l) => Ok(Target::Layer(l.name.clone())),
            None => Err(ResolveError::Unknown {
                name: name.to_string(),
                known: known_summary(model),
            }),
        };
    }
    if UNIT_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        if let Some(t) = unit_target(model, name)? {
            return Ok(t);
        }
    }
    let exact = exact_targets(model, name);
    match exact.len() {
        1 => Ok(exact.into_iter().next().expect("one")),
        0 => one_stack(model, name, name, &short_matching(model, name)),
        _ => Err(ResolveError::Ambiguous {
            name: name.to_string(),
            candidates: exact.iter().map(|t| t.describe(model)).collect(),
        }),
    }
}

/// NAME that looks like a unit name: ours, or an error for a unit that is not ours;
/// `None` when a directory may still be called like that.
fn unit_target(model: &Model, name: &str) -> Result<Option<Target>, ResolveError> {
    let prefix = model.config.unit_prefix.as_str();
    if name == model.root_target() {
        return Ok(Some(Target::Root));
    }
    if let Some(l) = model.layers.iter().find(|l| l.target == name) {
        return Ok(Some(Target::Layer(l.name.clone())));
    }
    if let Some(s) = model.stacks.iter().find(|s| s.unit == name) {
        return Ok(Some(Target::Stack(s.id.clone())));
    }
    if name.starts_with(&format!("{prefix}-")) {
        return Ok(Some(Target::Unit(name.to_string())));
    }
    if !name.contains('/') && stacks_matching(model, name).is_empty() {
        return Err(ResolveError::Unknown {
            name: name.to_string(),
            known: format!("hlsys only acts on its own units ({prefix}*); {}", known_summary(model)),
        });
    }
    Ok(None)
}

/// Everything NAME names exactly: the root (the prefix), stacks by id or path, a layer.
/// Stack X alone in layer X gives just the stack (the layer target adds nothing).
fn exact_targets(model: &Model, name: &str) -> BTreeSet<Target> {
    let mut exact: BTreeSet<Target> = BTreeSet::new();
    if name == model.config.unit_prefix {
        exact.insert(Target::Root);
    }
    for s in stacks_matching(model, name) {
        exact.insert(Target::Stack(s.id.clone()));
    }
    if let Some(l) = model.layer(name.trim_end_matches('/')) {
        exact.insert(Target::Layer(l.name.clone()));
    }
    if exact.len() == 2 {
        let stack = exact.iter().find_map(|t| match t {
            Target::Stack(id) => Some(id.clone()),
            _ => None,
        });
        let layer = exact.iter().find_map(|t| match t {
            Target::Layer(l) => Some(l.clone()),
            _ => None,
        });
        if let (Some(id), Some(l)) = (stack, layer) {
            let mut members = model.stacks.iter().filter(|s| s.layer == l).map(|s| s.id.as_str());
            if id == l && members.next() == Some(id.as_str()) && members.next().is_none() {
                return BTreeSet::from([Target::Stack(id)]);
            }
        }
    }
    exact
}

/// The one stack `found` for NAME, else an error: unknown (`looked_for`), or ambiguous
/// with every candidate listed.
fn one_stack(model: &Model, name: &str, looked_for: &str, found: &[&Stack]) -> Result<Target, ResolveError> {
    match found {
        [s] => Ok(Target::Stack(s.id.clone())),
        [] => Err(unknown(model, looked_for)),
        many => Err(ResolveError::Ambiguous {
            name: name.to_string(),
            candidates: many
                .iter()
                .map(|s| Target::Stack(s.id.clone()).describe(model))
                .collect(),
        }),
    }
}

/// Resolves every NAME (none: the root target), keeping their order and dropping repeats.
pub fn targets(model: &Model, names: &[String]) -> Result<Vec<Target>, ResolveError> {
    if names.is_empty() {
        return Ok(vec![Target::Root]);
    }
    let mut out: Vec<Target> = Vec::new();
    for n in names {
        let t = target(model, n)?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// The layers a layer depends on (after + requires), transitively, and itself last.
pub fn layer_closure(model: &Model, layer: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stack = vec![layer.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(l) = stack.pop() {
        if !seen.insert(l.clone()) {
            continue;
        }
        if let Some(layer) = model.layer(&l) {
            for d in layer.after.iter().chain(&layer.requires) {
                stack.push(d.clone());
            }
        }
        out.push(l);
    }
    // In the model's start order.
    let mut ordered: Vec<String> = model
        .layers
        .iter()
        .filter(|l| out.contains(&l.name))
        .map(|l| l.name.clone())
        .collect();
    for l in out {
        if !ordered.contains(&l) {
            ordered.push(l);
        }
    }
    ordered
}

/// The units that starting `target` pulls in through `Wants=`/`Requires=` of the
/// generated units (layer targets and enabled stack services), in start order, the
/// target itself excluded. Starting a target that is already active pulls in none of
/// them, so `hlsys start` enqueues the inactive ones itself.
pub fn wanted_units(model: &Model, target: &Target) -> Vec<String> {
    let prefix = &model.config.unit_prefix;
    let mut extra: Vec<String> = Vec::new();
    let layers: Vec<String> = match target {
        Target::Root => model.layers.iter().map(|l| l.name.clone()).collect(),
        Target::Layer(l) => layer_closure(model, l),
        Target::Stack(id) => match model.stack(id) {
            // A stack wants the layers its layer depends on (not its own layer) and the
            // stacks it depends on.
            Some(s) => {
                let mut c = layer_closure(model, &s.layer);
                c.retain(|l| l != &s.layer);
                extra.extend(
                    s.requires
                        .iter()
                        .chain(&s.wants)
                        .filter_map(|d| model.stack(d))
                        .map(|d| d.unit.clone()),
                );
                c
            }
            None => Vec::new(),
        },
        Target::Unit(_) => Vec::new(),
    };
    let mut units = Vec::new();
    for l in &layers {
        units.push(hlsys_core::model::layer_target(prefix, l));
        if let Some(layer) = model.layer(l) {
            for id in &layer.stacks {
                if let Some(s) = model.stack(id) {
                    units.push(s.unit.clone());
                }
            }
        }
    }
    for u in extra {
        if !units.contains(&u) {
            units.push(u);
        }
    }
    let own = target.unit(model);
    units.retain(|u| u != &own);
    units
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use hlsys_core::config::Config;
    use hlsys_core::model::{Layer, StackError};

    fn stack(id: &str, rel: &str, layer: &str, enabled: bool) -> Stack {
        let dir = PathBuf::from("/srv/compose").join(rel);
        Stack {
            id: id.into(),
            layer: layer.into(),
            compose_file: dir.join("compose.yaml"),
            compose_files: vec![dir.join("compose.yaml")],
            dir,
            project: id.into(),
            env_files: vec![],
            services: vec!["app".into()],
            networks: vec![],
            gpu: false,
            requires: vec![],
            wants: vec![],
            unit: format!("homelab-{id}.service"),
            enabled,
            timeout_start_sec: None,
            service_details: vec![],
            secret_files: vec![],
        }
    }

    fn layer(name: &str, after: &[&str], requires: &[&str], stacks: &[&str]) -> Layer {
        Layer {
            name: name.into(),
            target: format!("homelab-{name}.target"),
            after: after.iter().map(|s| s.to_string()).collect(),
            requires: requires.iter().map(|s| s.to_string()).collect(),
            stacks: stacks.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// panel (stack panel) → database (stacks database, database-pg) → genai (ollama,
    /// webui) and media (webui: a second "webui"; plex disabled).
    fn model() -> Model {
        Model {
            config: Config::default(),
            stacks: vec![
                stack("database", "database", "database", true),
                stack("database-pg", "database/pg", "database", true),
                stack("genai-ollama", "genai/ollama", "genai", true),
                stack("genai-webui", "genai/webui", "genai", true),
                stack("media-plex", "media/plex", "media", false),
                stack("media-webui", "media/webui", "media", true),
                stack("panel", "panel", "panel", true),
            ],
            errors: vec![StackError {
                stack: "broken".into(),
                file: PathBuf::from("/srv/compose/broken/compose.yaml"),
                message: "line 3: bad indentation".into(),
            }],
            layers: vec![
                layer("panel", &[], &[], &["panel"]),
                layer("database", &["panel"], &[], &["database", "database-pg"]),
                layer("genai", &["panel"], &["database"], &["genai-ollama", "genai-webui"]),
                layer("media", &["panel"], &[], &["media-webui"]),
            ],
            tree_available: true,
            inputs: Default::default(),
        }
    }

    fn ok(name: &str) -> Target {
        target(&model(), name).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn every_kind_of_name_resolves() {
        assert_eq!(ok("genai-ollama"), Target::Stack("genai-ollama".into()));
        assert_eq!(ok("genai/ollama"), Target::Stack("genai-ollama".into()));
        assert_eq!(ok("genai/ollama/"), Target::Stack("genai-ollama".into()));
        assert_eq!(ok("/srv/compose/genai/ollama"), Target::Stack("genai-ollama".into()));
        assert_eq!(ok("ollama"), Target::Stack("genai-ollama".into()));
        assert_eq!(ok("genai"), Target::Layer("genai".into()));
        assert_eq!(ok("genai/"), Target::Layer("genai".into()));
        assert_eq!(ok("homelab-genai.target"), Target::Layer("genai".into()));
        assert_eq!(ok("homelab-genai-webui.service"), Target::Stack("genai-webui".into()));
        assert_eq!(ok("homelab.target"), Target::Root);
        assert_eq!(ok("homelab"), Target::Root);
        assert_eq!(
            ok("homelab-networks.service"),
            Target::Unit("homelab-networks.service".into())
        );
        assert_eq!(
            ok("media-plex"),
            Target::Stack("media-plex".into()),
            "disabled stacks have units too"
        );
        assert_eq!(ok("layer:media"), Target::Layer("media".into()));
        assert_eq!(ok("stack:ollama"), Target::Stack("genai-ollama".into()));
    }

    #[test]
    fn a_stack_alone_in_its_namesake_layer_is_the_stack() {
        assert_eq!(ok("panel"), Target::Stack("panel".into()));
        assert_eq!(ok("layer:panel"), Target::Layer("panel".into()));
    }

    #[test]
    fn a_stack_sharing_its_name_with_a_bigger_layer_is_ambiguous() {
        let e = target(&model(), "database").unwrap_err();
        let ResolveError::Ambiguous { name, candidates } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(name, "database");
        assert_eq!(
            candidates,
            &vec![
                "layer database (homelab-database.target)".to_string(),
                "stack database (homelab-database.service, database)".to_string(),
            ]
        );
        let msg = e.to_string();
        assert!(
            msg.contains("stack:database") && msg.contains("layer:database"),
            "{msg}"
        );
        assert_eq!(ok("stack:database"), Target::Stack("database".into()));
        assert_eq!(ok("homelab-database.target"), Target::Layer("database".into()));
    }

    #[test]
    fn a_short_name_shared_by_two_stacks_lists_both() {
        let e = target(&model(), "webui").unwrap_err();
        assert_eq!(
            e,
            ResolveError::Ambiguous {
                name: "webui".into(),
                candidates: vec![
                    "stack genai-webui (homelab-genai-webui.service, genai/webui)".into(),
                    "stack media-webui (homelab-media-webui.service, media/webui)".into(),
                ]
            }
        );
        assert_eq!(ok("media/webui"), Target::Stack("media-webui".into()));
    }

    #[test]
    fn unknown_names_list_what_exists() {
        let e = target(&model(), "jellyfin").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("\"jellyfin\" is no stack"), "{msg}");
        assert!(msg.contains("stacks: database, database-pg, genai-ollama"), "{msg}");
        assert!(msg.contains("layers: panel, database, genai, media"), "{msg}");
        assert!(matches!(
            target(&model(), "docker.service"),
            Err(ResolveError::Unknown { .. })
        ));
        assert!(matches!(
            target(&model(), "layer:nope"),
            Err(ResolveError::Unknown { .. })
        ));
        assert!(matches!(target(&model(), ""), Err(ResolveError::Unknown { .. })));
        let e = target(&model(), "broken").unwrap_err();
        assert_eq!(
            e,
            ResolveError::InError {
                name: "broken".into(),
                message: "line 3: bad indentation".into()
            }
        );
    }

    #[test]
    fn resolve_all_defaults_to_the_root_and_drops_repeats() {
        let m = model();
        assert_eq!(targets(&m, &[]).unwrap(), vec![Target::Root]);
        let names: Vec<String> = ["genai/ollama", "genai-ollama", "media"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            targets(&m, &names).unwrap(),
            vec![Target::Stack("genai-ollama".into()), Target::Layer("media".into())]
        );
        assert!(targets(&m, &["nope".to_string()]).is_err());
    }

    #[test]
    fn units_and_stacks_of_targets() {
        let m = model();
        assert_eq!(Target::Layer("media".into()).unit(&m), "homelab-media.target");
        assert_eq!(Target::Root.unit(&m), "homelab.target");
        let ids = |v: Vec<&Stack>| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(Target::Layer("media".into()).stacks(&m, false)),
            vec!["media-webui"]
        );
        assert_eq!(
            ids(Target::Layer("media".into()).stacks(&m, true)),
            vec!["media-plex", "media-webui"]
        );
        assert_eq!(Target::Root.stacks(&m, false).len(), 6);
        assert_eq!(ids(Target::Stack("panel".into()).stacks(&m, false)), vec!["panel"]);
    }

    #[test]
    fn wanted_units_follow_layer_dependencies_in_start_order() {
        let m = model();
        assert_eq!(layer_closure(&m, "genai"), vec!["panel", "database", "genai"]);
        assert_eq!(
            wanted_units(&m, &Target::Layer("genai".into())),
            vec![
                "homelab-panel.target",
                "homelab-panel.service",
                "homelab-database.target",
                "homelab-database.service",
                "homelab-database-pg.service",
                "homelab-genai-ollama.service",
                "homelab-genai-webui.service",
            ]
        );
        // A stack: the layers its layer depends on, not its own layer.
        assert_eq!(
            wanted_units(&m, &Target::Stack("media-webui".into())),
            vec!["homelab-panel.target", "homelab-panel.service"]
        );
        let root = wanted_units(&m, &Target::Root);
        assert!(root.contains(&"homelab-media.target".to_string()));
        assert!(
            !root.contains(&"homelab-media-plex.service".to_string()),
            "disabled stacks are not wanted"
        );
        assert!(wanted_units(&m, &Target::Unit("homelab-networks.service".into())).is_empty());
    }
}
