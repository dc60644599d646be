//! hlsys owns the restarts of the stacks it runs: their containers carry no Docker restart
//! policy, so dockerd never starts one on its own (after a power cut, a crash or a
//! restart of docker.service) before systemd's order says so. The user's files keep their
//! `restart:`; the supervisor applies it itself ([`super::restarts`]).
//!
//! How: the policy of each container is set to "no" over the Engine API (a container
//! update), never by recreating it: the policy is not part of Compose's config hash, so
//! Compose leaves such a container alone at every later `up` and never puts the policy
//! back when it starts it (only a container Compose recreates comes back with the declared
//! one, and is taken over again when it is created). A last `--file` setting `restart:
//! "no"` was the alternative; it changes the config hash, so every plain `docker compose
//! up` by the user, Portainer or Dockge and every hlsys start would recreate the
//! containers in turn.
//!
//! Containers of another Compose project made from the same directory (a plain `docker
//! compose up` in a nested stack directory names its project after the directory alone)
//! are refused rather than copied: a second project would start with new, empty named
//! volumes next to the user's.

use anyhow::{bail, Context, Result};
use bollard::models::{ContainerUpdateBody, RestartPolicy, RestartPolicyNameEnum};
use bollard::Docker;

use crate::docker::{compose_containers, container_name, label_of, PROJECT_LABEL};
use hlsys_core::model::Stack;

/// The label Compose gives a container: the project directory it was made from.
pub const WORKING_DIR_LABEL: &str = "com.docker.compose.project.working_dir";

/// A container's restart policy as Docker reports it (`no` when it has none).
pub async fn policy_of(docker: &Docker, id: &str) -> Result<String> {
    let info = docker
        .inspect_container(id, None)
        .await
        .with_context(|| format!("inspecting container {id}"))?;
    let name = info
        .host_config
        .and_then(|h| h.restart_policy)
        .and_then(|r| r.name)
        .map(|n| n.to_string())
        .unwrap_or_default();
    Ok(if name.is_empty() { "no".into() } else { name })
}

/// Sets the container's restart policy to "no" (nothing else of it changes).
pub async fn clear_policy(docker: &Docker, id: &str) -> Result<()> {
    let body = ContainerUpdateBody {
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };
    docker
        .update_container(id, body)
        .await
        .with_context(|| format!("setting the restart policy of container {id} to \"no\""))
}

/// Every container of `project` that still has a restart policy gets "no"; returns
/// how many did.
pub async fn clear_policies(docker: &Docker, project: &str) -> Result<usize> {
    let mut changed = 0;
    for c in compose_containers(docker, Some(project)).await? {
        let Some(id) = c.id.as_deref() else { continue };
        if policy_of(docker, id).await? != "no" {
            clear_policy(docker, id).await?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Other Compose projects with containers made from `stack`'s directory, with one of
/// their containers' names each.
pub async fn other_projects_here(docker: &Docker, stack: &Stack) -> Result<Vec<(String, String)>> {
    let dir = stack.dir.to_string_lossy();
    let mut out: Vec<(String, String)> = Vec::new();
    for c in compose_containers(docker, None).await? {
        let project = label_of(&c, PROJECT_LABEL).unwrap_or_default();
        if label_of(&c, WORKING_DIR_LABEL) == Some(dir.as_ref())
            && project != stack.project
            && !out.iter().any(|(p, _)| p == project)
        {
            out.push((project.to_string(), container_name(&c)));
        }
    }
    Ok(out)
}

/// Why the stack is not started while other projects from its directory exist.
pub fn second_copy_refusal(stack: &Stack, others: &[(String, String)]) -> String {
    let names: Vec<String> = others.iter().map(|(p, c)| format!("{p} (container {c})")).collect();
    format!(
        "not started: containers of another Compose project made from {} exist: {}. hlsys runs \
         this stack as project {}, and starting it would make a second copy with new, empty \
         named volumes. Stop the other copy (`docker compose -p PROJECT down` keeps its \
         volumes) and move its data to the volumes of project {}, then start again",
        stack.dir.display(),
        names.join(", "),
        stack.project,
        stack.project
    )
}

/// Before anything of the stack is created or started: refuses a second copy of the stack
/// (see above) and takes the containers it has over from
/// Docker's restart manager (those made by a plain `docker compose up`, or by Compose
/// recreating one since).
pub async fn take_over(docker: &Docker, stack: &Stack) -> Result<()> {
    let others = other_projects_here(docker, stack).await?;
    if !others.is_empty() {
        bail!(second_copy_refusal(stack, &others));
    }
    let n = clear_policies(docker, &stack.project).await?;
    if n > 0 {
        eprintln!(
            "took over {n} containers: their Docker restart policy is now \"no\", hlsys applies the declared one"
        );
    }
    Ok(())
}
