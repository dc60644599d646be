//! The supervisor's view of its project's containers through the Docker API: whether
//! every service is ready, the health for STATUS=, and the watch after READY=1: a
//! container that dies is started again when its restart policy says so
//! ([`super::restarts`] has the rules), and the watch ends when one dies for good, is
//! stopped by hand or turns unhealthy.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bollard::Docker;
use futures_util::StreamExt;
use libsystemd::daemon::NotifyState;

use super::notify;
use super::restarts::{Decision, RestartBook, BURST, WINDOW};
use crate::docker::{container_name, label_of, ONEOFF_LABEL, PROJECT_LABEL, SERVICE_LABEL};
use crate::health::{Health, Observed, Restarted};
use hlsys_core::compose::RestartPolicy;
use hlsys_core::model::Stack;

/// The project's containers (not one-off `compose run` ones).
pub(super) async fn containers(docker: &Docker, project: &str) -> Result<Vec<bollard::models::ContainerSummary>> {
    crate::docker::compose_containers(docker, Some(project)).await
}

/// The containers' health as the `ready` STATUS= line (see health.rs).
pub(super) fn health_of(cs: &[bollard::models::ContainerSummary]) -> Health {
    let states: Vec<String> = cs
        .iter()
        .map(|c| c.state.map(|s| s.to_string()).unwrap_or_default())
        .collect();
    Health::of(
        "ready",
        cs.iter().zip(&states).map(|(c, state)| Observed {
            service: label_of(c, SERVICE_LABEL).unwrap_or("?"),
            state,
            status: c.status.as_deref().unwrap_or_default(),
        }),
    )
}

/// STATUS= with the containers' health as Docker sees it now and the restarts so far
/// (kept when Docker does not answer: the next event tries again).
pub(super) async fn report_health(docker: &Docker, project: &str, restarts: Vec<Restarted>) {
    if let Ok(cs) = containers(docker, project).await {
        let health = health_of(&cs).with_restarts(restarts);
        notify::send(&[NotifyState::Status(health.to_string())]);
    }
}

/// Containers whose healthcheck has not decided yet (Docker's status text says
/// "health: starting"; it is the same on every API version).
pub(super) fn health_pending(cs: &[bollard::models::ContainerSummary]) -> Vec<String> {
    cs.iter()
        .filter(|c| c.status.as_deref().is_some_and(|s| s.contains("health: starting")))
        .map(container_name)
        .collect()
}

/// Whether every service the stack runs by default has containers, all running and none
/// with a pending or failed healthcheck (the image's own healthcheck counts too: Docker's
/// status text shows it).
pub(super) fn ready_now(services: &[String], cs: &[bollard::models::ContainerSummary]) -> bool {
    !services.is_empty()
        && services.iter().all(|svc| {
            let of: Vec<&bollard::models::ContainerSummary> = cs
                .iter()
                .filter(|c| label_of(c, SERVICE_LABEL) == Some(svc.as_str()))
                .collect();
            !of.is_empty()
                && of.iter().all(|c| {
                    let st = c.status.as_deref().unwrap_or_default();
                    c.state.map(|s| s.to_string()).as_deref() == Some("running")
                        && !st.contains("health: starting")
                        && !st.contains("unhealthy")
                })
        })
}

/// Docker's container events of the project from now on.
pub(super) fn project_events(
    docker: &Docker,
    project: &str,
    since: &str,
) -> impl futures_util::Stream<Item = Result<bollard::models::EventMessage, bollard::errors::Error>> {
    let mut filters = HashMap::new();
    filters.insert("type", vec!["container".to_string()]);
    filters.insert("label", vec![format!("{PROJECT_LABEL}={project}")]);
    let opts = bollard::query_parameters::EventsOptionsBuilder::default()
        .since(since)
        .filters(&filters)
        .build();
    docker.events(Some(opts))
}

/// After `up --wait`: every container runs (or completed with 0) and none is unhealthy.
pub(super) async fn verify_running(docker: &Docker, stack: &Stack) -> Result<usize> {
    let cs = containers(docker, &stack.project).await?;
    for c in &cs {
        let state = c.state.map(|s| s.to_string()).unwrap_or_default();
        let st = c.status.clone().unwrap_or_default();
        let completed = state == "exited" && st.starts_with("Exited (0)");
        if !(state == "running" || completed) || st.contains("(unhealthy)") {
            bail!(
                "container {} is {state} ({st}) after docker compose up",
                container_name(c)
            );
        }
    }
    Ok(cs.len())
}

