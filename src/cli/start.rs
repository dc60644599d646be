//! `hlsys start|stop|restart [NAME…]`: jobs for stacks, layers or everything, enqueued
//! over D-Bus and followed to their end.
//!
//! The match rules for the manager's job signals and the units' property changes are in
//! place and `Subscribe` is called before the first job is enqueued, so no job can end
//! unseen. `EnqueueUnitJob` names every job its transaction installed; each is followed
//! until its `JobRemoved`, with live progress per unit (a redrawn view on a terminal,
//! plain lines otherwise). A failed job makes the command exit 1, naming the unit and
//! showing its last journal lines.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{color_enabled, config_failure, paint, Global, EXIT_CONFIG, EXIT_FAILURE, EXIT_OK};
use crate::model::Model;
use crate::resolve::{resolve_all, wanted_units, Target};
use crate::systemd::{self, Enqueued, Event, Job, UnitChange};

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Stacks (id, tree path like genai/ollama, or last path component), layers or
    /// unit names [default: homelab.target, everything]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Enqueue the jobs and return at once, without waiting for them to finish
    #[arg(long)]
    pub no_block: bool,
    /// Print every job's result as JSON on stdout: {"ok", "results": [{"unit","job","result"}]}
    #[arg(long)]
    pub json: bool,
}

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

/// Set to use hlsys's mutating commands as a user that polkit authorises: the euid check
/// is skipped and systemd decides.
pub const POLKIT_ENV: &str = "HLSYS_POLKIT";

/// The refusal a non-root user gets for a command that changes the system.
pub fn root_message(verb: &str) -> String {
    format!("hlsys {verb} needs root (or polkit authorisation): run it with sudo")
}

