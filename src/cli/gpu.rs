//! `hlsys gpu setup|status`: register the nvidia runtime with Docker; show whether each
//! GPU stack can get its GPU on this host.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::check::print_status_table;
use super::global::{config_failure, Global};
use crate::gpu::{self, SetupOutcome};
use hlsys_core::exit::{EXIT_FAILURE, EXIT_OK};

#[derive(Debug, clap::Args)]
pub struct GpuArgs {
    #[command(subcommand)]
    pub command: GpuCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum GpuCommand {
    /// Register nvidia-container-runtime in /etc/docker/daemon.json (keeps other keys, backs up)
    Setup(SetupArgs),
    /// Show the host's GPU support and whether each GPU stack's mechanisms work here
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// Treat DIR as the root file system (daemon.json and PATH are looked up below it)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON: {"host": {...}, "stacks": [...]}
    #[arg(long)]
    pub json: bool,
    /// Host root for /proc, /dev and /etc/cdi (for tests)
    #[arg(long, value_name = "DIR", default_value = "/", hide = true)]
    pub root: PathBuf,
}

pub fn run(global: &Global, args: &GpuArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        GpuCommand::Setup(a) => match gpu::setup(&a.root)? {
            SetupOutcome::NoRuntime => {
                eprintln!(
                    "hlsys: nvidia-container-runtime is not on PATH below {}; install nvidia-container-toolkit first",
                    a.root.display()
                );
                Ok(ExitCode::from(EXIT_FAILURE))
            }
            SetupOutcome::Unchanged { path } => {
                println!(
                    "{} already registers the nvidia runtime; nothing changed",
                    path.display()
                );
                Ok(ExitCode::from(EXIT_OK))
            }
            SetupOutcome::Changed { path, backup } => {
                println!("registered the nvidia runtime in {}", path.display());
                if let Some(b) = backup {
                    println!("previous file kept as {}", b.display());
                }
                println!("Docker needs a restart to use it: systemctl restart docker");
                Ok(ExitCode::from(EXIT_OK))
            }
        },
        GpuCommand::Status(a) => {
            let model = match global.load_model() {
                Ok(m) => m,
                Err(e) => return Ok(config_failure(&e)),
            };
            let host = crate::docker::runtime()?.block_on(async {
                let docker = crate::docker::connect().await;
                gpu::detect(&a.root, docker.as_ref()).await
            });
            let stacks = gpu::assess(&model, &host);
            let good = stacks.iter().filter(|s| s.enabled).all(|s| s.works());
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "host": host, "stacks": stacks }))?
                );
            } else {
                print_host(&host);
                let rows: Vec<Vec<String>> = stacks
                    .iter()
                    .flat_map(|s| {
                        s.mechanisms.iter().map(move |m| {
                            vec![
                                s.stack.clone(),
                                serde_json::to_value(m.mechanism)
                                    .ok()
                                    .and_then(|v| v.as_str().map(String::from))
                                    .unwrap_or_default(),
                                if m.works {
                                    "ok"
                                } else if s.enabled {
                                    "fail"
                                } else {
                                    "warn"
                                }
                                .into(),
                                m.reason.clone(),
                            ]
                        })
                    })
                    .collect();
                println!();
                if rows.is_empty() {
                    println!("no stack asks for a GPU");
                } else {
                    print_status_table(&["STACK", "MECHANISM", "STATUS", "DETAILS"], &rows, 2);
                }
            }
            Ok(ExitCode::from(if good { EXIT_OK } else { EXIT_FAILURE }))
        }
    }
}

fn print_host(h: &gpu::HostGpu) {
    let path = |p: &Option<PathBuf>| p.as_ref().map_or("-".into(), |p| p.display().to_string());
    let rows = vec![
        vec!["driver".into(), h.driver_version.clone().unwrap_or_else(|| "-".into())],
        vec![
            "/dev/nvidiactl".into(),
            if h.nvidiactl { "present" } else { "-" }.into(),
        ],
        vec!["nvidia-smi".into(), path(&h.nvidia_smi)],
        vec!["toolkit hook".into(), path(&h.toolkit_hook)],
        vec![
            "CDI devices".into(),
            if h.cdi_devices.is_empty() {
                "-".into()
            } else {
                h.cdi_devices.join(", ")
            },
        ],
        vec![
            "Docker runtimes".into(),
            match (&h.runtimes, &h.docker_error) {
                (Some(r), _) => r.join(", "),
                (None, Some(e)) => format!("unknown: {e}"),
                (None, None) => "-".into(),
            },
        ],
    ];
    super::output::print_table(&["HOST", "VALUE"], &rows);
    for e in &h.cdi_errors {
        eprintln!("hlsys: unreadable CDI spec: {e}");
    }
}
