//! The supervisor's rules for a container of a running stack that dies, since hlsys gives
//! its containers no Docker restart policy (see [`super::takeover`]) and applies the
//! declared one itself. Pure: the watch feeds it deaths and starts, it answers.
//!
//! - The declared policy decides first, with Docker's rules: `no` never, `on-failure[:N]`
//!   only after a non-zero exit and at most N times, `always` and `unless-stopped` always.
//!   A container that will not be restarted fails the stack, as before hlsys applied
//!   policies: systemd's `Restart=` and the unit's start limits take over.
//! - Between a death and the restart: a back-off, doubling from [`FIRST_BACKOFF`] to
//!   [`MAX_BACKOFF`], back to the first once a container ran [`RESET_AFTER`] (Docker
//!   doubles from 100 ms; a longer first wait leaves room to tell a death from a
//!   `docker stop`, whose `stop` event follows the `die`).
//! - A container that needs more than [`BURST`] restarts within [`WINDOW`] keeps failing:
//!   the stack fails (the same budget the unit's StartLimitBurst gives the stack).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use hlsys_core::compose::RestartPolicy;

use crate::health::Restarted;

pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
pub const RESET_AFTER: Duration = Duration::from_secs(10);
pub const BURST: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(600);

/// What to do about a container that died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again once `after` has passed.
    Restart { after: Duration },
    /// Its policy does not restart it: the stack fails.
    NotRestarted,
    /// It died more than [`BURST`] times within [`WINDOW`]: the stack fails.
    KeepsFailing,
}

#[derive(Debug, Default)]
struct Record {
    service: String,
    restarts: u32,
    recent: VecDeque<Instant>,
    last_exit: i64,
    backoff: Duration,
    last_start: Option<Instant>,
}

/// Restarts per container (by id) during one run of the supervisor.
#[derive(Debug, Default)]
pub struct RestartBook {
    containers: HashMap<String, Record>,
}

impl RestartBook {
    /// A container of `service` with `policy` died with `exit_code` at `now`.
    pub fn died(&mut self, id: &str, service: &str, policy: RestartPolicy, exit_code: i64, now: Instant) -> Decision {
        let r = self.containers.entry(id.to_string()).or_default();
        r.service = service.to_string();
        r.last_exit = exit_code;
        if !policy.restarts(exit_code, r.restarts) {
            return Decision::NotRestarted;
        }
        while r.recent.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            r.recent.pop_front();
        }
        if r.recent.len() >= BURST {
            return Decision::KeepsFailing;
        }
        let ran_long = r.last_start.is_none_or(|s| now.duration_since(s) >= RESET_AFTER);
        r.backoff = if ran_long {
            FIRST_BACKOFF
        } else {
            (r.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF)
        };
        Decision::Restart { after: r.backoff }
    }

    /// The supervisor started the container `id` again at `now`.
    pub fn started(&mut self, id: &str, now: Instant) {
        if let Some(r) = self.containers.get_mut(id) {
            r.restarts += 1;
            r.recent.push_back(now);
            r.last_start = Some(now);
        }
    }

    /// Restarts so far by service (replicas added up, the last exit code of any), for
    /// STATUS= and `hlsys status`.
    pub fn summary(&self) -> Vec<Restarted> {
        let mut by_service: Vec<(Instant, Restarted)> = Vec::new();
        for r in self.containers.values().filter(|r| r.restarts > 0) {
            let at = r.last_start.unwrap_or_else(Instant::now);
            match by_service.iter_mut().find(|(_, s)| s.service == r.service) {
                Some((when, s)) => {
                    s.count += r.restarts;
                    if at > *when {
                        *when = at;
                        s.last_exit = r.last_exit;
                    }
                }
                None => by_service.push((
                    at,
                    Restarted {
                        service: r.service.clone(),
                        count: r.restarts,
                        last_exit: r.last_exit,
                    },
                )),
            }
        }
        let mut out: Vec<Restarted> = by_service.into_iter().map(|(_, s)| s).collect();
        out.sort_by(|a, b| a.service.cmp(&b.service));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALWAYS: RestartPolicy = RestartPolicy::Always;

    #[test]
    fn the_policy_decides_and_the_back_off_doubles_until_the_container_runs_long() {
        let mut b = RestartBook::default();
        let t = Instant::now();
        assert_eq!(b.died("a", "web", RestartPolicy::No, 1, t), Decision::NotRestarted);
        let on_failure = RestartPolicy::OnFailure { max_retries: 1 };
        assert_eq!(
            b.died("b", "job", on_failure, 0, t),
            Decision::NotRestarted,
            "a clean exit"
        );
        assert_eq!(
            b.died("b", "job", on_failure, 2, t),
            Decision::Restart { after: FIRST_BACKOFF }
        );
        b.started("b", t);
        assert_eq!(
            b.died("b", "job", on_failure, 2, t),
            Decision::NotRestarted,
            "N reached"
        );

        let mut at = t;
        let mut waits = Vec::new();
        for _ in 0..3 {
            match b.died("c", "web", ALWAYS, 137, at) {
                Decision::Restart { after } => waits.push(after),
                d => panic!("{d:?}"),
            }
            at += Duration::from_secs(1);
            b.started("c", at);
        }
        assert_eq!(waits, [FIRST_BACKOFF, FIRST_BACKOFF * 2, FIRST_BACKOFF * 4]);
        // Up for longer than RESET_AFTER: the next death waits the first back-off again.
        at += RESET_AFTER;
        assert_eq!(
            b.died("c", "web", ALWAYS, 1, at),
            Decision::Restart { after: FIRST_BACKOFF }
        );
    }

    #[test]
    fn a_container_that_keeps_dying_fails_the_stack_within_the_window_only() {
        let mut b = RestartBook::default();
        let t = Instant::now();
        for i in 0..BURST as u64 {
            let now = t + Duration::from_secs(i);
            assert!(matches!(b.died("c", "web", ALWAYS, 1, now), Decision::Restart { .. }));
            b.started("c", now);
        }
        assert_eq!(
            b.died("c", "web", ALWAYS, 1, t + Duration::from_secs(6)),
            Decision::KeepsFailing
        );
        // The same deaths spread wider than the window are restarts.
        assert!(matches!(
            b.died("c", "web", ALWAYS, 1, t + WINDOW + Duration::from_secs(1)),
            Decision::Restart { .. }
        ));
    }

    #[test]
    fn the_summary_adds_up_replicas_by_service() {
        let mut b = RestartBook::default();
        let t = Instant::now();
        b.died("w1", "web", ALWAYS, 1, t);
        b.started("w1", t);
        b.died("w2", "web", ALWAYS, 137, t);
        b.started("w2", t + Duration::from_secs(1));
        b.died("d", "db", ALWAYS, 2, t); // not started again yet: no restart counted
        let s = b.summary();
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!((s[0].service.as_str(), s[0].count, s[0].last_exit), ("web", 2, 137));
    }
}
