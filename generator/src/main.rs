//! `hlsys-generator`: a systemd generator (systemd.generator(7)). systemd runs it at boot
//! and at every `daemon-reload` with the generator directories as arguments; it writes
//! the hlsys units into the first (normal) one. All logic lives in the hlsys library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut log = hlsys::generator::KmsgLog::open();
    // HLSYS_CONFIG (read inside) lets tests point the generator at a fixture config.
    ExitCode::from(hlsys::generator::main_with(&args, None, &mut log))
}
