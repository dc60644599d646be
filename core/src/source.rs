//! The one place where the bytes of a stack's files (compose files, the files they
//! `extends` or `include`, env files) are read, so that limits on what is read (size,
//! file type) apply to every one of them at once.

use std::path::Path;

/// The content of a file a stack is made of.
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}
