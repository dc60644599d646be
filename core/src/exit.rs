//! Exit statuses of both binaries, as hlsys(1) and hlsys-generator(8) document them.

/// Success (the generator: units written, broken stacks skipped).
pub const EXIT_OK: u8 = 0;
/// Something failed: a job, a check, writing the units.
pub const EXIT_FAILURE: u8 = 1;
/// The config is unusable ([`crate::config::ConfigError`]) or a NAME is unknown: nothing
/// was done.
pub const EXIT_CONFIG: u8 = 2;
/// Wrong usage (arguments); the same status as an unusable config.
pub const EXIT_USAGE: u8 = 2;
