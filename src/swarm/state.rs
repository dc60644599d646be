//! What Swarm says about a deployed stack: its services, their replicas and tasks, read
//! through the Engine API. Used by `hlsys swarm deploy` (convergence) and `status`.
//!
//! A task of a service with a healthcheck stays `starting` until the container is
//! healthy, and only then turns `running` (Swarm's executor waits for the health
//! check), so "every desired task running" already means "healthy" where one exists.

use std::collections::HashMap;

use anyhow::{Context, Result};
use bollard::query_parameters::{ListNodesOptions, ListServicesOptions, ListTasksOptions};
use bollard::Docker;
use serde::Serialize;

use hlsys_core::model::Stack;

/// Label `docker stack deploy` puts on every object of a stack.
pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";

/// How Swarm's scheduler says that no node can take a task
/// (`no suitable node (scheduling constraints not satisfied on 1 node)`).
const NO_SUITABLE_NODE: &str = "no suitable node";

/// One task of a service, as `docker service ps` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskState {
    pub id: String,
    pub slot: Option<i64>,
    /// Hostname of the node, empty while unscheduled.
    pub node: String,
    pub state: String,
    pub desired_state: String,
    /// Swarm's message ("started", "no suitable node (…)", …).
    pub message: String,
    pub error: Option<String>,
    pub created_at: Option<String>,
    /// For a service with a healthcheck: `healthy` once running (Swarm holds a task in
    /// `starting` until its container is healthy), `starting`, or `unhealthy` when Swarm
    /// ended it for that; `None` without a healthcheck.
    pub health: Option<String>,
    /// When the task reached `state`.
    pub since: Option<String>,
    pub container_id: Option<String>,
}

/// One service of a stack.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceState {
    pub name: String,
    pub desired: u64,
    pub running: u64,
    pub has_healthcheck: bool,
    /// The digest label hlsys put on it (`io.hlsys.swarm.digest`).
    pub digest: Option<String>,
    /// Tasks Swarm still wants running, then the most recent others.
    pub tasks: Vec<TaskState>,
}

impl ServiceState {
    pub fn converged(&self) -> bool {
        self.running >= self.desired
    }

    /// Swarm's scheduler found no node for it: every task it wants running and that is
    /// not is `pending` with "no suitable node" (a placement constraint, a GPU label,
    /// resources no node has). That changes only when the nodes do, so waiting for it
    /// is waiting for the timeout.
    pub fn unschedulable(&self) -> bool {
        let mut waiting = self
            .tasks
            .iter()
            .filter(|t| t.desired_state == "running" && t.state != "running")
            .peekable();
        !self.converged()
            && waiting.peek().is_some()
            && waiting.all(|t| {
                t.state == "pending"
                    && [t.error.as_deref().unwrap_or(""), t.message.as_str()]
                        .iter()
                        .any(|m| m.contains(NO_SUITABLE_NODE))
            })
    }

    /// Why it is not converged: the errors and messages of its tasks not yet running.
    pub fn problems(&self) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|t| t.desired_state == "running" && t.state != "running")
            .map(|t| {
                let why = t.error.clone().unwrap_or_else(|| t.message.clone());
                format!("{} task {} {}: {why}", self.name, t.slot.unwrap_or(0), t.state)
            })
            .collect()
    }
}

/// Hostname of every node by id.
pub async fn node_names(docker: &Docker) -> Result<HashMap<String, String>> {
    let nodes = docker
        .list_nodes(None::<ListNodesOptions>)
        .await
        .context("cannot list Swarm nodes")?;
    Ok(nodes
        .into_iter()
        .filter_map(|n| Some((n.id?, n.description.and_then(|d| d.hostname).unwrap_or_default())))
        .collect())
}

