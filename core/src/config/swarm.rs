//! `[swarm]` in hlsys.toml: how `hlsys swarm deploy` places GPU services, how long a layer
//! may take to converge, what happens to bind mounts inside the tree, and whether the boot
//! deploys to Swarm instead of generating per-stack units.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The node label a GPU service is constrained to unless `[swarm] gpu_label` says otherwise.
pub const DEFAULT_GPU_LABEL: &str = "hlsys.gpu";
/// Seconds a layer may take to converge unless `[swarm] timeout_sec` says otherwise.
pub const DEFAULT_LAYER_TIMEOUT_SEC: u64 = 300;
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
}
