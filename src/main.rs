//! `hlsys`, the companion CLI. Each subcommand lives in its own module under src/cli/
//! with an `Args` struct and a `run()`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = hlsys::cli::Cli::parse();
    hlsys::cli::init_logging();
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole anyhow context chain on one line.
            eprintln!("hlsys: error: {e:#}");
            ExitCode::from(hlsys::cli::EXIT_FAILURE)
        }
    }
}
