//! hlsys-core: the pure core of hlsys, shared by the generator and the `hlsys` CLI.
//!
//! config → tree → model → graph → units → generator. Nothing here talks to Docker or
//! systemd: it reads files and returns data, so the generator can run it at early boot
//! and tests can run it on fixture trees without root.

pub mod bounded;
pub mod compose;
pub mod config;
pub mod document;
pub mod envfile;
pub mod escape;
pub mod exit;
pub mod extends;
pub mod files;
pub mod generator;
pub mod graph;
pub mod host;
pub mod include;
pub mod interpolate;
pub mod loader;
pub mod merge;
pub mod model;
pub mod netcheck;
pub mod paths;
pub mod prepare;
pub mod redact;
pub mod sandbox;
pub mod source;
pub mod swarm;
pub mod swarm_adjust;
pub mod swarm_units;
pub mod tree;
pub mod trust;
pub mod unit_file;
pub mod units;
pub mod volume;
pub mod write;
pub mod yaml;
