//! Following systemd jobs to their end: which units to enqueue for a request
//! ([`units_for`]), the pure state machine of a transaction's jobs fed with enqueue
//! replies and signals ([`Tracker`]), and the loop that drives it over D-Bus
//! ([`follow`]). `hlsys start|stop|restart|enable --now` print what this returns.
//!
//! The match rules for the manager's job signals and the units' property changes are in
//! place and `Subscribe` is called before the first job is enqueued, so no job can end
//! unseen. `EnqueueUnitJob` names every job its transaction installed; each is followed
//! until its `JobRemoved`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::resolve::{wanted_units, Target};
use crate::systemd::{self, Enqueued, Event, Job, UnitChange};
use hlsys_core::model::Model;

/// What the command asks systemd for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

impl Action {
    /// The job type for `EnqueueUnitJob`, also the verb of the command.
    pub fn job_type(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
        }
    }
}

/// The units to enqueue jobs for: each target's unit, and for a start of a target that
/// is already active, the units it wants that are not active (systemd drops the redundant
/// start of an active target together with everything it would pull in, so Wants= added
/// since it started would otherwise stay down).
pub async fn units_for(
    conn: &zbus::Connection,
    model: &Model,
    targets: &[Target],
    action: Action,
) -> anyhow::Result<Vec<String>> {
    let mut units: Vec<String> = Vec::new();
    for t in targets {
        let u = t.unit(model);
        if !units.contains(&u) {
            units.push(u);
        }
    }
    if action != Action::Start {
        return Ok(units);
    }
    let mut names = units.clone();
    let wanted: Vec<(String, Vec<String>)> = targets
        .iter()
        .map(|t| (t.unit(model), wanted_units(model, t)))
        .collect();
    for (_, w) in &wanted {
        names.extend(w.iter().cloned());
    }
    names.sort();
    names.dedup();
    let states: HashMap<String, systemd::UnitState> = systemd::list_units_by_names(conn, &names)
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let active = |u: &str| states.get(u).is_some_and(|s| s.is_active());
    let mut extra = Vec::new();
    for (unit, w) in wanted {
        if active(&unit) {
            for u in w {
                if !active(&u) && !units.contains(&u) && !extra.contains(&u) {
                    extra.push(u);
                }
            }
        }
    }
    units.extend(extra);
    Ok(units)
}

/// One job followed to its end.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub unit: String,
    pub job_id: u32,
    pub job_type: String,
    /// A unit named on the command line (rather than pulled in).
    pub requested: bool,
    pub active_state: String,
    pub sub_state: String,
    pub status_text: String,
    pub result: Option<String>,
    pub started: Instant,
    pub ended: Option<Instant>,
}

impl JobRow {
    pub fn ok(&self) -> bool {
        matches!(self.result.as_deref(), Some("done" | "skipped"))
    }

    /// Failed by itself, not because something it needed failed or its job was replaced.
    pub fn root_cause(&self) -> bool {
        !self.ok() && !matches!(self.result.as_deref(), None | Some("dependency" | "canceled"))
    }

    /// The supervisor's STATUS text while the unit starts (before and after, it is a
    /// leftover of an earlier run).
    pub fn progress_text(&self) -> Option<&str> {
        (self.active_state == "activating" && !self.status_text.is_empty()).then_some(self.status_text.as_str())
    }

    pub fn elapsed(&self) -> Duration {
        self.ended.unwrap_or_else(Instant::now) - self.started
    }

    pub fn state(&self) -> String {
        let starting = matches!(self.job_type.as_str(), "start" | "restart");
        if self.result.is_none() && starting && matches!(self.active_state.as_str(), "inactive" | "failed") {
            // Queued behind what it is ordered after.
            return "waiting".to_string();
        }
        match (self.active_state.as_str(), self.sub_state.as_str()) {
            ("", _) => String::new(),
            (a, "") => a.to_string(),
            (a, s) => format!("{a} ({s})"),
        }
    }
}

/// The jobs of our transactions and what became of them. Pure: fed with enqueue replies
/// and signals, so the logic is tested without a bus.
#[derive(Debug, Default)]
pub struct Tracker {
    rows: Vec<JobRow>,
    by_id: HashMap<u32, usize>,
    /// Results of jobs removed before we knew they were ours (a job can end before the
    /// reply that names it is read).
    early: HashMap<u32, String>,
    /// Adopt jobs announced by JobNew after ours (only when systemd could not name the
    /// transaction's jobs: no EnqueueUnitJob).
    adopt_after: Option<u32>,
}

