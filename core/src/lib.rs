//! hlsys-core: the pure core of hlsys, shared by the generator and the `hlsys` CLI.
//!
//! Data flows config → tree → compose → model → graph → units → generator. Nothing here
//! talks to Docker or systemd: it reads files and returns data, so the generator can run
//! it at early boot and tests can run it on fixture trees without root.
//!
//! - [`config`]: hlsys.toml, networks.toml, service.toml, `[swarm]`, the host's root;
//! - [`tree`]: the stack directories found, their ids, layers and env files, the graph;
//! - [`compose`]: one Compose project read as `docker compose config` reads it;
//! - [`model`]: the resolved tree every other part reads;
//! - [`units`]: model → unit files (stacks, layers, preparation, swarm, sandbox);
//! - [`generator`]: what the generator writes (units, links, its report);
//! - [`swarm`]: the deploy order and the Compose → Swarm adjustment;
//! - [`trust`]: who may own and write what hlsys acts on;
//! - leaves shared by all: [`bounded`] reading, [`capped`] output, [`paths`], [`escape`], [`redact`],
//!   [`write`], [`exit`].

pub mod bounded;
pub mod capped;
pub mod compose;
pub mod config;
pub mod escape;
pub mod exit;
pub mod generator;
pub mod model;
pub mod paths;
pub mod redact;
pub mod swarm;
pub mod tree;
pub mod trust;
pub mod units;
pub mod write;
