//! The preparation unit of a stack: `<prefix>-<stack>-prepare.service`, a oneshot that
//! pulls the stack's missing images and creates its containers (`hlsys supervise
//! --prepare`), so that when the stack's turn comes in the start order only the start
//! is left.
//!
//! Why a unit per stack rather than one shared unit: each preparation is ordered only
//! after docker.service and the networks unit (and the GPU check for a GPU stack, so a
//! held-back GPU stack creates nothing), never after another stack, so every stack of a
//! transaction prepares at once, from its first second; and a stack waits for its own
//! preparation alone (`Requires=` + `After=`), not for the slowest pull of the tree.
//! The bound on concurrent pulls (`max_parallel_pulls`) is applied at run time by the
//! preparations themselves (slots under /run/hlsys), so units stay independent of it.
//!
//! Only a stack that waits for others has one: a stack ordered after nothing (its layer
//! after no other layer, no stack dependency) starts at once, so a preparation would only
//! run in front of its start, on the critical path (README, "Measurements"). Its
//! supervisor prepares itself instead (`compose up --pull never`, and on a missing image
//! the same pull slot and `compose create` as a preparation unit;
//! src/supervise/prepare.rs).
//!
//! `RemainAfterExit=yes` + `PartOf=` the stack unit: while the stack runs, starting it
//! again (a target started twice) finds its preparation active and runs nothing; a stop
//! or restart of the stack (whose `docker compose down` removes the containers) takes
//! the preparation with it, so the next start prepares again.

use crate::model::{Layer, Model, Stack, StackError};

/// Whether `stack` (a member of `layer`) gets a preparation unit: only when its start waits
/// for other stacks, through its layer's ordering or its own dependencies.
pub fn has_unit(layer: &Layer, stack: &Stack) -> bool {
    !(layer.after.is_empty() && layer.requires.is_empty() && stack.requires.is_empty() && stack.wants.is_empty())
}

/// [`has_unit`] for a stack of `model` (false for a stack whose layer is unknown: it gets no
/// units at all).
pub fn stack_has_unit(model: &Model, stack: &Stack) -> bool {
    model.layer(&stack.layer).is_some_and(|l| has_unit(l, stack))
}

/// `<prefix>-<stack>-prepare.service`.
pub fn unit_name(prefix: &str, stack: &str) -> String {
    format!("{prefix}-{stack}-prepare.service")
}

/// Stacks whose own unit name is another stack's preparation unit (stack `a` and a
/// stack `a-prepare`, from the directory `a/prepare`): systemd would load one file for
/// both, so such a stack is left out with this error. The preparation keeps the name,
/// since every stack has one.
pub fn name_clashes(model: &Model) -> Vec<StackError> {
    let prefix = &model.config.unit_prefix;
    let prepares: std::collections::HashSet<String> = model.stacks.iter().map(|s| unit_name(prefix, &s.id)).collect();
    model
        .stacks
        .iter()
        .filter(|s| prepares.contains(&s.unit))
        .map(|s: &Stack| StackError {
            stack: s.id.clone(),
            file: s.compose_file.clone(),
            message: format!(
                "its unit name {} is the preparation unit of another stack; rename the directory",
                s.unit
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Config;
    use std::path::PathBuf;

    fn stack(id: &str) -> Stack {
        Stack {
            id: id.into(),
            layer: "l".into(),
            dir: PathBuf::from("/srv/compose").join(id),
            compose_file: PathBuf::from("/srv/compose").join(id).join("compose.yaml"),
            compose_files: Vec::new(),
            project: id.into(),
            env_files: Vec::new(),
            services: Vec::new(),
            networks: Vec::new(),
            gpu: false,
            requires: Vec::new(),
            wants: Vec::new(),
            unit: format!("homelab-{id}.service"),
            enabled: true,
            timeout_start_sec: None,
            service_details: Vec::new(),
            secret_files: Vec::new(),
        }
    }

    #[test]
    fn a_stack_named_like_another_stacks_preparation_is_the_clash() {
        assert_eq!(
            unit_name("homelab", "genai-webui"),
            "homelab-genai-webui-prepare.service"
        );
        let model = Model {
            config: Config::default(),
            stacks: vec![stack("app"), stack("app-prepare"), stack("db")],
            errors: Vec::new(),
            layers: Vec::new(),
            tree_available: true,
            inputs: Default::default(),
        };
        let clashes = name_clashes(&model);
        assert_eq!(clashes.len(), 1, "{clashes:?}");
        assert_eq!(clashes[0].stack, "app-prepare");
        assert!(clashes[0].message.contains("homelab-app-prepare.service"));
    }
}
