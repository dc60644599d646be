//! `hlsys-generator`: a systemd generator (systemd.generator(7)). systemd runs it at boot
//! and at every `daemon-reload` with the generator directories as arguments; it writes
//! the hlsys units into the first (normal) one. Reading and rendering live in
//! hlsys-core, which links no Docker, D-Bus or async runtime; this crate is the run
//! ([`run`]) and its log ([`kmsg`]).

mod kmsg;
mod run;

use std::process::ExitCode;

use hlsys_core::config::host::{Host, ROOT_ENV};
use hlsys_core::config::scope::{Scope, UserEnv, SCOPE_ENV};
use hlsys_core::config::CONFIG_ENV;
use hlsys_core::exit::EXIT_CONFIG;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut log = kmsg::KmsgLog::open();
    // The only ambient reads: HLSYS_CONFIG and HLSYS_GENERATOR_ROOT let tests point the
    // generator at a fixture config or a fake root; the core is handed the result.
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let mut host = Host::new(std::env::var_os(ROOT_ENV), std::env::var_os(CONFIG_ENV), &cwd);
    // Installed in user-generators/ too: systemd says which manager runs it, and a user
    // manager runs it as the user, with HOME set (crate hlsys_core::config::scope).
    if Scope::from_env(std::env::var_os(SCOPE_ENV).as_deref()) == Scope::User {
        match UserEnv::of_process(std::env::var_os("HOME"), std::env::var_os("XDG_CONFIG_HOME")) {
            Ok(u) => host = host.for_user(u),
            Err(e) => {
                log.log(3, &format!("no units generated: {e}"));
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    }
    ExitCode::from(run::main_with(&args, &host, &mut log))
}
