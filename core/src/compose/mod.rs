//! One Compose project read as `docker compose config` reads it, statically: which files
//! make it up ([`load::files`]), how they are loaded and merged ([`load`]: documents,
//! `extends`, `include`, merge rules), the YAML, interpolation and `.env` rules of
//! compose-go, what hlsys reads of a loaded project ([`project`]) and keeps of each service ([`service`]).
//!
//! No Docker daemon and no `docker compose` binary: the generator runs this at early
//! boot. `tests/compose_parity.rs` checks the answers against the real binary.

pub mod envfile;
pub mod error;
pub mod interpolate;
pub mod load;
pub mod project;
pub mod service;
pub mod volume;
pub mod yaml;

pub use error::ComposeError;
pub use project::{parse, ComposeFile, XHlsys};
pub use service::{GpuMechanism, PublishedPort, RestartPolicy, Service};
