//! `hlsys start|stop|restart [NAME…]`: jobs for stacks, layers or everything, enqueued
//! over D-Bus and followed to their end by [`crate::jobs`], with live progress per unit
//! (a redrawn view on a terminal, plain lines otherwise). A failed job makes the command
//! exit 1, naming the unit and showing its last journal lines.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use super::authz::map_denied;
use super::global::{model_and_targets, Global};
use super::output::{color_enabled, paint};
pub use crate::jobs::Action;
use crate::jobs::{self, JobRow, JobsReport, Tracker};
use crate::systemd;
use hlsys_core::exit::{EXIT_FAILURE, EXIT_OK};

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

pub fn run(global: &Global, args: &StartArgs, action: Action) -> anyhow::Result<ExitCode> {
    // No euid check: systemd decides (root, or polkit for a member of the homelab group),
    // and its refusal becomes one clear message (map_denied).
    let verb = action.job_type();
    let (model, targets) = match model_and_targets(global, &args.names) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let prefix = model.config.unit_prefix.clone();
    let rt = crate::docker::runtime()?;
    let r = rt.block_on(async {
        let conn = systemd::system_bus().await?;
        let units = jobs::units_for(&conn, &model, &targets, action).await?;
        let opts = Options {
            no_block: args.no_block,
            json: args.json,
        };
        let ok = execute(&conn, &units, action, &opts).await?;
        Ok(ExitCode::from(if ok { EXIT_OK } else { EXIT_FAILURE }))
    });
    map_denied(verb, &prefix, r)
}

pub struct Options {
    pub no_block: bool,
    pub json: bool,
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

    fn mark(&self, r: &JobRow) -> String {
        match r.result.as_deref() {
            None => SPINNER[self.spin % SPINNER.len()].to_string(),
            Some("done") => paint(self.color, 32, "✓"),
            Some("skipped") => paint(self.color, 33, "-"),
            Some(_) => paint(self.color, 31, "✗"),
        }
    }

    fn plain_line(r: &JobRow) -> String {
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
                let line = Self::plain_line(&t.rows()[i]);
                if self.last.get(&i) != Some(&line) {
                    let _ = writeln!(err, "{line}");
                    self.last.insert(i, line);
                }
            }
            return;
        }
        self.spin += 1;
        let width = t.rows().iter().map(|r| r.unit.chars().count()).max().unwrap_or(0);
        let cols = terminal_width();
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", self.drawn));
        }
        for r in t.rows() {
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
        self.drawn = t.rows().len();
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

/// Enqueues `action` for each unit in order and follows every job of the transactions
/// to its end (unless `no_block`), showing progress; prints the JSON report when asked.
/// Returns whether every job succeeded.
pub async fn execute(
    conn: &zbus::Connection,
    units: &[String],
    action: Action,
    opts: &Options,
) -> anyhow::Result<bool> {
    let mut progress = Progress::new(false);
    let tick = Duration::from_millis(if progress.tty { 150 } else { 1000 });
    let tracker = jobs::follow(conn, units, action, opts.no_block, tick, &mut |t, changed| {
        // A tick redraws the terminal view (its spinner and times); plain lines only change.
        if progress.tty || !changed.is_empty() {
            progress.update(t, changed)
        }
    })
    .await?;
    if opts.no_block {
        if opts.json {
            let report = tracker.report(action, true, &HashMap::new());
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            for r in tracker.rows() {
                eprintln!("{}: {} job {} enqueued ({})", r.unit, r.job_type, r.job_id, r.state());
            }
        }
        return Ok(true);
    }
    progress.update(&tracker, &[]);
    let journals = jobs::failure_journals(&tracker).await;
    let report = tracker.report(action, false, &journals);
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    if !report.ok {
        print_failure(&report, &tracker.failed_units(), &journals);
    } else if !opts.json {
        let n = tracker.rows().len();
        let plural = if n == 1 { "" } else { "s" };
        eprintln!("{} {}: {n} job{plural} done", action.job_type(), units.join(" "));
    }
    Ok(report.ok)
}

/// The jobs that did not succeed, and the journal of each unit that failed by itself.
fn print_failure(report: &JobsReport, failed: &[String], journals: &HashMap<String, Vec<String>>) {
    let color = color_enabled(&std::io::stderr());
    let bad: Vec<String> = report
        .results
        .iter()
        .filter(|r| !matches!(r.result.as_str(), "done" | "skipped"))
        .map(|r| format!("{} ({})", r.unit, r.result))
        .collect();
    let line = format!("hlsys: {} failed: {}", report.action, bad.join(", "));
    eprintln!("{}", paint(color, 31, &line));
    for u in failed {
        eprintln!("--- {u}: last journal lines ---");
        for l in journals.get(u).into_iter().flatten() {
            eprintln!("  {l}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::tests::job;
    use crate::systemd::{Enqueued, Event, UnitChange};

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
            Progress::plain_line(&t.rows()[0]),
            "homelab-x.service: start, activating (start): waiting for db health"
        );
        let other = Event::Unit {
            path: systemd::unit_path("homelab-y.service"),
            change: UnitChange::default(),
        };
        assert!(t.apply(&other).is_empty());
    }

    #[test]
    fn truncation_keeps_colour_codes_whole() {
        assert_eq!(truncate("abcdef", 4), "abc");
        assert_eq!(truncate("\x1b[32m✓\x1b[0m abc", 4), "\x1b[32m✓\x1b[0m a");
    }
}
