//! Loading a Compose project from its files as compose-go does: which files the project
//! is made of ([`files`]), their bytes read bounded ([`source`]), each YAML document
//! prepared ([`document`]: tags, merge keys, interpolation), `extends` and `include`
//! followed ([`extends`], [`include`]), and the documents merged ([`merge`]), all of it
//! within one work budget per load ([`budget`]).
//!
//! Static reading only: no process and no socket.

pub mod budget;
mod document;
mod extends;
pub mod files;
mod include;
mod loader;
pub mod merge;
mod rebase;
pub mod source;

pub use loader::{load, load_bytes, LoadError, Loaded};
