//! hlsys: hand a tree of Docker Compose stacks to systemd.
//!
//! The pure core (config → tree → model → units) has no I/O beyond reading files, so the
//! generator can run it at early boot and tests can run it on fixture trees without root.
//! Docker (bollard) and systemd (D-Bus) live at the edges.

pub use hlsys_core::{
    bounded, compose, config, document, envfile, escape, exit, extends, files, generator, graph, host, include,
    interpolate, loader, merge, model, netcheck, paths, redact, sandbox, source, swarm as swarm_core, swarm_adjust,
    swarm_units, tree, trust, unit_file, units, volume, write, yaml,
};

pub mod check;
pub mod cli;
pub mod compose_cli;
pub mod docker;
pub mod gpu;
pub mod health;
pub mod jobs;
pub mod network;
pub mod prepare;
pub mod pull_progress;
pub mod pull_slots;
pub mod resolve;
pub mod supervise;
pub mod swarm;
pub mod swarm_state;
pub mod systemd;
