//! Which compose files make up a stack: what `docker compose` selects when run in the
//! stack directory without `-f` (compose-go's WithConfigFileEnv and
//! WithDefaultConfigPath), so that the model and `hlsys supervise` read the same files.

use std::path::{Path, PathBuf};

use crate::compose::interpolate::Env;
use crate::paths::absolute;

/// Override file names, in Compose's order of preference (`.yml` before `.yaml`); the
/// first present is used, whichever canonical name the stack's file has.
pub const OVERRIDE_FILE_NAMES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// Compose would try to read the stack directory itself as a file.
    #[error("COMPOSE_FILE (from the stack's env files) has an empty entry")]
    EmptyEntry,
}

/// The first override file present in `dir`, in Compose's order of preference.
pub fn override_file(dir: &Path) -> Option<PathBuf> {
    OVERRIDE_FILE_NAMES.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// The stack's compose files, in merge order: `COMPOSE_FILE` from the stack's env files
/// (split on `COMPOSE_PATH_SEPARATOR`, default `:`; relative to the stack directory)
/// when it is set, else `canonical` and its override file ([`override_file`], which
/// discovery finds in the directory listing it reads anyway).
pub fn select(
    dir: &Path,
    canonical: &Path,
    override_file: Option<&Path>,
    env: &Env,
) -> Result<Vec<PathBuf>, SelectError> {
    if let Some(list) = env.get("COMPOSE_FILE") {
        let sep = env.get("COMPOSE_PATH_SEPARATOR").map_or(":", String::as_str);
        let sep = if sep.is_empty() { ":" } else { sep };
        return list
            .split(sep)
            .map(|f| {
                if f.is_empty() {
                    Err(SelectError::EmptyEntry)
                } else {
                    Ok(absolute(dir, f))
                }
            })
            .collect();
    }
    let mut files = vec![canonical.to_path_buf()];
    files.extend(override_file.map(Path::to_path_buf));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn canonical_and_first_override() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let canonical = dir.join("docker-compose.yml");
        std::fs::write(&canonical, "services: {}\n").unwrap();
        assert_eq!(override_file(dir), None);
        assert_eq!(select(dir, &canonical, None, &env(&[])).unwrap(), [canonical.clone()]);
        for name in [
            "docker-compose.override.yaml",
            "compose.override.yaml",
            "compose.override.yml",
        ] {
            std::fs::write(dir.join(name), "").unwrap();
            let found = override_file(dir);
            assert_eq!(found, Some(dir.join(name)));
            assert_eq!(
                select(dir, &canonical, found.as_deref(), &env(&[])).unwrap(),
                [canonical.clone(), dir.join(name)]
            );
        }
    }

    #[test]
    fn compose_file_from_env() {
        let dir = Path::new("/s/t");
        let c = dir.join("compose.yaml");
        let got = select(dir, &c, None, &env(&[("COMPOSE_FILE", "a.yml:../b.yml:/c.yml")])).unwrap();
        assert_eq!(
            got,
            [dir.join("a.yml"), PathBuf::from("/s/b.yml"), PathBuf::from("/c.yml")]
        );
        let got = select(
            dir,
            &c,
            Some(&dir.join("compose.override.yml")),
            &env(&[("COMPOSE_FILE", "a.yml;b.yml"), ("COMPOSE_PATH_SEPARATOR", ";")]),
        )
        .unwrap();
        assert_eq!(got, [dir.join("a.yml"), dir.join("b.yml")]);
        assert_eq!(
            select(dir, &c, None, &env(&[("COMPOSE_FILE", "")])),
            Err(SelectError::EmptyEntry)
        );
        assert_eq!(
            select(dir, &c, None, &env(&[("COMPOSE_FILE", "a::b")])),
            Err(SelectError::EmptyEntry)
        );
    }
}
