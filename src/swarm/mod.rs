//! `hlsys swarm`: the stack tree on Docker Swarm. [`deploy`] deploys it layer by layer,
//! health-gated (the order itself is `hlsys_core::swarm`); [`state`] reads what Swarm
//! runs (services, tasks, nodes) over the Engine API.

pub mod deploy;
pub mod state;

pub use deploy::{deploy, rm, status, DeployReport, StackOutcome};
