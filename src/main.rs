//! `hlsys`, the companion CLI. Each subcommand lives in its own module under src/cli/
//! with an `Args` struct and a `run()`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`hlsys plan | head`) like other Unix tools, instead
    // of panicking in println!.
    // SAFETY: setting a signal disposition to SIG_DFL at start-up, before any threads.
    unsafe {
        let _ = nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl);
    }
    let cli = hlsys::cli::Cli::parse();
    hlsys::cli::init_logging();
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole anyhow context chain on one line.
            eprintln!("hlsys: error: {e:#}");
            ExitCode::from(hlsys_core::exit::EXIT_FAILURE)
        }
    }
}
