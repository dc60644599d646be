//! The one place where the bytes of a stack's compose files (the selected ones and the
//! files they `extends` or `include`) are read: through [`crate::bounded`], so the
//! limits on what is read (regular files only, size cap) apply to every one of them.
//! Env files are read by [`crate::compose::envfile`] through the same bounded reader.

use std::path::Path;

use sha2::{Digest, Sha256};

pub use crate::bounded::ReadError;

/// The content of a compose file a stack is made of, and the owner and mode of the file
/// it was read from (for [`crate::trust`]).
pub fn read(path: &Path) -> Result<(Vec<u8>, crate::trust::Meta), ReadError> {
    crate::bounded::read_with_meta(path, crate::bounded::COMPOSE_CAP).map(|(b, m)| (b, crate::trust::Meta::from(&m)))
}

/// Content fingerprint of what was read, for telling later whether the units are stale.
pub fn fingerprint_bytes(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}
