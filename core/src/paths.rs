//! Paths cleaned lexically, as compose-go's `filepath.Clean` does (no symlinks followed:
//! the files may not exist yet, the tree may not be mounted when the generator runs):
//! the one normaliser for config paths, tree paths and the paths in compose files.

use std::path::{Component, Path, PathBuf};

/// Lexical `filepath.Clean`: drops `.`, folds `..` into its parent.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            Component::ParentDir if out.has_root() => {}
            c => out.push(c),
        }
    }
    out
}

/// `path` joined to `dir` unless absolute, cleaned.
pub fn absolute(dir: &Path, path: &str) -> PathBuf {
    clean(&dir.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(clean(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(clean(Path::new("/../x")), Path::new("/x"));
        assert_eq!(clean(Path::new("a/../../b")), Path::new("../b"));
    }
}
