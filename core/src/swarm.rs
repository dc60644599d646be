//! Swarm mode: the `[swarm]` table of hlsys.toml and the order `hlsys swarm deploy`
//! follows. Pure; the Docker side is `src/swarm.rs`, the Compose → Swarm document
//! adjustment is [`crate::swarm_adjust`].
//!
//! Swarm schedules the services of one stack; what it lacks is order across stacks.
//! hlsys deploys layer by layer (the layers' start order), waits until every service of
//! a layer runs (healthy, where it has a healthcheck), and does not deploy a stack that
//! requires (`Requires=`: a layer's `requires`, a stack's `requires`) something that did
//! not converge. What only wants it is deployed anyway, as systemd would start it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Layer, Model};
pub use crate::redact::{mask, HIDDEN};

/// The node label a GPU service is constrained to unless `[swarm] gpu_label` says otherwise.
pub const DEFAULT_GPU_LABEL: &str = "hlsys.gpu";
/// Seconds a layer may take to converge unless `[swarm] timeout_sec` says otherwise.
pub const DEFAULT_LAYER_TIMEOUT_SEC: u64 = 300;
/// Service label holding the digest of the document a service was deployed from: a
/// second deploy of an unchanged stack is skipped (no service update, no task restart).
pub const DIGEST_LABEL: &str = "io.hlsys.swarm.digest";

/// What to do with bind mounts whose source is inside the stack tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TreeBinds {
    /// Constrain the service to the node that deploys (it holds the tree).
    #[default]
    Pin,
    /// Make the stack an error.
    Refuse,
}

/// `docker stack deploy --resolve-image`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResolveImage {
    #[default]
    Always,
    Changed,
    Never,
}

impl ResolveImage {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolveImage::Always => "always",
            ResolveImage::Changed => "changed",
            ResolveImage::Never => "never",
        }
    }
}

/// `[swarm]` in hlsys.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmConfig {
    /// GPU services get `node.labels.<gpu_label> == true`.
    #[serde(default = "default_gpu_label")]
    pub gpu_label: String,
    /// Generic resource kind to reserve for GPU services (e.g. `NVIDIA-GPU`), used only
    /// when some node advertises it (dockerd `node-generic-resources`).
    #[serde(default = "default_gpu_resource")]
    pub gpu_resource: String,
    /// Seconds each layer may take to converge.
    #[serde(default = "default_timeout")]
    pub timeout_sec: u64,
    /// Per-layer overrides of `timeout_sec`.
    #[serde(default)]
    pub layer_timeout_sec: BTreeMap<String, u64>,
    #[serde(default)]
    pub tree_binds: TreeBinds,
    #[serde(default)]
    pub resolve_image: ResolveImage,
    /// Generate `<prefix>-swarm.service` (runs `hlsys swarm deploy` at boot) instead of
    /// the per-stack units.
    #[serde(default)]
    pub deploy_at_boot: bool,
}

fn default_gpu_label() -> String {
    DEFAULT_GPU_LABEL.to_string()
}
fn default_gpu_resource() -> String {
    "NVIDIA-GPU".to_string()
}
fn default_timeout() -> u64 {
    DEFAULT_LAYER_TIMEOUT_SEC
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            gpu_label: default_gpu_label(),
            gpu_resource: default_gpu_resource(),
            timeout_sec: default_timeout(),
            layer_timeout_sec: BTreeMap::new(),
            tree_binds: TreeBinds::default(),
            resolve_image: ResolveImage::default(),
            deploy_at_boot: false,
        }
    }
}

/// Why a `[swarm]` value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwarmConfigError {
    #[error("swarm.gpu_label {0:?}: only ASCII letters, digits, '.', '-' and '_' are allowed")]
    Label(String),
    #[error("swarm.gpu_resource {0:?}: only ASCII letters, digits, '.', '-' and '_' are allowed")]
    Resource(String),
    #[error("swarm.{0}: use a positive number of seconds")]
    Timeout(String),
}

impl SwarmConfig {
    /// Labels and kinds go into placement expressions: no spaces, operators or quotes.
    pub fn validate(&self) -> Result<(), SwarmConfigError> {
        let word = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        };
        if !word(&self.gpu_label) {
            return Err(SwarmConfigError::Label(self.gpu_label.clone()));
        }
        if !word(&self.gpu_resource) {
            return Err(SwarmConfigError::Resource(self.gpu_resource.clone()));
        }
        if self.timeout_sec == 0 {
            return Err(SwarmConfigError::Timeout("timeout_sec".into()));
        }
        if let Some((l, _)) = self.layer_timeout_sec.iter().find(|(_, t)| **t == 0) {
            return Err(SwarmConfigError::Timeout(format!("layer_timeout_sec.{l}")));
        }
        Ok(())
    }

    pub fn layer_timeout(&self, layer: &str) -> u64 {
        self.layer_timeout_sec.get(layer).copied().unwrap_or(self.timeout_sec)
    }
}

