//! hlsys: hand a tree of Docker Compose stacks to systemd.
//!
//! The pure core (config → tree → model → units) has no I/O beyond reading files, so the
//! generator can run it at early boot and tests can run it on fixture trees without root.
//! Docker (bollard) and systemd (D-Bus) live at the edges.

pub mod check;
pub mod cli;
pub mod compose;
pub mod config;
pub mod docker;
pub mod document;
pub mod envfile;
pub mod escape;
pub mod extends;
pub mod files;
pub mod generator;
pub mod gpu;
pub mod graph;
pub mod include;
pub mod interpolate;
pub mod loader;
pub mod merge;
pub mod model;
pub mod network;
pub mod paths;
pub mod resolve;
pub mod source;
pub mod supervise;
pub mod systemd;
pub mod tree;
pub mod units;
pub mod volume;
