//! `hlsys swarm`: the stack tree deployed to a Docker Swarm, layer by layer, health-gated.
//!
//! Swarm does the scheduling (`docker stack deploy`, the Engine API for state); hlsys adds
//! what it lacks: order across stacks, waiting for a layer to converge before the next,
//! the shared networks (as overlays, with `hlsys network ensure`'s rules) and GPU
//! placement. A stack's document is what the real `docker compose config` resolves for
//! it (in its directory, the files Compose selects, its env files), adjusted by
//! [`hlsys_core::swarm::adjust`].

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bollard::Docker;
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::state::{node_names, stack_services, ServiceState};
use crate::network::{EnsureOptions, NetworkReport};
use hlsys_core::config::Config;
use hlsys_core::model::{Model, Stack};
use hlsys_core::redact::mask;
use hlsys_core::swarm::adjust::{adjust, Placement};
use hlsys_core::swarm::{digest, held_back, redact, waves, DIGEST_LABEL};

const POLL: Duration = Duration::from_secs(1);
/// How long a stack must stay unschedulable before it is reported as such: Swarm's
/// scheduler says "no suitable node" at once, but also for a moment while a node it
/// could use is still joining or a task on it is shutting down.
const UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(3);

/// One stack ready for `docker stack deploy`.
#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    pub stack: String,
    pub layer: String,
    pub project: String,
    /// As deployed (with the digest label), only for the deploy itself.
    #[serde(skip)]
    pub document: Value,
    /// As printed: environment and env-file values hidden.
    #[serde(rename = "document")]
    pub shown: Value,
    pub digest: String,
    pub notes: Vec<String>,
    pub gpu_services: Vec<String>,
}

/// A `docker` command with the same cleaned environment as `hlsys supervise`'s (no
/// variable of the caller reaches Compose's interpolation; the TLS and proxy settings of
/// a remote engine do).
fn docker_cmd() -> tokio::process::Command {
    crate::compose_cli::docker()
}

/// The values of the stack's env files, to keep them out of every report.
fn env_values(stack: &Stack) -> Vec<String> {
    hlsys_core::redact::env_values(&stack.env_files)
}

/// `docker compose config --format json` in the stack directory, no `-f` (Compose picks
/// the files), with the stack's env files: the project exactly as Compose resolves it.
pub async fn compose_config(stack: &Stack) -> Result<Value> {
    let mut c = crate::compose_cli::cleaned();
    c.current_dir(&stack.dir)
        .args(["--project-name", &stack.project, "--project-directory"])
        .arg(&stack.dir);
    for f in &stack.env_files {
        c.arg("--env-file").arg(f);
    }
    c.args(["config", "--format", "json"]);
    let out = c.output().await.context("cannot run docker compose")?;
    if !out.status.success() {
        let err = mask(String::from_utf8_lossy(&out.stderr).trim(), &env_values(stack));
        bail!("docker compose config failed: {err}");
    }
    serde_json::from_slice(&out.stdout).context("docker compose config printed no JSON")
}

/// Where GPU services and tree binds go, as this swarm stands.
pub struct Site {
    /// Node id of this manager (it holds the tree).
    pub node: String,
    /// Whether some node advertises the configured GPU generic resource.
    pub gpu_resource: bool,
}

/// This node's place in the swarm; an error unless it is a manager.
pub async fn site(docker: &Docker, config: &Config) -> Result<Site> {
    let info = docker.info().await.context("cannot ask Docker for its swarm state")?;
    let swarm = info.swarm.unwrap_or_default();
    if swarm.control_available != Some(true) {
        bail!("this Docker engine is not a Swarm manager (run `docker swarm init`, or run hlsys on a manager)");
    }
    let kind = &config.swarm.gpu_resource;
    let nodes = docker
        .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
        .await?;
    let gpu_resource = nodes.iter().any(|n| {
        let res = n.description.as_ref().and_then(|d| d.resources.as_ref());
        res.and_then(|r| r.generic_resources.as_ref()).is_some_and(|g| {
            g.iter().any(|r| {
                r.discrete_resource_spec.as_ref().and_then(|d| d.kind.as_deref()) == Some(kind)
                    || r.named_resource_spec.as_ref().and_then(|d| d.kind.as_deref()) == Some(kind)
            })
        })
    });
    Ok(Site {
        node: swarm.node_id.unwrap_or_default(),
        gpu_resource,
    })
}

