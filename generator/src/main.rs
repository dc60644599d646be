//! `hlsys-generator`: a systemd generator (systemd.generator(7)). systemd runs it at boot
//! and at every `daemon-reload` with the generator directories as arguments; it writes
//! the hlsys units into the first (normal) one. All logic lives in
//! hlsys-core, which links no Docker, D-Bus or async runtime.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut log = hlsys_core::generator::KmsgLog::open();
    // HLSYS_CONFIG (read inside) lets tests point the generator at a fixture config.
    ExitCode::from(hlsys_core::generator::main_with(&args, None, &mut log))
}
