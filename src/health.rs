//! The containers' health as one line of text: the supervisor writes it as its `STATUS=`
//! (`ready: 3/3 healthy`, `ready: 2/3 healthy, ollama starting`, and the containers it
//! restarted itself: `ready: 3/3 healthy; restarted: web 2 (exit 137)`), and `hlsys status`
//! reads it back from the unit's StatusText over D-Bus, so health shows without access to
//! the Docker socket. One format, written by [`Health::to_string`] and read by
//! [`Health::parse`].
//!
//! Only Compose service names and Docker's own state words go in: service names are keys
//! of the compose file, which Compose never interpolates, so no env value can appear
//! (a `container_name:` could carry one, which is why it is not used).

use std::fmt;

use serde::Serialize;

/// A container that is not (yet) fine: its service and a one-word state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotHealthy {
    pub service: String,
    /// starting, unhealthy, exited, created, restarting, paused, dead, …
    pub state: String,
}

/// The health of a stack's containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// What the supervisor is doing: `ready` once the stack started.
    pub phase: String,
    /// Containers that are fine: running and healthy (or with no healthcheck), or a job
    /// that completed with exit status 0.
    pub healthy: usize,
    pub total: usize,
    /// The others, in container order.
    pub not_healthy: Vec<NotHealthy>,
    /// Services whose containers the supervisor started again after they died (their
    /// restart policy, applied by hlsys), by service name.
    pub restarts: Vec<Restarted>,
}

/// How often the supervisor restarted a service's containers, and the exit code of the
/// last death.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restarted {
    pub service: String,
    pub count: u32,
    pub last_exit: i64,
}

const RESTARTED: &str = "; restarted: ";

/// One container as Docker lists it: its service, state and status text.
pub struct Observed<'a> {
    pub service: &'a str,
    /// `running`, `exited`, …
    pub state: &'a str,
    /// `Up 3 minutes (healthy)`, `Exited (0) 2 seconds ago`, …
    pub status: &'a str,
}

/// The one-word state of a container, `None` when it is fine.
fn problem(c: &Observed) -> Option<&'static str> {
    match c.state {
        "running" if c.status.contains("health: starting") => Some("starting"),
        "running" if c.status.contains("(unhealthy)") => Some("unhealthy"),
        "running" => None,
        "exited" if c.status.starts_with("Exited (0)") => None,
        "exited" => Some("exited"),
        "created" => Some("created"),
        "restarting" => Some("restarting"),
        "paused" => Some("paused"),
        "dead" => Some("dead"),
        "removing" => Some("removing"),
        _ => Some("unknown"),
    }
}

/// A service name safe to put in the line and read back: Compose's own character set.
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Health {
    pub fn of<'a>(phase: &str, containers: impl IntoIterator<Item = Observed<'a>>) -> Health {
        let mut h = Health {
            phase: phase.to_string(),
            healthy: 0,
            total: 0,
            not_healthy: Vec::new(),
            restarts: Vec::new(),
        };
        for c in containers {
            h.total += 1;
            match problem(&c) {
                None => h.healthy += 1,
                Some(state) => h.not_healthy.push(NotHealthy {
                    // Never anything that could not be read back as one word.
                    service: if plain_name(c.service) { c.service } else { "?" }.to_string(),
                    state: state.to_string(),
                }),
            }
        }
        h
    }

    /// The same health with the supervisor's restarts (names that could not be read back
    /// are written as `?`, as above).
    pub fn with_restarts(mut self, restarts: impl IntoIterator<Item = Restarted>) -> Health {
        self.restarts = restarts
            .into_iter()
            .map(|r| Restarted {
                service: if plain_name(&r.service) { r.service } else { "?".into() },
                ..r
            })
            .collect();
        self
    }

    /// Reads a line [`fmt::Display`] wrote; `None` for any other STATUS text (progress,
    /// `failed: …`).
    pub fn parse(text: &str) -> Option<Health> {
        let (text, restarts) = match text.split_once(RESTARTED) {
            Some((health, restarts)) => (health, parse_restarts(restarts)?),
            None => (text, Vec::new()),
        };
        let (phase, rest) = text.split_once(": ")?;
        if !plain_name(phase) {
            return None;
        }
        let mut parts = rest.split(", ");
        let (healthy, total) = parts.next()?.strip_suffix(" healthy")?.split_once('/')?;
        let mut h = Health {
            phase: phase.to_string(),
            healthy: healthy.parse().ok()?,
            total: total.parse().ok()?,
            not_healthy: Vec::new(),
            restarts,
        };
        for p in parts {
            let (service, state) = p.split_once(' ')?;
            if !(plain_name(service) || service == "?") || !plain_name(state) {
                return None;
            }
            h.not_healthy.push(NotHealthy {
                service: service.to_string(),
                state: state.to_string(),
            });
        }
        (h.healthy + h.not_healthy.len() == h.total).then_some(h)
    }
}

