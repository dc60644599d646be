//! The supervisor's view of its project's containers through the Docker API: whether
//! every service is ready, the health for STATUS=, and the watch after READY=1 that ends
//! when a container dies or turns unhealthy.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bollard::Docker;
use futures_util::StreamExt;
use libsystemd::daemon::NotifyState;

use super::notify;
use crate::docker::{container_name, label_of, ONEOFF_LABEL, PROJECT_LABEL, SERVICE_LABEL};
use crate::health::{Health, Observed};
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

/// STATUS= with the containers' health as Docker sees it now (kept when Docker does not
/// answer: the next event tries again).
pub(super) async fn report_health(docker: &Docker, project: &str) {
    if let Ok(cs) = containers(docker, project).await {
        notify::send(&[NotifyState::Status(health_of(&cs).to_string())]);
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

/// Waits until a container of the project dies or turns unhealthy after `since`
/// (events are replayed from then, so nothing between ready and subscribing is lost).
/// Every other event of a container (start, health, pause…) updates STATUS= with the
/// health; the healthchecks' own `exec_*` events change nothing and are skipped.
pub(super) async fn watch(docker: &Docker, project: &str, since: &str) -> Result<String> {
    let mut events = Box::pin(project_events(docker, project, since));
    // A second look SETTLE after the last event: Docker publishes some events (pause,
    // unpause) before its container list shows the change.
    let settle = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(settle);
    let mut look_again = false;
    loop {
        tokio::select! {
            ev = events.next() => {
                let Some(ev) = ev else { break };
                let ev = ev.context("reading Docker events")?;
                match classify(ev) {
                    Seen::Fatal(why) => return Ok(why),
                    Seen::Nothing => continue,
                    Seen::Change => report_health(docker, project).await,
                }
                settle.as_mut().reset(tokio::time::Instant::now() + SETTLE);
                look_again = true;
            }
            _ = &mut settle, if look_again => {
                look_again = false;
                report_health(docker, project).await;
            }
        }
    }
    bail!("the Docker event stream ended (Docker stopped?)")
}

/// How long after an event the health is looked at once more (see [`watch`]).
const SETTLE: Duration = Duration::from_secs(1);

/// What a Docker event means to the watch.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// A container died or turned unhealthy: the watch ends, with this reason.
    Fatal(String),
    /// A change of some container (start, health, pause…): STATUS= is refreshed.
    Change,
    /// A one-off container (`compose run`) or a healthcheck's own `exec_*`: nothing.
    Nothing,
}

fn classify(ev: bollard::models::EventMessage) -> Seen {
    let action = ev.action.unwrap_or_default();
    let attrs = ev.actor.and_then(|a| a.attributes).unwrap_or_default();
    if attrs.get(ONEOFF_LABEL).map(String::as_str) == Some("True") || action.starts_with("exec_") {
        return Seen::Nothing;
    }
    let name = attrs.get("name").cloned().unwrap_or_default();
    if action == "die" || action == "oom" || action.starts_with("health_status: unhealthy") {
        let code = attrs
            .get("exitCode")
            .map(|c| format!(" (exit code {c})"))
            .unwrap_or_default();
        return Seen::Fatal(format!("container {name}: {action}{code}"));
    }
    Seen::Change
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
                attributes: Some(
                    [
                        ("name".to_string(), "db-1".to_string()),
                        ("exitCode".to_string(), "3".to_string()),
                        (
                            ONEOFF_LABEL.to_string(),
                            if oneoff { "True" } else { "False" }.to_string(),
                        ),
                    ]
                    .into(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            classify(ev("die", false)),
            Seen::Fatal("container db-1: die (exit code 3)".into())
        );
        assert!(matches!(
            classify(ev("health_status: unhealthy", false)),
            Seen::Fatal(_)
        ));
        for change in ["start", "pause", "unpause", "health_status: healthy"] {
            assert_eq!(classify(ev(change, false)), Seen::Change, "{change}");
        }
        assert_eq!(classify(ev("exec_start: test -f /tmp/ready", false)), Seen::Nothing);
        assert_eq!(classify(ev("die", true)), Seen::Nothing, "a compose run container");
    }
}