/// The result of one job, as `--json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobResult {
    pub unit: String,
    /// The job type: start, stop, restart, …
    pub job: String,
    /// systemd's job result (done, failed, dependency, timeout, canceled, skipped), or
    /// "queued" with --no-block.
    pub result: String,
    pub job_id: u32,
    /// Named on the command line (false: pulled in by the transaction).
    pub requested: bool,
    /// The last journal lines of a unit that failed by itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<Vec<String>>,
}

/// What `--json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobsReport {
    pub action: String,
    pub ok: bool,
    pub results: Vec<JobResult>,
}

impl Tracker {
    /// Adds the jobs of one transaction; returns the indexes of new rows.
    pub fn add(&mut self, enq: &Enqueued) -> Vec<usize> {
        let mut new = Vec::new();
        for j in &enq.affected {
            if let Some(i) = self.add_job(j, j.id == enq.job.id) {
                new.push(i);
            }
        }
        if !enq.exact {
            self.adopt_after = Some(self.adopt_after.unwrap_or(0).max(enq.job.id));
        }
        new
    }

    fn add_job(&mut self, j: &Job, requested: bool) -> Option<usize> {
        if let Some(&i) = self.by_id.get(&j.id) {
            self.rows[i].requested |= requested;
            return None;
        }
        let now = Instant::now();
        let result = self.early.remove(&j.id);
        self.rows.push(JobRow {
            unit: j.unit.clone(),
            job_id: j.id,
            job_type: j.job_type.clone(),
            requested,
            active_state: String::new(),
            sub_state: String::new(),
            status_text: String::new(),
            ended: result.as_ref().map(|_| now),
            result,
            started: now,
        });
        self.by_id.insert(j.id, self.rows.len() - 1);
        Some(self.rows.len() - 1)
    }

    /// Applies a signal; returns the rows it changed.
    pub fn apply(&mut self, ev: &Event) -> Vec<usize> {
        match ev {
            Event::JobRemoved { id, result, .. } => match self.by_id.get(id) {
                Some(&i) => {
                    let r = &mut self.rows[i];
                    if r.result.is_none() {
                        r.result = Some(result.clone());
                        r.ended = Some(Instant::now());
                    }
                    vec![i]
                }
                None => {
                    self.early.insert(*id, result.clone());
                    Vec::new()
                }
            },
            Event::JobNew { id, job, unit } => match self.adopt_after {
                Some(after) if *id > after && !self.done() => {
                    let j = Job {
                        id: *id,
                        path: job.clone(),
                        unit: unit.clone(),
                        job_type: String::new(),
                    };
                    self.add_job(&j, false).into_iter().collect()
                }
                _ => Vec::new(),
            },
            Event::Unit { path, change } => {
                let mut changed = Vec::new();
                for (i, r) in self.rows.iter_mut().enumerate() {
                    if systemd::unit_path(&r.unit) == *path && apply_change(r, change) {
                        changed.push(i);
                    }
                }
                changed
            }
        }
    }

    /// Sets the state of every row's unit (from `ListUnitsByNames`).
    pub fn set_state(&mut self, unit: &str, active: &str, sub: &str) {
        for r in self.rows.iter_mut().filter(|r| r.unit == unit) {
            r.active_state = active.to_string();
            r.sub_state = sub.to_string();
        }
    }

    /// Every job followed, in the order they became known.
    pub fn rows(&self) -> &[JobRow] {
        &self.rows
    }

    pub fn done(&self) -> bool {
        self.rows.iter().all(|r| r.result.is_some())
    }

    pub fn ok(&self) -> bool {
        self.rows.iter().all(JobRow::ok)
    }

    pub fn units(&self) -> Vec<String> {
        let mut u: Vec<String> = self.rows.iter().map(|r| r.unit.clone()).collect();
        u.sort();
        u.dedup();
        u
    }

