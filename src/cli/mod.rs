//! Command-line interface of `hlsys`: clap definitions and dispatch. Each subcommand is
//! a module with `#[derive(clap::Args)] struct …Args` and
//! `fn run(global: &Global, args: &…Args) -> anyhow::Result<ExitCode>`.
//!
//! Exit codes mean the same everywhere: 0 all good, 1 something failed (some stacks in
//! error, a check failed, drift found), 2 unusable input (bad config, bad usage).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, CONFIG_ENV};
use crate::host::Host;
use crate::model::Model;
use crate::resolve::{targets, Target};
use crate::systemd;

pub mod authz;
pub mod check;
pub mod enable;
pub mod gpu;
pub mod logs;
pub mod network;
pub mod plan;
pub mod reload;
pub mod stacks;
pub mod start;
pub mod status;
pub mod supervise;
pub mod swarm;

pub use crate::exit::{EXIT_CONFIG, EXIT_FAILURE, EXIT_OK};

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

/// Options every subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
        }
    }
}

impl Global {
    /// The host as this process sees it: `--config` beats `HLSYS_CONFIG` beats the
    /// default; relative paths are from the working directory. The only place the CLI
    /// reads them: the core is handed the result.
    pub fn host(&self) -> Host {
        let asked = self
            .config
            .clone()
            .map(Into::into)
            .or_else(|| std::env::var_os(CONFIG_ENV));
        let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
        Host::new(None, asked, &cwd)
    }

    pub fn load_config(&self) -> Result<Config, ConfigError> {
        self.host().load_config()
    }

    /// Config and tree; `Err` only when the config itself is unusable.
    pub fn load_model(&self) -> Result<Model, ConfigError> {
        let config = self.load_config()?;
        crate::tree::build(config)
    }
}

/// Prints a config error and gives exit status 2.
pub fn config_failure(e: &ConfigError) -> ExitCode {
    eprintln!("hlsys: config error: {e}");
    ExitCode::from(EXIT_CONFIG)
}

/// Logs go to stderr; `HLSYS_LOG` sets the filter (default: warnings).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HLSYS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color_enabled(&std::io::stderr()))
        .try_init();
}

/// Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
pub fn color_enabled(stream: &impl IsTerminal) -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && stream.is_terminal()
}

/// Wraps `text` in an ANSI colour when `on`; `code` is an SGR number (31 red, 32 green, 33 yellow).
pub fn paint(on: bool, code: u8, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Prints rows as left-aligned columns separated by two spaces.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// Loads the model and resolves the NAMEs; `Err(exit code)` after printing why not.
pub fn model_and_targets(global: &Global, names: &[String]) -> Result<(Model, Vec<Target>), ExitCode> {
    let model = match global.load_model() {
        Ok(m) => m,
        Err(e) => return Err(config_failure(&e)),
    };
    match targets(&model, names) {
        Ok(t) => Ok((model, t)),
        Err(e) => {
            eprintln!("hlsys: {e}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}
