//! What `hlsys-generator` (systemd.generator(7)) leaves in its output directory: the
//! rendered units and links ([`output`]), its report ([`report`]), and how a directory
//! compares with the tree now ([`freshness`]). The binary itself (arguments, the kernel
//! log) is `generator/src/`.
//!
//! Rules a generator lives by: no D-Bus, no Docker, no network, nothing written outside
//! its output directory, fast, and never failing the boot because one stack is broken.

pub mod freshness;
pub mod output;
pub mod report;

pub use freshness::{freshness, Freshness, SYSTEM_GENERATOR_DIR};
pub use output::{write_all, WriteError};
pub use report::{report, GeneratorReport, ReportError, REPORT_NAME};