/// `web 2 (exit 137), db 1 (exit 1)`.
fn parse_restarts(text: &str) -> Option<Vec<Restarted>> {
    text.split(", ")
        .map(|r| {
            let (service, rest) = r.split_once(' ')?;
            let (count, exit) = rest.strip_suffix(')')?.split_once(" (exit ")?;
            (plain_name(service) || service == "?").then_some(())?;
            Some(Restarted {
                service: service.to_string(),
                count: count.parse().ok()?,
                last_exit: exit.parse().ok()?,
            })
        })
        .collect()
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}/{} healthy", self.phase, self.healthy, self.total)?;
        for n in &self.not_healthy {
            write!(f, ", {} {}", n.service, n.state)?;
        }
        for (i, r) in self.restarts.iter().enumerate() {
            let sep = if i == 0 { RESTARTED } else { ", " };
            write!(f, "{sep}{} {} (exit {})", r.service, r.count, r.last_exit)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs<'a>(service: &'a str, state: &'a str, status: &'a str) -> Observed<'a> {
        Observed { service, state, status }
    }

    #[test]
    fn writes_the_summary_and_reads_it_back() {
        let h = Health::of(
            "ready",
            [
                obs("webui", "running", "Up 2 minutes (healthy)"),
                obs("init", "exited", "Exited (0) 1 minute ago"),
                obs("ollama", "running", "Up 3 seconds (health: starting)"),
                obs("db", "exited", "Exited (137) 1 second ago"),
            ],
        );
        assert_eq!(h.to_string(), "ready: 2/4 healthy, ollama starting, db exited");
        assert_eq!(Health::parse(&h.to_string()), Some(h));
        let all = Health::of("ready", [obs("a", "running", "Up 1 second")]);
        assert_eq!(all.to_string(), "ready: 1/1 healthy");
        assert_eq!(Health::parse("ready: 1/1 healthy"), Some(all));
    }

    #[test]
    fn restarts_are_written_and_read_back() {
        let r = |service: &str, count, last_exit| Restarted {
            service: service.into(),
            count,
            last_exit,
        };
        let h = Health::of("ready", [obs("web", "running", "Up 1 second")])
            .with_restarts([r("web", 2, 137), r("we ird", 1, 1)]);
        assert_eq!(
            h.to_string(),
            "ready: 1/1 healthy; restarted: web 2 (exit 137), ? 1 (exit 1)"
        );
        assert_eq!(Health::parse(&h.to_string()), Some(h));
        assert_eq!(Health::parse("ready: 1/1 healthy; restarted: web two (exit 1)"), None);
    }

    #[test]
    fn other_status_texts_are_not_health() {
        for text in [
            "",
            "failed: container db-1: die (exit code 1)",
            "pulling: Container x Pulling",
            "starting: docker compose up",
            "ready (3 containers)",
            "ready: 2/3 healthy",        // the counts disagree
            "ready: 1/2 healthy, a b c", // a state of two words
            "ready: x/1 healthy",
        ] {
            assert_eq!(Health::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_name_that_cannot_be_read_back_is_not_written() {
        let h = Health::of("ready", [obs("we ird, x", "created", "Created")]);
        assert_eq!(h.to_string(), "ready: 0/1 healthy, ? created");
        assert_eq!(Health::parse(&h.to_string()), Some(h));
    }
}
