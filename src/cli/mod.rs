//! Command-line interface of `hlsys`: clap definitions and dispatch. Each subcommand is
//! a module with `#[derive(clap::Args)] struct …Args` and
//! `fn run(global: &Global, args: &…Args) -> anyhow::Result<ExitCode>`; what they share
//! is in [`global`] (options, config, model) and [`output`] (colour, tables, logs).
//!
//! Exit codes mean the same everywhere: 0 all good, 1 something failed (some stacks in
//! error, a check failed, drift found), 2 unusable input (bad config, bad usage).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::systemd;

pub mod authz;
pub mod check;
pub mod enable;
pub mod global;
pub mod gpu;
pub mod logs;
pub mod metrics;
pub mod network;
pub mod notify;
pub mod output;
pub mod plan;
pub mod reload;
pub mod stacks;
pub mod start;
pub mod status;
pub mod supervise;
pub mod swarm;
pub mod update;

pub use global::Global;
pub use output::init_logging;

/// For the commands that start and stop units (start, stop, restart).
const ROOT_HELP: &str = "Needs root, or membership of group homelab with the polkit rule hlsys ships \
                         (/usr/share/polkit-1/rules.d/50-hlsys.rules): systemd decides. On a terminal, \
                         polkit may ask for a password.\nExit status: 0 every job done, \
                         1 a job failed or permission denied, 2 unusable config or NAME.";

/// For the commands that change the config (enable, disable).
const CONFIG_HELP: &str = "Needs root (or whoever may write the config's drop-in directory): the choice \
                           changes what starts at boot. Members of group homelab are refused with the \
                           command to run with sudo.\nExit status: 0 done, 1 a job failed or permission \
                           denied, 2 unusable config or NAME.";

#[derive(Debug, Parser)]
#[command(
    name = "hlsys",
    version,
    about = "Hand a tree of Docker Compose stacks to systemd",
    long_about = "hlsys reads a tree of Docker Compose stacks and hands it to systemd: \
                  hlsys-generator writes one service per stack and one target per layer; \
                  this CLI shows the model, prints the units, ensures Docker networks and \
                  runs the preflight.",
    after_help = "Exit status: 0 success, 1 something failed (stacks in error, failed checks, \
                  drift), 2 unusable config or usage.\nEnvironment: HLSYS_CONFIG (config path), \
                  HLSYS_LOG (log filter, e.g. debug), NO_COLOR."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the stacks of the tree with layer, networks, GPU need and dependencies
    Stacks(stacks::StacksArgs),
    /// Print the units the generator would write (a dry run), or the start order
    Plan(plan::PlanArgs),
    /// Reload systemd over D-Bus so the generator runs again [--start: then start homelab.target]
    Reload(reload::ReloadArgs),
    /// Run a stack as the main process of its unit (used by the generated units)
    Supervise(supervise::SuperviseArgs),
    /// Create the configured Docker networks, or show their state and drift
    Network(network::NetworkArgs),
    /// Register the nvidia runtime with Docker, or show GPU support per stack
    Gpu(gpu::GpuArgs),
    /// Preflight: Docker, Compose, config, trust (owners and modes), tree, networks, GPU, files, ports, restart policies
    Check(check::CheckArgs),
    /// Start stacks, layers or everything over D-Bus, following every job to its end
    #[command(after_help = ROOT_HELP)]
    Start(start::StartArgs),
    /// Stop stacks, layers or everything (what requires them stops too)
    #[command(after_help = ROOT_HELP)]
    Stop(start::StartArgs),
    /// Restart stacks, layers or everything
    #[command(after_help = ROOT_HELP)]
    Restart(start::StartArgs),
    /// The tree: layer → stack → containers, with unit state, supervisor status and health
    Status(status::StatusArgs),
    /// The journal of a stack, a layer or everything (journalctl -u …)
    Logs(logs::LogsArgs),
    /// Make stacks part of their layer again (recorded in <config>.d/50-hlsys-enable.toml)
    #[command(after_help = CONFIG_HELP)]
    Enable(enable::EnableArgs),
    /// Take stacks out of their layer: not started with it, nor at boot
    #[command(after_help = CONFIG_HELP)]
    Disable(enable::EnableArgs),
    /// Deploy the tree to a Docker Swarm layer by layer, health-gated; show or remove it
    Swarm(swarm::SwarmArgs),
    /// Send the [notify] messages: a failed unit (from OnFailure=), the ready message, a test
    Notify(notify::NotifyArgs),
    /// Print Prometheus metrics of the tree [--serve: answer one HTTP request on stdin]
    Metrics(metrics::MetricsArgs),
    /// Whether the registries have newer images for the stacks (--check: pulls nothing)
    Update(update::UpdateArgs),
}

impl Cli {
    pub fn run(&self) -> anyhow::Result<ExitCode> {
        // Someone at a terminal can answer polkit's password prompt; anyone else must get
        // a plain refusal instead of a call that waits for one.
        systemd::allow_interactive_auth(std::io::stdin().is_terminal());
        match &self.command {
            Command::Stacks(a) => stacks::run(&self.global, a),
            Command::Plan(a) => plan::run(&self.global, a),
            Command::Reload(a) => reload::run(&self.global, a),
            Command::Supervise(a) => supervise::run(&self.global, a),
            Command::Network(a) => network::run(&self.global, a),
            Command::Gpu(a) => gpu::run(&self.global, a),
            Command::Check(a) => check::run(&self.global, a),
            Command::Start(a) => start::run(&self.global, a, start::Action::Start),
            Command::Stop(a) => start::run(&self.global, a, start::Action::Stop),
            Command::Restart(a) => start::run(&self.global, a, start::Action::Restart),
            Command::Status(a) => status::run(&self.global, a),
            Command::Logs(a) => logs::run(&self.global, a),
            Command::Enable(a) => enable::run(&self.global, a, true),
            Command::Disable(a) => enable::run(&self.global, a, false),
            Command::Swarm(a) => swarm::run(&self.global, a),
            Command::Notify(a) => notify::run(&self.global, a),
            Command::Metrics(a) => metrics::run(&self.global, a),
            Command::Update(a) => update::run(&self.global, a),
        }
    }
}