/// Resolves and adjusts one stack; the digest label marks what it was deployed from.
pub async fn prepare(stack: &Stack, config: &Config, site: &Site) -> Result<Prepared> {
    let project = compose_config(stack).await?;
    let at = Placement {
        gpu_label: &config.swarm.gpu_label,
        gpu_resource: site.gpu_resource.then_some(config.swarm.gpu_resource.as_str()),
        stacks_dir: &config.stacks_dir,
        tree_binds: config.swarm.tree_binds,
        tree_node: &site.node,
    };
    let adjusted = adjust(&project, &at).map_err(|e| anyhow!(mask(&e.to_string(), &env_values(stack))))?;
    let sum = digest(&adjusted.document);
    let mut document = adjusted.document;
    for svc in document["services"]
        .as_object_mut()
        .into_iter()
        .flat_map(|m| m.values_mut())
    {
        let deploy = &mut svc["deploy"];
        if !deploy.is_object() {
            *deploy = serde_json::json!({});
        }
        deploy["labels"][DIGEST_LABEL] = Value::String(sum.clone());
    }
    let shown = redact(&document, &env_values(stack));
    Ok(Prepared {
        stack: stack.id.clone(),
        layer: stack.layer.clone(),
        project: stack.project.clone(),
        document,
        shown,
        digest: sum,
        notes: adjusted.notes,
        gpu_services: adjusted.gpu_services,
    })
}

/// The shared networks of networks.toml as attachable overlays, through `hlsys network
/// ensure` (same drift, race and duplicate rules); only the driver differs.
pub async fn ensure_networks(docker: &Docker, config: &Config) -> Result<NetworkReport> {
    let mut overlay = config.clone();
    for net in overlay.networks.values_mut() {
        net.driver = "overlay".into();
    }
    let opts = EnsureOptions {
        root: "/".into(),
        ..Default::default()
    };
    crate::network::ensure(docker, &overlay, &opts).await
}

