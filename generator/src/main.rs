//! `hlsys-generator`: a systemd generator (systemd.generator(7)). systemd runs it at boot
//! and at every `daemon-reload` with the generator directories as arguments; it writes
//! the hlsys units into the first (normal) one. Reading and rendering live in
//! hlsys-core, which links no Docker, D-Bus or async runtime; this crate is the run
//! ([`run`]) and its log ([`kmsg`]).

mod kmsg;
mod run;

use std::process::ExitCode;

use hlsys_core::config::host::{Host, ROOT_ENV};
use hlsys_core::config::CONFIG_ENV;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut log = kmsg::KmsgLog::open();
    // The only ambient reads: HLSYS_CONFIG and HLSYS_GENERATOR_ROOT let tests point the
    // generator at a fixture config or a fake root; the core is handed the result.
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let host = Host::new(std::env::var_os(ROOT_ENV), std::env::var_os(CONFIG_ENV), &cwd);
    ExitCode::from(run::main_with(&args, &host, &mut log))
}