    /// Units that failed by themselves; when none did (only dependencies failed or jobs
    /// were canceled), every unit whose job did not succeed.
    pub fn failed_units(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.root_cause())
            .map(|r| r.unit.clone())
            .collect();
        if v.is_empty() {
            v = self
                .rows
                .iter()
                .filter(|r| r.result.is_some() && !r.ok())
                .map(|r| r.unit.clone())
                .collect();
        }
        v.dedup();
        v
    }

    pub fn report(&self, action: Action, queued: bool, journals: &HashMap<String, Vec<String>>) -> JobsReport {
        let results = self
            .rows
            .iter()
            .map(|r| JobResult {
                unit: r.unit.clone(),
                job: r.job_type.clone(),
                result: r
                    .result
                    .clone()
                    .unwrap_or_else(|| if queued { "queued" } else { "unknown" }.into()),
                job_id: r.job_id,
                requested: r.requested,
                journal: journals.get(&r.unit).filter(|_| r.root_cause()).cloned(),
            })
            .collect();
        JobsReport {
            action: action.job_type().into(),
            ok: queued || self.ok(),
            results,
        }
    }
}

fn apply_change(r: &mut JobRow, c: &UnitChange) -> bool {
    let mut changed = false;
    for (field, v) in [
        (&mut r.active_state, &c.active_state),
        (&mut r.sub_state, &c.sub_state),
        (&mut r.status_text, &c.status_text),
    ] {
        if let Some(v) = v {
            if field != v {
                *field = v.clone();
                changed = true;
            }
        }
    }
    changed
}

/// Enqueues `action` for each unit in order and, unless `no_block`, follows every job of
/// the transactions to its end. `on_change` sees the tracker after every change (with the
/// rows that changed) and every `tick` (with none), for progress.
pub async fn follow(
    conn: &zbus::Connection,
    units: &[String],
    action: Action,
    no_block: bool,
    tick: Duration,
    on_change: &mut dyn FnMut(&Tracker, &[usize]),
) -> Result<Tracker> {
    // Match rules and Subscribe first: nothing a job does can be missed.
    let mut events = systemd::Events::subscribe(conn).await?;
    let mut tracker = Tracker::default();
    for u in units {
        let enq = systemd::enqueue(conn, u, action.job_type()).await?;
        tracker.add(&enq);
    }
    // Signals that came while enqueuing (a job may already be over). Every unit that got
    // a job announces its state with PropertiesChanged, so no snapshot is taken (an
    // older signal still queued would then overwrite a newer snapshot).
    while let Some(ev) = events.try_next() {
        tracker.apply(&ev);
    }
    if no_block {
        // Where each unit stands now, in one call.
        if let Ok(states) = systemd::list_units_by_names(conn, &tracker.units()).await {
            for s in states {
                tracker.set_state(&s.name, &s.active_state, &s.sub_state);
            }
        }
        return Ok(tracker);
    }
    let all: Vec<usize> = (0..tracker.rows.len()).collect();
    on_change(&tracker, &all);
    let mut tick = tokio::time::interval(tick);
    while !tracker.done() {
        tokio::select! {
            ev = events.next() => {
                let Some(ev) = ev else { anyhow::bail!("lost the connection to systemd while waiting for jobs") };
                let changed = tracker.apply(&ev);
                if !changed.is_empty() {
                    on_change(&tracker, &changed);
                }
            }
            _ = tick.tick() => on_change(&tracker, &[]),
        }
    }
    drop(events);
    systemd::unsubscribe(conn).await;
    Ok(tracker)
}

/// The last journal lines of every unit that failed by itself.
pub async fn failure_journals(tracker: &Tracker) -> HashMap<String, Vec<String>> {
    let failed = tracker.failed_units();
    let mut journals = HashMap::new();
    if !failed.is_empty() {
        // journald may still be writing the last lines the unit printed.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for u in &failed {
            journals.insert(u.clone(), journal_tail(u, 10));
        }
    }
    journals
}

