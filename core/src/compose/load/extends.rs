//! `extends:` as compose-go resolves it (loader/extends.go): a service starts from a
//! copy of another service, of the same file or of `extends.file`, chained, and its own
//! definition is merged over that copy with the multi-file rules ([`crate::compose::load::merge`]).
//! `service` and `file` are read after interpolation; `file` is relative to the
//! directory of the file that declares it; a cycle is an error.
//!
//! Each link of a chain is a level of the load's budget ([`super::budget`]) and each base
//! copied is charged to it; the services of another file are resolved in place, once
//! each, in the loader's cache of that file.

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::loader::{Context, LoadError, Loader};
use super::merge;
use crate::compose::error::ComposeError;
use crate::compose::interpolate::Env;
use crate::paths::absolute;

/// Resolves every `extends` among the services of a document, in place.
impl Loader {
    /// The `extends` of every service of one document, resolved (the loader's walk calls
    /// this for each document it reads).
    pub(super) fn resolve_extends(&mut self, doc: &mut Mapping, ctx: &Context) -> Result<(), LoadError> {
        apply(doc, ctx, self)
    }
}

fn apply(doc: &mut Mapping, ctx: &Context, loader: &mut Loader) -> Result<(), LoadError> {
    let Some(Value::Mapping(services)) = doc.get_mut("services") else {
        return Ok(());
    };
    let extending: Vec<String> = services
        .iter()
        .filter(|(_, def)| def.get("extends").is_some())
        .filter_map(|(name, _)| name.as_str().map(str::to_string))
        .collect();
    for name in extending {
        let mut at = Resolving {
            file: ctx.file,
            dir: ctx.dir,
            resets: ctx.resets,
        };
        at.resolve(&name, services, &mut Vec::new(), ctx.env, loader)?;
    }
    Ok(())
}

/// The file whose services are being resolved.
struct Resolving<'a> {
    file: &'a Path,
    dir: &'a Path,
    /// `!reset`/`!override` paths of the document: they also drop what a base brings.
    resets: &'a [Vec<String>],
}

/// (file, service) pairs being resolved, outermost first.
type Chain = Vec<(PathBuf, String)>;

impl Resolving<'_> {
    fn error(&self, name: &str, message: String) -> LoadError {
        LoadError::new(
            self.file,
            ComposeError::at(&format!("services.{name}.extends"), message),
        )
    }

    /// Resolves `services[name]` (its bases first) and stores the result in place.
    fn resolve(
        &mut self,
        name: &str,
        services: &mut Mapping,
        chain: &mut Chain,
        env: &Env,
        loader: &mut Loader,
    ) -> Result<(), LoadError> {
        let Some(Value::Mapping(def)) = services.get(name) else {
            return Ok(());
        };
        let Some(extends) = def.get("extends") else {
            return Ok(());
        };
        let (reference, file) = target(extends).map_err(|m| self.error(name, m.to_string()))?;
        if chain.iter().any(|(f, s)| f == self.file && s == name) {
            let path: Vec<&str> = chain.iter().map(|(_, s)| s.as_str()).collect();
            let message = format!("circular reference: {} extends {name}", path.join(" extends "));
            return Err(self.error(name, message));
        }
        loader.budget.enter().map_err(|e| self.error(name, e.message))?;
        chain.push((self.file.to_path_buf(), name.to_string()));
        let base = self.base(name, &reference, file, services, chain, env, loader);
        chain.pop();
        loader.budget.leave();
        let base = base?;
        let base = match base {
            Some(Value::Mapping(base)) => base,
            Some(Value::Null) | None => Mapping::new(),
            Some(_) => return Err(self.error(name, format!("service {reference:?} is not a mapping"))),
        };
        self.merge_over(name, base, services)
    }

    /// A copy of the resolved service `reference`, of `file` or of `services`.
    #[allow(clippy::too_many_arguments)]
    fn base(
        &mut self,
        name: &str,
        reference: &str,
        file: Option<String>,
        services: &mut Mapping,
        chain: &mut Chain,
        env: &Env,
        loader: &mut Loader,
    ) -> Result<Option<Value>, LoadError> {
        let base = match file {
            Some(file) => self.base_from_file(name, reference, &absolute(self.dir, &file), chain, env, loader)?,
            None => {
                if !services.contains_key(reference) {
                    let message = format!("cannot extend service {name:?}: service {reference:?} not found");
                    return Err(self.error(name, message));
                }
                self.resolve(reference, services, chain, env, loader)?;
                services.get(reference).cloned()
            }
        };
        if let Some(base) = &base {
            loader.budget.copy(base).map_err(|e| self.error(name, e.message))?;
        }
        Ok(base)
    }

    /// The resolved service `reference` of another file (resolved in the loader's copy of
    /// the file's services, which keeps it resolved for the next use).
    fn base_from_file(
        &self,
        name: &str,
        reference: &str,
        file: &Path,
        chain: &mut Chain,
        env: &Env,
        loader: &mut Loader,
    ) -> Result<Option<Value>, LoadError> {
        let Some(mut others) = loader.take_services(file, env)? else {
            let message = format!(
                "cannot extend service {name:?}: {} has no services section",
                file.display()
            );
            return Err(self.error(name, message));
        };
        if !others.contains_key(reference) {
            let message = format!(
                "cannot extend service {name:?}: service {reference:?} not found in {}",
                file.display()
            );
            return Err(self.error(name, message));
        }
        let dir = file.parent().unwrap_or(Path::new("/"));
        let mut there = Resolving { file, dir, resets: &[] };
        there.resolve(reference, &mut others, chain, env, loader)?;
        let base = others.get(reference).cloned();
        loader.give_back_services(file, Some(others));
        Ok(base)
    }

    /// `services[name]` merged over (a copy of) `base`, less what the document resets.
    fn merge_over(&self, name: &str, mut base: Mapping, services: &mut Mapping) -> Result<(), LoadError> {
        let own: Vec<Vec<String>> = self
            .resets
            .iter()
            .filter(|p| p.len() > 2 && p[0] == "services" && p[1] == name)
            .map(|p| p[2..].to_vec())
            .collect();
        merge::apply_resets(&mut base, &own);
        let Some(Value::Mapping(def)) = services.remove(name) else {
            return Ok(());
        };
        let mut merged = merge::merge_service(name, base, def).map_err(|e| LoadError::new(self.file, e))?;
        merged.remove("extends");
        services.insert(Value::String(name.to_string()), Value::Mapping(merged));
        Ok(())
    }
}