/// The services of a stack (by its namespace label), sorted by name.
pub async fn stack_services(
    docker: &Docker,
    stack: &Stack,
    nodes: &HashMap<String, String>,
) -> Result<Vec<ServiceState>> {
    let project = &stack.project;
    let filters = HashMap::from([("label".to_string(), vec![format!("{NAMESPACE_LABEL}={project}")])]);
    let services = docker
        .list_services(Some(ListServicesOptions {
            filters: Some(filters),
            status: Some(true),
        }))
        .await
        .with_context(|| format!("cannot list the services of stack {project}"))?;
    let mut out = Vec::new();
    for s in services {
        let spec = s.spec.unwrap_or_default();
        let name = spec.name.clone().unwrap_or_default();
        let status = s.service_status.unwrap_or_default();
        // From hlsys's model of the stack, not the service spec: the Engine names the key
        // `Healthcheck`, bollard reads `HealthCheck`, so the spec's is always missing.
        let has_healthcheck = name
            .strip_prefix(&format!("{project}_"))
            .is_some_and(|short| stack.service_details.iter().any(|d| d.name == short && d.healthcheck));
        out.push(ServiceState {
            tasks: with_health(tasks(docker, &name, nodes).await?, has_healthcheck),
            desired: status.desired_tasks.unwrap_or(0),
            running: status.running_tasks.unwrap_or(0),
            has_healthcheck,
            digest: spec
                .labels
                .and_then(|l| l.get(hlsys_core::swarm::DIGEST_LABEL).cloned()),
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn with_health(mut tasks: Vec<TaskState>, has_healthcheck: bool) -> Vec<TaskState> {
    if has_healthcheck {
        for t in &mut tasks {
            t.health = match t.state.as_str() {
                "running" => Some("healthy".into()),
                "starting" => Some("starting".into()),
                _ if t.error.as_deref().is_some_and(|e| e.contains("unhealthy")) => Some("unhealthy".into()),
                _ => None,
            };
        }
    }
    tasks
}

/// Tasks of one service: those Swarm wants running first, then the five latest others
/// (their errors say why earlier attempts ended).
async fn tasks(docker: &Docker, service: &str, nodes: &HashMap<String, String>) -> Result<Vec<TaskState>> {
    let filters = HashMap::from([("service".to_string(), vec![service.to_string()])]);
    let list = docker
        .list_tasks(Some(ListTasksOptions { filters: Some(filters) }))
        .await
        .with_context(|| format!("cannot list the tasks of service {service}"))?;
    let mut tasks: Vec<TaskState> = list
        .into_iter()
        .map(|t| {
            let status = t.status.unwrap_or_default();
            TaskState {
                id: t.id.unwrap_or_default(),
                slot: t.slot,
                node: t.node_id.and_then(|n| nodes.get(&n).cloned()).unwrap_or_default(),
                state: status.state.map(|s| s.to_string()).unwrap_or_default(),
                desired_state: t.desired_state.map(|s| s.to_string()).unwrap_or_default(),
                message: status.message.unwrap_or_default(),
                error: status.err.filter(|e| !e.is_empty()),
                created_at: t.created_at,
                health: None,
                since: status.timestamp,
                container_id: status.container_status.and_then(|c| c.container_id),
            }
        })
        .collect();
    tasks.sort_by(|a, b| {
        (b.desired_state == "running")
            .cmp(&(a.desired_state == "running"))
            .then_with(|| b.created_at.cmp(&a.created_at))
    });
    let wanted = tasks.iter().filter(|t| t.desired_state == "running").count();
    tasks.truncate(wanted + 5);
    Ok(tasks)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn task(state: &str, err: Option<&str>) -> TaskState {
        TaskState {
            id: "t".into(),
            slot: Some(1),
            node: String::new(),
            state: state.into(),
            desired_state: "running".into(),
            message: if state == "pending" {
                "pending task scheduling".into()
            } else {
                state.into()
            },
            error: err.map(String::from),
            created_at: None,
            health: None,
            since: None,
            container_id: None,
        }
    }

    pub(crate) fn service(running: u64, tasks: Vec<TaskState>) -> ServiceState {
        ServiceState {
            name: "genai_ollama".into(),
            desired: tasks.len() as u64,
            running,
            has_healthcheck: false,
            digest: None,
            tasks,
        }
    }

    const NO_NODE: &str = "no suitable node (scheduling constraints not satisfied on 1 node)";

    #[test]
    fn pending_with_no_suitable_node_is_unschedulable() {
        assert!(service(0, vec![task("pending", Some(NO_NODE))]).unschedulable());
        // One replica placed, one not: still no node for the second.
        assert!(service(1, vec![task("running", None), task("pending", Some(NO_NODE))]).unschedulable());
    }

    #[test]
    fn tasks_on_their_way_are_not_unschedulable() {
        assert!(!service(0, vec![task("pending", None)]).unschedulable());
        assert!(!service(0, vec![task("starting", None)]).unschedulable());
        assert!(!service(0, vec![task("pending", Some(NO_NODE)), task("preparing", None)]).unschedulable());
        assert!(!service(1, vec![task("running", None)]).unschedulable());
        // Swarm has not created its tasks yet.
        assert!(!service(0, Vec::new()).unschedulable());
    }
}
