//! Model → unit files. Pure: the generator writes what [`render`] returns, and `hlsys
//! plan` prints the very same thing, so there is one renderer.
//!
//! [`stacks`] renders the units of a tree whose stacks systemd runs (with the
//! [`prepare`]ation units), [`swarm`] the one unit of swarm mode; both build on
//! [`unit_file`] and [`sandbox`].

pub mod metrics;
pub mod notify;
pub mod parts;
pub mod prepare;
pub mod sandbox;
pub mod stacks;
pub mod swarm;
pub mod unit_file;

pub use parts::{Generated, RenderedUnit, WantsLink};
pub use stacks::DEFAULT_TIMEOUT_START_SEC;

use crate::model::Model;

/// Renders every unit for `model`: swarm mode's one unit, or the stacks' units.
pub fn render(model: &Model) -> Generated {
    if model.config.swarm.deploy_at_boot {
        swarm::render(model)
    } else {
        stacks::render(model)
    }
}