/// `extends: name` or `extends: {service: name, file: path}`.
fn target(extends: &Value) -> Result<(String, Option<String>), &'static str> {
    match extends {
        Value::String(s) => Ok((s.clone(), None)),
        Value::Mapping(m) => {
            let service = m
                .get("service")
                .and_then(Value::as_str)
                .ok_or("extends.service is required")?;
            let file = match m.get("file") {
                None | Some(Value::Null) => None,
                Some(Value::String(f)) => Some(f.clone()),
                Some(_) => return Err("extends.file must be a string"),
            };
            Ok((service.to_string(), file))
        }
        _ => Err("extends must be a service name or a mapping"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;
    use serde_yaml_ng::{Mapping, Value};

    use super::super::loader::load_bytes;
    use crate::compose::interpolate::Env;

    fn load(text: &str) -> Result<Mapping, super::super::loader::LoadError> {
        load_bytes(
            text.as_bytes(),
            Path::new("/nonexistent/p/compose.yaml"),
            Path::new("/nonexistent/p"),
            &Env::new(),
        )
        .map(|l| l.root)
    }

    #[test]
    fn chain_and_cycle_and_self() {
        let root =
            load("services:\n  a: {image: x, ports: ['1:1']}\n  b: {extends: a, ports: ['2:2']}\n  c: {extends: b}\n")
                .unwrap();
        let c = &root["services"]["c"];
        assert_eq!(c["image"].as_str(), Some("x"));
        assert_eq!(c["ports"].as_sequence().unwrap().len(), 2);
        assert!(c.get("extends").is_none());
        assert!(load("services:\n  a: {extends: a}\n")
            .unwrap_err()
            .error
            .message
            .contains("circular"));
        let e = load("services:\n  a: {extends: {file: x.yml}}\n").unwrap_err();
        assert_eq!(e.error.key.as_deref(), Some("services.a.extends"));
    }

    /// Services named s0..s3 with random fields and `extends` pointing anywhere
    /// (themselves, each other, nowhere, another file, a bad shape).
    fn services() -> impl Strategy<Value = String> {
        let extends = prop_oneof![
            Just(None),
            (0..5usize).prop_map(|i| Some(format!("s{i}"))),
            (0..5usize).prop_map(|i| Some(format!("{{service: s{i}}}"))),
            Just(Some("{file: other.yml, service: s0}".to_string())),
            Just(Some("[1]".to_string())),
            Just(Some("{}".to_string())),
        ];
        let field = prop_oneof![
            Just("image: x"),
            Just("ports: ['80:80']"),
            Just("ports: !reset []"),
            Just("networks: [a]"),
            Just("networks: {b: {}}"),
            Just("healthcheck: {test: [CMD, x]}"),
            Just("healthcheck: x"),
            Just("profiles: [p]"),
            Just("depends_on: [s1]"),
            Just("environment: {A: 1}"),
            Just("environment: [B=2]"),
        ];
        proptest::collection::vec((extends, proptest::collection::vec(field, 0..3)), 0..5).prop_map(|svcs| {
            let mut text = String::from("services:\n");
            for (i, (extends, fields)) in svcs.into_iter().enumerate() {
                text.push_str(&format!("  s{i}:\n"));
                if let Some(e) = extends {
                    text.push_str(&format!("    extends: {e}\n"));
                }
                for f in fields {
                    text.push_str(&format!("    {f}\n"));
                }
                text.push_str("    labels: [l]\n");
            }
            text
        })
    }

    proptest! {
        #[test]
        fn extends_never_panics_and_leaves_no_extends(text in services()) {
            if let Ok(root) = load(&text) {
                if let Some(Value::Mapping(services)) = root.get("services") {
                    for (_, def) in services {
                        prop_assert!(def.get("extends").is_none(), "{text}");
                    }
                }
            }
        }
    }
}