/// Watches the project's containers from `since` (events are replayed from then, so
/// nothing between ready and subscribing is lost) and returns why the stack failed: a
/// container that died and is not restarted (its policy, or it keeps failing), one
/// stopped by hand, one unhealthy. A container whose policy restarts it is started again
/// after its back-off. Every other event of a container (start, health, pause…) updates
/// STATUS= with the health; the healthchecks' own `exec_*` events change nothing.
pub(super) async fn watch(docker: &Docker, stack: &Stack, since: &str) -> Result<String> {
    let project = stack.project.as_str();
    let mut events = Box::pin(project_events(docker, project, since));
    let mut book = RestartBook::default();
    // Deaths waiting for their back-off, by container id: a `stop` event in between means
    // the container was stopped by hand.
    let mut due: HashMap<String, (Death, tokio::time::Instant)> = HashMap::new();
    // A second look SETTLE after the last event: Docker publishes some events (pause,
    // unpause) before its container list shows the change.
    let settle = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(settle);
    let mut look_again = false;
    loop {
        let next = due.values().map(|(_, at)| *at).min();
        tokio::select! {
            ev = events.next() => {
                let Some(ev) = ev else { break };
                let ev = ev.context("reading Docker events")?;
                match classify(ev) {
                    Seen::Fatal(why) => return Ok(why),
                    Seen::Nothing => continue,
                    Seen::Died(d) => {
                        let policy = policy_of(stack, &d.service);
                        match book.died(&d.id, &d.service, policy, d.exit_code, Instant::now()) {
                            Decision::NotRestarted => return Ok(d.why()),
                            Decision::KeepsFailing => return Ok(format!(
                                "{}, restarted {BURST} times within {} min: keeps failing",
                                d.why(), WINDOW.as_secs() / 60
                            )),
                            Decision::Restart { after } => {
                                notify::status(&format!(
                                    "restarting {} in {:.1} s ({}; restart: {policy})",
                                    d.name, after.as_secs_f64(), d.why()
                                ));
                                due.insert(d.id.clone(), (d, tokio::time::Instant::now() + after));
                                continue;
                            }
                        }
                    }
                    Seen::Stopped(id) => {
                        if let Some((d, _)) = due.remove(&id) {
                            return Ok(format!("{}, stopped by hand", d.why()));
                        }
                    }
                    Seen::Change => report_health(docker, project, book.summary()).await,
                }
                settle.as_mut().reset(tokio::time::Instant::now() + SETTLE);
                look_again = true;
            }
            _ = tokio::time::sleep_until(next.unwrap_or_else(tokio::time::Instant::now)), if next.is_some() => {
                let now = tokio::time::Instant::now();
                let ready: Vec<String> = due.iter().filter(|(_, (_, at))| *at <= now).map(|(id, _)| id.clone()).collect();
                for id in ready {
                    let Some((d, _)) = due.remove(&id) else { continue };
                    if let Err(e) = docker.start_container(&id, None).await {
                        return Ok(format!("{}, and starting it again failed: {e}", d.why()));
                    }
                    book.started(&id, Instant::now());
                    eprintln!("started container {} again ({}; restart: {})", d.name, d.why(), policy_of(stack, &d.service));
                }
                report_health(docker, project, book.summary()).await;
            }
            _ = &mut settle, if look_again => {
                look_again = false;
                report_health(docker, project, book.summary()).await;
            }
        }
    }
    bail!("the Docker event stream ended (Docker stopped?)")
}

/// The restart policy of `service` as the stack's compose files declare it (`no` for a
/// service hlsys does not know, such as one started by hand under a profile).
fn policy_of(stack: &Stack, service: &str) -> RestartPolicy {
    stack
        .service_details
        .iter()
        .find(|s| s.name == service)
        .map(|s| s.restart_policy)
        .unwrap_or_default()
}

/// How long after an event the health is looked at once more (see [`watch`]).
const SETTLE: Duration = Duration::from_secs(1);

/// A container of the stack that died.
#[derive(Debug, PartialEq, Eq)]
struct Death {
    id: String,
    name: String,
    service: String,
    /// `-1` when Docker did not say.
    exit_code: i64,
}

impl Death {
    fn why(&self) -> String {
        format!("container {}: die (exit code {})", self.name, self.exit_code)
    }
}

/// What a Docker event means to the watch.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// A container turned unhealthy: the watch ends, with this reason.
    Fatal(String),
    /// A container died: its restart policy decides.
    Died(Death),
    /// A container was stopped (`docker stop`: its `die` came first), by id.
    Stopped(String),
    /// A change of some container (start, health, pause…): STATUS= is refreshed.
    Change,
    /// A one-off container (`compose run`) or a healthcheck's own `exec_*`: nothing.
    Nothing,
}

