//! Relative paths of a document loaded from another directory, made absolute as
//! compose-go's ResolveRelativePaths does.

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use crate::compose::volume::parse_short;
use crate::paths::absolute;

/// Makes the relative paths that hlsys reads in a document loaded from another
/// directory (a file named by `extends.file`, an `include`d project) absolute from
/// `dir`, as compose-go's ResolveRelativePaths does for it: bind mount sources,
/// `env_file`, `extends.file`, `secrets`/`configs` files. `~` is left for later.
pub fn rebase(doc: &mut Mapping, dir: &Path) {
    if let Some(Value::Mapping(services)) = doc.get_mut("services") {
        for (_, service) in services.iter_mut() {
            if let Value::Mapping(service) = service {
                rebase_service(service, dir);
            }
        }
    }
    for top in ["secrets", "configs"] {
        if let Some(Value::Mapping(defs)) = doc.get_mut(top) {
            for (_, def) in defs.iter_mut() {
                if let Some(file) = def.get_mut("file") {
                    rebase_string(file, dir);
                }
            }
        }
    }
}

fn rebase_service(service: &mut Mapping, dir: &Path) {
    if let Some(Value::Sequence(volumes)) = service.get_mut("volumes") {
        volumes.iter_mut().for_each(|v| rebase_volume(v, dir));
    }
    match service.get_mut("env_file") {
        Some(Value::Sequence(files)) => files.iter_mut().for_each(|f| match f {
            Value::Mapping(m) => m.get_mut("path").into_iter().for_each(|p| rebase_string(p, dir)),
            other => rebase_string(other, dir),
        }),
        Some(file) => rebase_string(file, dir),
        None => {}
    }
    if let Some(Value::Mapping(extends)) = service.get_mut("extends") {
        if let Some(file) = extends.get_mut("file") {
            rebase_string(file, dir);
        }
    }
}

fn rebase_volume(volume: &mut Value, dir: &Path) {
    match volume {
        Value::String(spec) => {
            let Ok(short) = parse_short(spec) else { return };
            if short.is_bind() && !short.source.starts_with(['/', '~']) {
                let rest = spec[short.source.len()..].to_string();
                *spec = format!("{}{rest}", absolute(dir, short.source).display());
            }
        }
        Value::Mapping(m) if m.get("type").and_then(Value::as_str) == Some("bind") => {
            if let Some(source) = m.get_mut("source") {
                rebase_string(source, dir);
            }
        }
        _ => {}
    }
}

fn rebase_string(value: &mut Value, dir: &Path) {
    if let Value::String(s) = value {
        if !s.starts_with(['/', '~']) {
            *s = absolute(dir, s).to_string_lossy().into_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebase_relative_paths() {
        let mut doc: Mapping = serde_yaml_ng::from_str(
            "services:\n  a:\n    volumes: [./d:/d, /abs:/abs, named:/n, '~/h:/h', {type: bind, source: s, target: /s}]\n    env_file: [e.env, {path: ../f.env}]\n    extends: {file: ../base.yml, service: b}\n  b: {env_file: one.env}\nsecrets: {s: {file: ./s.txt}}\n",
        )
        .unwrap();
        rebase(&mut doc, Path::new("/p/sub"));
        let want: Mapping = serde_yaml_ng::from_str(
            "services:\n  a:\n    volumes: [/p/sub/d:/d, /abs:/abs, named:/n, '~/h:/h', {type: bind, source: /p/sub/s, target: /s}]\n    env_file: [/p/sub/e.env, {path: /p/f.env}]\n    extends: {file: /p/base.yml, service: b}\n  b: {env_file: /p/sub/one.env}\nsecrets: {s: {file: /p/sub/s.txt}}\n",
        )
        .unwrap();
        assert_eq!(doc, want);
    }
}
