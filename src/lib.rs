//! hlsys: hand a tree of Docker Compose stacks to systemd.
//!
//! The pure core (config → tree → compose → model → units) is the `hlsys-core` crate;
//! this crate is the edges: the CLI ([`cli`]), systemd over D-Bus ([`systemd`]), Docker
//! over its API ([`docker`], [`network`], [`gpu`], [`health`]), the Compose CLI
//! ([`compose_cli`]), the supervisor of each stack unit ([`supervise`]), the preflight
//! ([`check`]) and Swarm mode ([`swarm`]).

pub mod check;
pub mod cli;
pub mod compose_cli;
pub mod docker;
pub mod gpu;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod network;
pub mod notify;
pub mod resolve;
pub mod supervise;
pub mod swarm;
pub mod systemd;
pub mod update;
