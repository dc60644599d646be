//! `hlsys update`: new images for the stacks, explicitly (hlsys never pulls at a start).
//! [`check`] compares each image's local digest with its registry's without pulling.

pub mod check;