/// Hex SHA-256 of a document as deployed (serde_json maps are sorted: stable).
pub fn digest(document: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(document).expect("a JSON value serialises");
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The stack ids that must not be deployed because something they require did not
/// converge (or was itself held back): a stack's own `requires`, and every stack of a
/// layer that requires a layer with a failed stack. Wants never hold anything back.
pub fn held_back(model: &Model, failed: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut held: BTreeMap<String, String> = BTreeMap::new();
    // Until nothing changes: a stack may require one that sorts after it in its layer.
    loop {
        let before = held.len();
        for layer in &model.layers {
            hold_layer(model, layer, failed, &mut held);
        }
        if held.len() == before {
            return held;
        }
    }
}

/// One pass over a layer's stacks for [`held_back`]; a stack keeps its first reason.
fn hold_layer(model: &Model, layer: &Layer, failed: &BTreeSet<String>, held: &mut BTreeMap<String, String>) {
    let bad = |id: &String, held: &BTreeMap<String, String>| failed.contains(id) || held.contains_key(id);
    let layer_cause = layer.requires.iter().find_map(|req| {
        model
            .stacks
            .iter()
            .find(|s| &s.layer == req && bad(&s.id, held))
            .map(|s| {
                format!(
                    "layer {} requires layer {req}, whose stack {} did not converge",
                    layer.name, s.id
                )
            })
    });
    for id in &layer.stacks {
        let Some(stack) = model.stack(id) else { continue };
        if held.contains_key(id) {
            continue;
        }
        let cause = layer_cause.clone().or_else(|| {
            stack
                .requires
                .iter()
                .find(|r| bad(r, held))
                .map(|r| format!("requires stack {r}, which did not converge"))
        });
        if let Some(c) = cause {
            held.insert(id.clone(), c);
        }
    }
}

/// The stacks of a layer in waves: a stack comes in a later wave than every stack of its
/// layer that it requires, so it is deployed only once they converged (or held back when
/// they did not). Wants do not wait: a wanted stack that never converges (a GPU stack on
/// a swarm without a GPU node) must not hold up the stacks that only want it.
pub fn waves(model: &Model, layer: &Layer) -> Vec<Vec<String>> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut left: Vec<String> = layer.stacks.clone();
    let mut out = Vec::new();
    while !left.is_empty() {
        let (ready, wait): (Vec<String>, Vec<String>) = left.into_iter().partition(|id| {
            model
                .stack(id)
                .is_none_or(|s| s.requires.iter().all(|r| !layer.stacks.contains(r) || done.contains(r)))
        });
        if ready.is_empty() {
            // Only a cycle leaves nothing ready, and the graph already left cycles out.
            out.push(wait);
            break;
        }
        done.extend(ready.iter().cloned());
        out.push(ready);
        left = wait;
    }
    out
}

/// A document fit for printing: every `environment` value hidden, and every other string
/// with a value of the stack's env files in it masked. Compose has already interpolated
/// those values everywhere, and no report may carry them. Values under 4 characters are
/// left: masking every "1" or "yes" would hide the document, not a secret.
pub fn redact(document: &serde_json::Value, env_values: &[String]) -> serde_json::Value {
    use serde_json::Value;
    let mut doc = document.clone();
    if let Some(services) = doc.get_mut("services").and_then(Value::as_object_mut) {
        for svc in services.values_mut() {
            match svc.get_mut("environment") {
                Some(Value::Object(env)) => env.values_mut().for_each(|v| {
                    if !v.is_null() {
                        *v = Value::String(HIDDEN.into());
                    }
                }),
                Some(Value::Array(list)) => list.iter_mut().for_each(|v| {
                    if let Some((k, _)) = v.as_str().and_then(|s| s.split_once('=')) {
                        *v = Value::String(format!("{k}={HIDDEN}"));
                    }
                }),
                _ => {}
            }
        }
    }
    mask_strings(&mut doc, env_values);
    doc
}

fn mask_strings(v: &mut serde_json::Value, env_values: &[String]) {
    use serde_json::Value;
    match v {
        Value::String(s) => *s = mask(s, env_values),
        Value::Array(a) => a.iter_mut().for_each(|x| mask_strings(x, env_values)),
        Value::Object(o) => o.values_mut().for_each(|x| mask_strings(x, env_values)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_checks() {
        let c: SwarmConfig = toml::from_str("").unwrap();
        assert_eq!(c, SwarmConfig::default());
        assert_eq!(c.layer_timeout("any"), DEFAULT_LAYER_TIMEOUT_SEC);
        let c: SwarmConfig = toml::from_str("gpu_label = \"gpu node\"").unwrap();
        assert!(c.validate().is_err());
        let c: SwarmConfig = toml::from_str("layer_timeout_sec = { genai = 0 }").unwrap();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "swarm.layer_timeout_sec.genai: use a positive number of seconds"
        );
        let c: SwarmConfig = toml::from_str("tree_binds = \"refuse\"\nresolve_image = \"never\"").unwrap();
        assert_eq!(
            (c.tree_binds, c.resolve_image),
            (TreeBinds::Refuse, ResolveImage::Never)
        );
    }

    #[test]
    fn redact_hides_environment_and_env_values() {
        let doc = serde_json::json!({"services": {"a": {
            "environment": {"TOKEN": "s3cret-token", "EMPTY": null},
            "image": "app:s3cret-token", "command": ["run", "yes"]}}});
        let r = redact(&doc, &["s3cret-token".into(), "yes".into()]);
        assert_eq!(
            r,
            serde_json::json!({"services": {"a": {
                "environment": {"TOKEN": HIDDEN, "EMPTY": null},
                "image": format!("app:{HIDDEN}"), "command": ["run", "yes"]}}})
        );
    }

    #[test]
    fn digest_is_stable_and_sensitive() {
        let a = serde_json::json!({"b": 1, "a": [1, 2]});
        let b = serde_json::json!({"a": [1, 2], "b": 1});
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&serde_json::json!({"a": [2, 1], "b": 1})));
    }
}
