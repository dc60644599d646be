//! The resolved model of a stack tree: what every other part of hlsys reads.
//!
//! Built by [`crate::tree::build`] from a [`Config`]; pure data, serialisable so
//! `hlsys stacks --json` and the generator's report can print it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::compose::service::Service;
use crate::config::Config;

/// The names of hlsys's own services, `<prefix>-<name>.service`: the networks, the GPU
/// check, the wait for a late tree, swarm mode's deploy.
pub const NETWORKS_UNIT: &str = "networks";
pub const GPU_UNIT: &str = "gpu";
pub const TREE_UNIT: &str = "tree";
pub const SWARM_UNIT: &str = "swarm";
/// The "homelab ready" message (`[notify] on_ready`, crate::units::notify).
pub const NOTIFY_READY_UNIT: &str = "notify-ready";
/// No stack id may be one of these, or its unit and the fixed one would be one file.
pub const FIXED_UNITS: [&str; 5] = [NETWORKS_UNIT, GPU_UNIT, TREE_UNIT, SWARM_UNIT, NOTIFY_READY_UNIT];

/// A stack: one Compose project, one `<prefix>-<id>.service`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stack {
    pub id: String,
    pub layer: String,
    pub dir: PathBuf,
    /// The first of `compose_files`.
    pub compose_file: PathBuf,
    /// The files Compose merges for this stack, in order: the stack's compose file and
    /// its override file, or `COMPOSE_FILE` from its env files. `hlsys supervise` passes
    /// exactly these (`--file` each).
    pub compose_files: Vec<PathBuf>,
    pub project: String,
    /// Env files in precedence order, lowest first, exactly as passed to
    /// `docker compose --env-file`.
    pub env_files: Vec<PathBuf>,
    /// Names of the services Compose runs by default.
    pub services: Vec<String>,
    /// Docker network names joined by those services (sorted, unique).
    pub networks: Vec<String>,
    pub gpu: bool,
    /// Stack ids this stack hard-requires.
    pub requires: Vec<String>,
    /// Stack ids this stack wants.
    pub wants: Vec<String>,
    pub unit: String,
    pub enabled: bool,
    /// `TimeoutStartSec=` for the unit, when configured.
    #[serde(skip)]
    pub timeout_start_sec: Option<u64>,
    /// Per-service details (not part of `hlsys stacks --json`).
    #[serde(skip)]
    pub service_details: Vec<Service>,
    /// Top-level `secrets:` files (absolute).
    #[serde(skip)]
    pub secret_files: Vec<PathBuf>,
}

/// A stack (or a path that failed to become one) that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackError {
    /// Stack id, or the path when no id could be made.
    pub stack: String,
    /// The file at fault (absolute).
    pub file: PathBuf,
    pub message: String,
}

/// A layer: one `<prefix>-<layer>.target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    pub name: String,
    pub target: String,
    /// Layers this one is ordered after and wants.
    pub after: Vec<String>,
    /// Layers this one requires (and is ordered after).
    pub requires: Vec<String>,
    /// Member stack ids (valid ones only), sorted.
    pub stacks: Vec<String>,
}

/// Everything the generator and the CLI need to know about the tree.
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    #[serde(skip)]
    pub config: Config,
    /// Valid stacks, sorted by id.
    pub stacks: Vec<Stack>,
    pub errors: Vec<StackError>,
    /// Layers in start order (a layer after everything it depends on).
    #[serde(skip)]
    pub layers: Vec<Layer>,
    /// Whether the stack tree was there (a non-empty directory) when the model was built;
    /// when it is not, the generator waits for it to be mounted.
    #[serde(skip)]
    pub tree_available: bool,
    /// Files read while building, with a content fingerprint, for staleness checks.
    #[serde(skip)]
    pub inputs: BTreeMap<PathBuf, String>,
}

impl Model {
    pub fn stack(&self, id: &str) -> Option<&Stack> {
        self.stacks.iter().find(|s| s.id == id)
    }

    pub fn layer(&self, name: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// How many layers come before `layer` in the start order: 0 for a layer ordered after
    /// none, else one more than the deepest of those it is ordered after. Pull slots go to
    /// lower depths first (src/supervise/pull_slots.rs).
    pub fn layer_depth(&self, layer: &str) -> u32 {
        let mut depth: BTreeMap<&str, u32> = BTreeMap::new();
        // `layers` is in start order: a layer's dependencies come before it.
        for l in &self.layers {
            let d = l
                .after
                .iter()
                .chain(&l.requires)
                .map(|dep| depth.get(dep.as_str()).map_or(1, |d| d + 1))
                .max()
                .unwrap_or(0);
            depth.insert(&l.name, d);
            if l.name == layer {
                return d;
            }
        }
        0
    }

    /// `homelab.target`
    pub fn root_target(&self) -> String {
        format!("{}.target", self.config.unit_prefix)
    }

    /// Whether some enabled stack needs a GPU (then the GPU check unit is generated).
    pub fn needs_gpu(&self) -> bool {
        self.stacks.iter().any(|s| s.enabled && s.gpu)
    }
}

/// `homelab-<layer>.target`
pub fn layer_target(prefix: &str, layer: &str) -> String {
    format!("{prefix}-{layer}.target")
}
