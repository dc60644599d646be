//! `hlsys supervise <stack>`: the main process of each stack unit (Type=notify), and the
//! preparation units' `hlsys supervise --prepare`.
//!
//! - [`supervisor`]: compose up, READY=1 once healthy, then the watch; ExecStop's down;
//! - [`watch`]: the project's containers through the Docker API (ready, health, deaths),
//!   with [`restarts`]: the declared restart policy, applied by hlsys;
//! - [`takeover`]: the containers taken from Docker's restart manager (policy "no");
//! - [`prepare`]: missing images pulled under a slot, containers created ahead of the start;
//! - [`pull_slots`], [`pull_progress`]: the bound on concurrent pulls, Compose's pull output;
//! - [`notify`]: what systemd is told (STATUS=, READY=1, timeout extensions).

pub mod notify;
pub mod prepare;
pub mod pull_progress;
pub mod pull_slots;
pub mod restarts;
pub mod supervisor;
pub mod takeover;
pub mod watch;

pub use supervisor::{down, down_project, run, run_fallback, Mode};