/// The last `n` journal lines of `unit` (`journalctl -u UNIT -n N --no-pager -o cat`).
pub fn journal_tail(unit: &str, n: usize) -> Vec<String> {
    let out = std::process::Command::new("journalctl")
        .args(["-u", unit, "-n", &n.to_string(), "--no-pager", "-o", "cat"])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect(),
        Err(e) => vec![format!("(cannot run journalctl: {e})")],
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn job(id: u32, unit: &str, t: &str) -> Job {
        Job {
            id,
            path: format!("/org/freedesktop/systemd1/job/{id}"),
            unit: unit.into(),
            job_type: t.into(),
        }
    }

    pub(crate) fn removed(id: u32, unit: &str, result: &str) -> Event {
        Event::JobRemoved {
            id,
            job: format!("/org/freedesktop/systemd1/job/{id}"),
            unit: unit.into(),
            result: result.into(),
        }
    }

    #[test]
    fn a_transaction_is_done_when_every_job_is_removed_even_before_the_reply() {
        let mut t = Tracker::default();
        // The pulled-in target finished before the reply naming it was read.
        assert!(t.apply(&removed(8, "homelab-panel.target", "done")).is_empty());
        let enq = Enqueued {
            job: job(7, "homelab-genai.target", "start"),
            affected: vec![
                job(7, "homelab-genai.target", "start"),
                job(8, "homelab-panel.target", "start"),
                job(9, "homelab-database.service", "start"),
            ],
            exact: true,
        };
        assert_eq!(t.add(&enq), vec![0, 1, 2]);
        assert!(!t.done());
        assert_eq!(t.apply(&removed(9, "homelab-database.service", "done")), vec![2]);
        assert!(!t.done());
        // Someone else's job is not ours.
        assert!(t.apply(&removed(100, "other.service", "failed")).is_empty());
        t.apply(&removed(7, "homelab-genai.target", "done"));
        assert!(t.done() && t.ok());
        let r = t.report(Action::Start, false, &HashMap::new());
        assert!(r.ok);
        assert_eq!(r.results.iter().filter(|r| r.requested).count(), 1);
        assert!(r.results.iter().all(|r| r.result == "done"));
    }

    #[test]
    fn the_unit_that_failed_is_named_not_the_ones_that_depended_on_it() {
        let mut t = Tracker::default();
        let enq = Enqueued {
            job: job(1, "homelab-genai.target", "start"),
            affected: vec![
                job(1, "homelab-genai.target", "start"),
                job(2, "homelab-database.service", "start"),
            ],
            exact: true,
        };
        t.add(&enq);
        t.apply(&removed(2, "homelab-database.service", "failed"));
        t.apply(&removed(1, "homelab-genai.target", "dependency"));
        assert!(t.done() && !t.ok());
        assert_eq!(t.failed_units(), vec!["homelab-database.service"]);
        let mut j = HashMap::new();
        j.insert(
            "homelab-database.service".to_string(),
            vec!["compose up failed".to_string()],
        );
        let r = t.report(Action::Start, false, &j);
        assert!(!r.ok);
        assert_eq!(
            r.results[1].journal.as_deref(),
            Some(&["compose up failed".to_string()][..])
        );
        assert_eq!(r.results[0].journal, None, "a dependency failure carries no journal");
    }

    #[test]
    fn without_enqueue_unit_job_later_jobs_are_adopted() {
        let mut t = Tracker::default();
        let enq = Enqueued {
            job: job(5, "homelab.target", "start"),
            affected: vec![job(5, "homelab.target", "start")],
            exact: false,
        };
        t.add(&enq);
        let new = Event::JobNew {
            id: 6,
            job: "/org/freedesktop/systemd1/job/6".into(),
            unit: "homelab-a.service".into(),
        };
        assert_eq!(t.apply(&new), vec![1]);
        let old = Event::JobNew {
            id: 4,
            job: "/org/freedesktop/systemd1/job/4".into(),
            unit: "x.service".into(),
        };
        assert!(t.apply(&old).is_empty());
    }

    #[test]
    fn json_shape_of_start_results() {
        let mut t = Tracker::default();
        let enq = Enqueued {
            job: job(3, "homelab-x.service", "start"),
            affected: vec![job(3, "homelab-x.service", "start")],
            exact: true,
        };
        t.add(&enq);
        let queued = serde_json::to_value(t.report(Action::Start, true, &HashMap::new())).unwrap();
        assert_eq!(
            queued,
            serde_json::json!({
                "action": "start",
                "ok": true,
                "results": [{"unit": "homelab-x.service", "job": "start", "result": "queued", "job_id": 3, "requested": true}]
            })
        );
        t.apply(&removed(3, "homelab-x.service", "timeout"));
        let mut j = HashMap::new();
        j.insert("homelab-x.service".to_string(), vec!["a".to_string(), "b".to_string()]);
        let done = serde_json::to_value(t.report(Action::Start, false, &j)).unwrap();
        assert_eq!(done["ok"], false);
        assert_eq!(done["results"][0]["result"], "timeout");
        assert_eq!(done["results"][0]["journal"], serde_json::json!(["a", "b"]));
    }
}