/// `Some(exit code)` when `verb` must not go on: not root (and not told that polkit
/// authorises this user).
pub fn refuse_non_root(verb: &str) -> Option<ExitCode> {
    let root = nix::unistd::geteuid().is_root();
    let polkit = std::env::var_os(POLKIT_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    if root || polkit {
        return None;
    }
    eprintln!("hlsys: {}", root_message(verb));
    Some(ExitCode::from(EXIT_FAILURE))
}

/// Turns a refusal by systemd (AccessDenied, InteractiveAuthorizationRequired) into the
/// same clear message as the euid check; other errors go on as they are.
pub fn map_denied(verb: &str, r: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    match r {
        Err(e) if e.chain().any(|c| c.downcast_ref::<systemd::AccessDenied>().is_some()) => {
            eprintln!("hlsys: {} (systemd said: access denied)", root_message(verb));
            Ok(ExitCode::from(EXIT_FAILURE))
        }
        other => other,
    }
}

/// Loads the model and resolves the NAMEs; `Err(exit code)` after printing why not.
pub fn model_and_targets(global: &Global, names: &[String]) -> Result<(Model, Vec<Target>), ExitCode> {
    let model = match global.load_model() {
        Ok(m) => m,
        Err(e) => return Err(config_failure(&e)),
    };
    match resolve_all(&model, names) {
        Ok(t) => Ok((model, t)),
        Err(e) => {
            eprintln!("hlsys: {e}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

pub fn run(global: &Global, args: &StartArgs, action: Action) -> anyhow::Result<ExitCode> {
    let verb = action.job_type();
    if let Some(code) = refuse_non_root(verb) {
        return Ok(code);
    }
    let (model, targets) = match model_and_targets(global, &args.names) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let rt = crate::docker::runtime()?;
    let r = rt.block_on(async {
        let conn = systemd::system_bus().await?;
        let units = units_for(&conn, &model, &targets, action).await?;
        let opts = Options {
            no_block: args.no_block,
            json: args.json,
        };
        let outcome = execute(&conn, &units, action, &opts).await?;
        Ok(outcome.exit_code())
    });
    map_denied(verb, r)
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

pub struct Options {
    pub no_block: bool,
    pub json: bool,
}

/// One job followed to its end.
#[derive(Debug, Clone)]
struct Row {
    unit: String,
    job_id: u32,
    job_type: String,
    /// A unit named on the command line (rather than pulled in).
    requested: bool,
    active_state: String,
    sub_state: String,
    status_text: String,
    result: Option<String>,
    started: Instant,
    ended: Option<Instant>,
}

impl Row {
    fn ok(&self) -> bool {
        matches!(self.result.as_deref(), Some("done" | "skipped"))
    }

    /// Failed by itself, not because something it needed failed or its job was replaced.
    fn root_cause(&self) -> bool {
        !self.ok() && !matches!(self.result.as_deref(), None | Some("dependency" | "canceled"))
    }

    /// The supervisor's STATUS text while the unit starts (before and after, it is a
    /// leftover of an earlier run).
    fn progress_text(&self) -> Option<&str> {
        (self.active_state == "activating" && !self.status_text.is_empty()).then_some(self.status_text.as_str())
    }

    fn elapsed(&self) -> Duration {
        self.ended.unwrap_or_else(Instant::now) - self.started
    }

    fn state(&self) -> String {
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
    rows: Vec<Row>,
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
pub struct Report {
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
        self.rows.push(Row {
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

    pub fn done(&self) -> bool {
        self.rows.iter().all(|r| r.result.is_some())
    }

    pub fn ok(&self) -> bool {
        self.rows.iter().all(Row::ok)
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

    pub fn report(&self, action: Action, queued: bool, journals: &HashMap<String, Vec<String>>) -> Report {
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
        Report {
            action: action.job_type().into(),
            ok: queued || self.ok(),
            results,
        }
    }
}

fn apply_change(r: &mut Row, c: &UnitChange) -> bool {
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

/// Progress on stderr: a view redrawn in place on a terminal, plain lines otherwise.
struct Progress {
    tty: bool,
    color: bool,
    /// Lines of the last redraw (to move back over them).
    drawn: usize,
    /// Plain mode: the last line printed per row.
    last: HashMap<usize, String>,
    spin: usize,
    quiet: bool,
}

const SPINNER: [&str; 4] = ["|", "/", "-", "\\"];

impl Progress {
    fn new(quiet: bool) -> Progress {
        let stderr = std::io::stderr();
        Progress {
            tty: stderr.is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb"),
            color: color_enabled(&stderr),
            drawn: 0,
            last: HashMap::new(),
            spin: 0,
            quiet,
        }
    }

    fn mark(&self, r: &Row) -> String {
        match r.result.as_deref() {
            None => SPINNER[self.spin % SPINNER.len()].to_string(),
            Some("done") => paint(self.color, 32, "✓"),
            Some("skipped") => paint(self.color, 33, "-"),
            Some(_) => paint(self.color, 31, "✗"),
        }
    }

    fn plain_line(r: &Row) -> String {
        let mut s = format!("{}: {}", r.unit, r.job_type);
        match &r.result {
            Some(res) => s.push_str(&format!(" {res} after {:.1}s", r.elapsed().as_secs_f64())),
            None => {
                let st = r.state();
                if st.is_empty() {
                    s.push_str(&format!(" queued (job {})", r.job_id));
                } else {
                    s.push_str(&format!(", {st}"));
                }
                if let Some(t) = r.progress_text() {
                    s.push_str(&format!(": {t}"));
                }
            }
        }
        s
    }

    /// Shows rows `changed` (plain) or everything (terminal).
    fn update(&mut self, t: &Tracker, changed: &[usize]) {
        if self.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if !self.tty {
            for &i in changed {
                let line = Self::plain_line(&t.rows[i]);
                if self.last.get(&i) != Some(&line) {
                    let _ = writeln!(err, "{line}");
                    self.last.insert(i, line);
                }
            }
            return;
        }
        self.spin += 1;
        let width = t.rows.iter().map(|r| r.unit.chars().count()).max().unwrap_or(0);
        let cols = terminal_width();
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", self.drawn));
        }
        for r in &t.rows {
            let mut line = format!(
                "{} {:<width$}  {:<7} {:>5.1}s  {}",
                self.mark(r),
                r.unit,
                r.job_type,
                r.elapsed().as_secs_f64(),
                r.result.clone().unwrap_or_else(|| r.state()),
            );
            if let Some(t) = r.progress_text().filter(|_| r.result.is_none()) {
                line.push_str(&format!("  {t}"));
            }
            out.push_str("\x1b[2K");
            out.push_str(&truncate(&line, cols));
            out.push('\n');
        }
        self.drawn = t.rows.len();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(160)
}

/// Cuts a line to `cols` visible characters (escape sequences count as nothing).
fn truncate(line: &str, cols: usize) -> String {
    let mut out = String::new();
    let mut visible = 0;
    let mut in_esc = false;
    for c in line.chars() {
        if c == '\x1b' {
            in_esc = true;
        }
        if in_esc {
            out.push(c);
            if c == 'm' {
                in_esc = false;
            }
            continue;
        }
        if visible + 1 >= cols {
            break;
        }
        out.push(c);
        visible += 1;
    }
    out
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

/// The outcome of [`execute`].
pub struct Outcome {
    pub ok: bool,
}

impl Outcome {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(if self.ok { EXIT_OK } else { EXIT_FAILURE })
    }
}

/// Enqueues `action` for each unit in order and follows every job of the transactions
/// to its end (unless `no_block`), showing progress; prints the JSON report when asked.
pub async fn execute(
    conn: &zbus::Connection,
    units: &[String],
    action: Action,
    opts: &Options,
) -> anyhow::Result<Outcome> {
    // Match rules and Subscribe first: nothing a job does can be missed.
    let mut events = systemd::Events::subscribe(conn).await?;
    let mut tracker = Tracker::default();
    let mut progress = Progress::new(false);
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
    if opts.no_block {
        // Where each unit stands now, in one call.
        if let Ok(states) = systemd::list_units_by_names(conn, &tracker.units()).await {
            for s in states {
                tracker.set_state(&s.name, &s.active_state, &s.sub_state);
            }
        }
        if !opts.json {
            for r in &tracker.rows {
                eprintln!("{}: {} job {} enqueued ({})", r.unit, r.job_type, r.job_id, r.state());
            }
        } else {
            println!(
                "{}",
                serde_json::to_string_pretty(&tracker.report(action, true, &HashMap::new()))?
            );
        }
        return Ok(Outcome { ok: true });
    }
    let all: Vec<usize> = (0..tracker.rows.len()).collect();
    progress.update(&tracker, &all);
    let mut tick = tokio::time::interval(Duration::from_millis(if progress.tty { 150 } else { 1000 }));
    while !tracker.done() {
        tokio::select! {
            ev = events.next() => {
                let Some(ev) = ev else { anyhow::bail!("lost the connection to systemd while waiting for jobs") };
                let changed = tracker.apply(&ev);
                if !changed.is_empty() {
                    progress.update(&tracker, &changed);
                }
            }
            _ = tick.tick() => {
                if progress.tty {
                    progress.update(&tracker, &[]);
                }
            }
        }
    }
    progress.update(&tracker, &[]);
    drop(events);
    let _ = conn
        .call_method(
            Some(systemd::DEST),
            systemd::PATH,
            Some(systemd::MANAGER),
            "Unsubscribe",
            &(),
        )
        .await;

    let failed = tracker.failed_units();
    let mut journals = HashMap::new();
    if !failed.is_empty() {
        // journald may still be writing the last lines the unit printed.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for u in &failed {
            journals.insert(u.clone(), journal_tail(u, 10));
        }
    }
    let report = tracker.report(action, false, &journals);
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    if !report.ok {
        let color = color_enabled(&std::io::stderr());
        let bad: Vec<String> = report
            .results
            .iter()
            .filter(|r| !matches!(r.result.as_str(), "done" | "skipped"))
            .map(|r| format!("{} ({})", r.unit, r.result))
            .collect();
        eprintln!(
            "{}",
            paint(
                color,
                31,
                &format!("hlsys: {} failed: {}", action.job_type(), bad.join(", "))
            )
        );
        for u in &failed {
            eprintln!("--- {u}: last journal lines ---");
            for l in journals.get(u).into_iter().flatten() {
                eprintln!("  {l}");
            }
        }
    } else if !opts.json {
        let n = tracker.rows.len();
        eprintln!(
            "{} {}: {} job{} done",
            action.job_type(),
            units.join(" "),
            n,
            if n == 1 { "" } else { "s" }
        );
    }
    Ok(Outcome { ok: report.ok })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u32, unit: &str, t: &str) -> Job {
        Job {
            id,
            path: format!("/org/freedesktop/systemd1/job/{id}"),
            unit: unit.into(),
            job_type: t.into(),
        }
    }

    fn removed(id: u32, unit: &str, result: &str) -> Event {
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
    fn property_changes_reach_the_rows_of_their_unit() {
        let mut t = Tracker::default();
        let enq = Enqueued {
            job: job(3, "homelab-x.service", "start"),
            affected: vec![job(3, "homelab-x.service", "start")],
            exact: true,
        };
        t.add(&enq);
        let ev = Event::Unit {
            path: systemd::unit_path("homelab-x.service"),
            change: UnitChange {
                active_state: Some("activating".into()),
                sub_state: Some("start".into()),
                status_text: Some("waiting for db health".into()),
            },
        };
        assert_eq!(t.apply(&ev), vec![0]);
        assert_eq!(t.apply(&ev), Vec::<usize>::new(), "no change, nothing to redraw");
        assert_eq!(
            Progress::plain_line(&t.rows[0]),
            "homelab-x.service: start, activating (start): waiting for db health"
        );
        let other = Event::Unit {
            path: systemd::unit_path("homelab-y.service"),
            change: UnitChange::default(),
        };
        assert!(t.apply(&other).is_empty());
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

    #[test]
    fn truncation_keeps_colour_codes_whole() {
        assert_eq!(truncate("abcdef", 4), "abc");
        assert_eq!(truncate("\x1b[32m✓\x1b[0m abc", 4), "\x1b[32m✓\x1b[0m a");
    }
}