/// `docker stack deploy --compose-file - --prune`, the document on stdin.
async fn stack_deploy(p: &Prepared, config: &Config) -> Result<()> {
    let mut c = docker_cmd();
    c.args(["stack", "deploy", "--compose-file", "-", "--prune", "--resolve-image"])
        .arg(config.swarm.resolve_image.as_str())
        .arg(&p.project)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().context("cannot run docker stack deploy")?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(&serde_json::to_vec(&p.document)?).await?;
    drop(stdin);
    let out = child.wait_with_output().await?;
    tracing::debug!(
        stack = p.stack,
        "docker stack deploy: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    if !out.status.success() {
        bail!(
            "docker stack deploy failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// What happened to one stack.
#[derive(Debug, Clone, Serialize)]
pub struct StackOutcome {
    pub stack: String,
    pub layer: String,
    /// converged | unschedulable | not-converged | error | held-back (| absent for status)
    pub outcome: String,
    /// deployed | unchanged (same document as deployed: nothing touched) | none
    pub action: String,
    pub gpu_services: Vec<String>,
    pub notes: Vec<String>,
    pub problems: Vec<String>,
    pub services: Vec<ServiceState>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeployReport {
    pub networks: Option<NetworkReport>,
    pub stacks: Vec<StackOutcome>,
}

impl DeployReport {
    pub fn success(&self) -> bool {
        self.networks.as_ref().is_some_and(NetworkReport::success)
            && self.stacks.iter().all(|s| s.outcome == "converged")
    }
}

/// Deploys `selected` (stack ids) layer by layer; see the module docs.
pub async fn deploy(docker: &Docker, model: &Model, selected: &BTreeSet<String>) -> Result<DeployReport> {
    let config = &model.config;
    let site = site(docker, config).await?;
    let mut report = DeployReport {
        networks: Some(ensure_networks(docker, config).await?),
        stacks: Vec::new(),
    };
    if !report.networks.as_ref().is_some_and(NetworkReport::success) {
        return Ok(report); // stacks would join the wrong networks, or none
    }
    let mut failed: BTreeSet<String> = BTreeSet::new();
    for layer in &model.layers {
        let deadline = Instant::now() + Duration::from_secs(config.swarm.layer_timeout(&layer.name));
        for wave in waves(model, layer) {
            let wave: Vec<String> = wave.into_iter().filter(|id| selected.contains(id)).collect();
            let mut started = deploy_wave(docker, model, &site, &wave, &mut failed, &mut report).await;
            let left = deadline.saturating_duration_since(Instant::now());
            wait_layer(
                docker,
                model,
                &mut started,
                left,
                config.swarm.layer_timeout(&layer.name),
            )
            .await?;
            explain_gpu(&mut started, &config.swarm.gpu_label);
            failed.extend(
                started
                    .iter()
                    .filter(|o| o.outcome != "converged")
                    .map(|o| o.stack.clone()),
            );
            report.stacks.extend(started);
        }
    }
    Ok(report)
}

/// Deploys the stacks of one wave, unless something they require did not converge;
/// returns those now in Swarm's hands (errors and held-back ones go to the report).
async fn deploy_wave(
    docker: &Docker,
    model: &Model,
    site: &Site,
    wave: &[String],
    failed: &mut BTreeSet<String>,
    report: &mut DeployReport,
) -> Vec<StackOutcome> {
    let held = held_back(model, failed);
    let mut started = Vec::new();
    for id in wave {
        let stack = model.stack(id).expect("layer members are stacks");
        let mut o = outcome(stack);
        if let Some(why) = held.get(id) {
            o.outcome = "held-back".into();
            o.problems.push(why.clone());
        } else {
            match deploy_stack(docker, stack, &model.config, site).await {
                Ok((action, p)) => {
                    o.action = action.into();
                    o.notes = p.notes;
                    o.gpu_services = p.gpu_services;
                    started.push(o);
                    continue;
                }
                Err(e) => {
                    o.outcome = "error".into();
                    o.problems.push(format!("{e:#}"));
                }
            }
        }
        failed.insert(id.clone());
        report.stacks.push(o);
    }
    started
}

fn outcome(stack: &Stack) -> StackOutcome {
    StackOutcome {
        stack: stack.id.clone(),
        layer: stack.layer.clone(),
        outcome: String::new(),
        action: "none".into(),
        gpu_services: Vec::new(),
        notes: Vec::new(),
        problems: Vec::new(),
        services: Vec::new(),
    }
}

/// Prepares and deploys one stack, unless every service of it was deployed from the
/// same document already (then nothing is touched: no update, no task restarted).
async fn deploy_stack(
    docker: &Docker,
    stack: &Stack,
    config: &Config,
    site: &Site,
) -> Result<(&'static str, Prepared)> {
    let p = prepare(stack, config, site).await?;
    let nodes = node_names(docker).await?;
    let deployed = stack_services(docker, stack, &nodes).await?;
    let wanted: BTreeSet<String> = p.document["services"]
        .as_object()
        .map(|m| m.keys().map(|k| format!("{}_{k}", p.project)).collect())
        .unwrap_or_default();
    let have: BTreeSet<String> = deployed.iter().map(|s| s.name.clone()).collect();
    if wanted == have && deployed.iter().all(|s| s.digest.as_deref() == Some(p.digest.as_str())) {
        return Ok(("unchanged", p));
    }
    stack_deploy(&p, config).await?;
    Ok(("deployed", p))
}

/// Waits until every stack of the layer converged, or is unschedulable (see
/// [`Progress`]), or `timeout` passed; each outcome becomes `converged`,
/// `unschedulable` or `not-converged` with its services' task problems. `timeout` is
/// what is left of the layer's `layer_timeout_sec`.
async fn wait_layer(
    docker: &Docker,
    model: &Model,
    started: &mut [StackOutcome],
    timeout: Duration,
    layer_timeout_sec: u64,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut stuck_since: BTreeMap<String, Instant> = BTreeMap::new();
    loop {
        let nodes = node_names(docker).await?;
        let mut all = true;
        for o in started.iter_mut() {
            let stack = model.stack(&o.stack).expect("a deployed stack");
            o.services = stack_services(docker, stack, &nodes).await?;
            all &= match Progress::of(&o.services) {
                Progress::Converged => true,
                Progress::Unschedulable => {
                    let since = *stuck_since.entry(o.stack.clone()).or_insert_with(Instant::now);
                    since.elapsed() >= UNSCHEDULABLE_GRACE
                }
                Progress::Waiting => {
                    stuck_since.remove(&o.stack);
                    false
                }
            };
        }
        if all || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    for o in started.iter_mut() {
        conclude(o, layer_timeout_sec);
    }
    Ok(())
}

/// Where a deployed stack stands while its layer is waited for.
#[derive(Debug, PartialEq)]
enum Progress {
    Converged,
    /// Every service converged or unschedulable, at least one unschedulable: nothing
    /// more will happen until the nodes change.
    Unschedulable,
    Waiting,
}

impl Progress {
    fn of(services: &[ServiceState]) -> Progress {
        if services.is_empty() {
            Progress::Waiting
        } else if services.iter().all(ServiceState::converged) {
            Progress::Converged
        } else if services.iter().all(|s| s.converged() || s.unschedulable()) {
            Progress::Unschedulable
        } else {
            Progress::Waiting
        }
    }
}

/// The outcome of a stack once its layer was waited for.
fn conclude(o: &mut StackOutcome, layer_timeout_sec: u64) {
    let progress = Progress::of(&o.services);
    if progress == Progress::Converged {
        o.outcome = "converged".into();
        return;
    }
    o.problems = o.services.iter().flat_map(ServiceState::problems).collect();
    if progress == Progress::Unschedulable {
        o.outcome = "unschedulable".into();
        for svc in o.services.iter().filter(|s| s.unschedulable()) {
            o.problems.push(format!(
                "no node satisfies the placement of {}: not waiting for the layer's timeout",
                svc.name
            ));
        }
        return;
    }
    o.outcome = "not-converged".into();
    if o.services.is_empty() {
        o.problems.push("no service of the stack is known to Swarm".into());
    }
    o.problems
        .push(format!("not converged within the layer's {layer_timeout_sec}s"));
}

/// A GPU service that did not converge most likely has no node to go to: say which
/// label it waits for and how to give it one.
fn explain_gpu(outcomes: &mut [StackOutcome], label: &str) {
    for o in outcomes.iter_mut().filter(|o| o.outcome != "converged") {
        for svc in &o.services {
            let short = svc.name.strip_prefix(&format!("{}_", o.stack)).unwrap_or(&svc.name);
            if !svc.converged() && o.gpu_services.iter().any(|g| g == short) {
                o.problems.push(format!(
                    "{} needs a GPU node: none labelled {label}=true can take it \
                     (docker node update --label-add {label}=true NODE)",
                    svc.name
                ));
            }
        }
    }
}

/// Per stack: its services as Swarm sees them (empty when not deployed).
pub async fn status(docker: &Docker, model: &Model, selected: &BTreeSet<String>) -> Result<Vec<StackOutcome>> {
    let nodes = node_names(docker).await?;
    let mut out = Vec::new();
    for layer in &model.layers {
        for id in layer.stacks.iter().filter(|id| selected.contains(*id)) {
            let stack = model.stack(id).expect("layer members are stacks");
            let mut o = outcome(stack);
            o.services = stack_services(docker, stack, &nodes).await?;
            o.outcome = if o.services.is_empty() {
                "absent"
            } else {
                match Progress::of(&o.services) {
                    Progress::Converged => "converged",
                    Progress::Unschedulable => "unschedulable",
                    Progress::Waiting => "not-converged",
                }
            }
            .into();
            o.problems = o.services.iter().flat_map(ServiceState::problems).collect();
            out.push(o);
        }
    }
    Ok(out)
}

/// `docker stack rm` per stack in reverse layer order, each waited for until its
/// services are gone (so a layer is down before the one it depends on). Named volumes
/// are never removed by `docker stack rm`.
pub async fn rm(docker: &Docker, model: &Model, selected: &BTreeSet<String>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let nodes = node_names(docker).await?;
    for layer in model.layers.iter().rev() {
        for id in layer.stacks.iter().rev().filter(|id| selected.contains(*id)) {
            let stack = model.stack(id).expect("layer members are stacks");
            let project = &stack.project;
            if stack_services(docker, stack, &nodes).await?.is_empty() {
                out.insert(id.clone(), "absent".to_string());
                continue;
            }
            let res = docker_cmd().args(["stack", "rm", project]).output().await?;
            if !res.status.success() {
                out.insert(
                    id.clone(),
                    format!("error: {}", String::from_utf8_lossy(&res.stderr).trim()),
                );
                continue;
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stack_services(docker, stack, &nodes).await?.is_empty() && Instant::now() < deadline {
                tokio::time::sleep(POLL).await;
            }
            out.insert(id.clone(), "removed".to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::state::tests::{service, task};
    use super::*;

    const NO_NODE: &str = "no suitable node (scheduling constraints not satisfied on 1 node)";

    #[test]
    fn a_stack_is_unschedulable_only_when_nothing_else_is_on_its_way() {
        let placed = service(1, vec![task("running", None)]);
        let stuck = service(0, vec![task("pending", Some(NO_NODE))]);
        let starting = service(0, vec![task("starting", None)]);
        assert_eq!(Progress::of(&[placed.clone()]), Progress::Converged);
        assert_eq!(Progress::of(&[placed.clone(), stuck.clone()]), Progress::Unschedulable);
        assert_eq!(Progress::of(&[stuck, starting]), Progress::Waiting);
        assert_eq!(Progress::of(&[]), Progress::Waiting);
    }

    #[test]
    fn an_unschedulable_stack_says_which_service_has_no_node() {
        let mut o = StackOutcome {
            stack: "genai-ollama".into(),
            layer: "genai".into(),
            outcome: String::new(),
            action: "deployed".into(),
            gpu_services: vec!["ollama".into()],
            notes: Vec::new(),
            problems: Vec::new(),
            services: vec![service(0, vec![task("pending", Some(NO_NODE))])],
        };
        o.services[0].name = "genai-ollama_ollama".into();
        conclude(&mut o, 300);
        assert_eq!(o.outcome, "unschedulable");
        let problems = o.problems.join("\n");
        assert!(problems.contains("no suitable node"), "{problems}");
        assert!(
            problems.contains("no node satisfies the placement of genai-ollama_ollama"),
            "{problems}"
        );
        assert!(!problems.contains("300s"), "{problems}");
        explain_gpu(std::slice::from_mut(&mut o), "hlsys.gpu");
        assert!(
            o.problems.join("\n").contains("labelled hlsys.gpu=true"),
            "{:?}",
            o.problems
        );
    }
}