fn classify(ev: bollard::models::EventMessage) -> Seen {
    let action = ev.action.unwrap_or_default();
    let actor = ev.actor.unwrap_or_default();
    let attrs = actor.attributes.unwrap_or_default();
    if attrs.get(ONEOFF_LABEL).map(String::as_str) == Some("True") || action.starts_with("exec_") {
        return Seen::Nothing;
    }
    let attr = |k: &str| attrs.get(k).cloned().unwrap_or_default();
    let name = attr("name");
    let id = actor.id.unwrap_or_default();
    match action.as_str() {
        "die" => Seen::Died(Death {
            id,
            name,
            service: attr(SERVICE_LABEL),
            exit_code: attr("exitCode").parse().unwrap_or(-1),
        }),
        "stop" => Seen::Stopped(id),
        a if a.starts_with("health_status: unhealthy") => Seen::Fatal(format!("container {name}: {a}")),
        _ => Seen::Change,
    }
}

pub(super) fn unix_now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(
        service: &str,
        state: bollard::models::ContainerSummaryStateEnum,
        status: &str,
    ) -> bollard::models::ContainerSummary {
        bollard::models::ContainerSummary {
            labels: Some([(SERVICE_LABEL.to_string(), service.to_string())].into()),
            state: Some(state),
            status: Some(status.into()),
            ..Default::default()
        }
    }

    #[test]
    fn ready_only_when_every_service_runs_healthy() {
        use bollard::models::ContainerSummaryStateEnum::{CREATED, RUNNING};
        let svcs = vec!["db".to_string(), "web".to_string()];
        let db_ok = container("db", RUNNING, "Up 3 seconds (healthy)");
        let web_ok = container("web", RUNNING, "Up 1 second");
        assert!(ready_now(&svcs, &[db_ok.clone(), web_ok.clone()]));
        assert!(!ready_now(&svcs, &[db_ok.clone()]), "web has no container yet");
        assert!(!ready_now(
            &svcs,
            &[
                container("db", RUNNING, "Up 1 second (health: starting)"),
                web_ok.clone()
            ]
        ));
        assert!(!ready_now(
            &svcs,
            &[container("db", RUNNING, "Up 9 seconds (unhealthy)"), web_ok.clone()]
        ));
        assert!(!ready_now(
            &svcs,
            &[db_ok.clone(), container("web", CREATED, "Created")]
        ));
        // A second replica still starting holds readiness back.
        assert!(!ready_now(
            &svcs,
            &[
                db_ok,
                web_ok,
                container("web", RUNNING, "Up 1 second (health: starting)")
            ]
        ));
        assert!(!ready_now(&[], &[]), "no known services: leave it to compose --wait");
    }

    #[test]
    fn events_end_the_watch_refresh_health_or_do_nothing() {
        let ev = |action: &str, oneoff: bool| bollard::models::EventMessage {
            action: Some(action.into()),
            actor: Some(bollard::models::EventActor {
                id: Some("c0ffee".into()),
                attributes: Some(
                    [
                        ("name".to_string(), "db-1".to_string()),
                        ("exitCode".to_string(), "3".to_string()),
                        (SERVICE_LABEL.to_string(), "db".to_string()),
                        (
                            ONEOFF_LABEL.to_string(),
                            if oneoff { "True" } else { "False" }.to_string(),
                        ),
                    ]
                    .into(),
                ),
            }),
            ..Default::default()
        };
        let died = Death {
            id: "c0ffee".into(),
            name: "db-1".into(),
            service: "db".into(),
            exit_code: 3,
        };
        assert_eq!(died.why(), "container db-1: die (exit code 3)");
        assert_eq!(classify(ev("die", false)), Seen::Died(died));
        assert_eq!(classify(ev("stop", false)), Seen::Stopped("c0ffee".into()));
        assert_eq!(
            classify(ev("health_status: unhealthy", false)),
            Seen::Fatal("container db-1: health_status: unhealthy".into())
        );
        for change in ["start", "pause", "unpause", "health_status: healthy", "oom"] {
            assert_eq!(classify(ev(change, false)), Seen::Change, "{change}");
        }
        assert_eq!(classify(ev("exec_start: test -f /tmp/ready", false)), Seen::Nothing);
        assert_eq!(classify(ev("die", true)), Seen::Nothing, "a compose run container");
    }
}
