//! Top-level `include:` as compose-go applies it (loader/include.go): each entry is a
//! project of its own (its files merged, its paths relative to its project directory,
//! interpolated with the including project's variables plus its own `.env` or
//! `env_file`s for the names those leave unset), whose services, networks, volumes,
//! secrets, configs and models are imported; a name defined differently on both sides
//! is refused ("conflicts with imported resource").
//!
//! An entry any of whose paths is the including file or a file that includes it is a
//! cycle (compose-go checks only the first path, and spins on the others). Each entry is a
//! level of the load's budget ([`super::budget`]), and its env files are reads charged to
//! it, like its compose files.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::loader::{Context, LoadError, Loader};
use super::rebase::rebase;
use crate::compose::error::{key_display, ComposeError};
use crate::compose::interpolate::Env;
use crate::paths::absolute;

const IMPORTED: [&str; 6] = ["services", "volumes", "networks", "secrets", "configs", "models"];

/// One `include` entry, its paths made absolute.
#[derive(Debug, PartialEq, Eq)]
struct Include {
    files: Vec<PathBuf>,
    project_dir: PathBuf,
    /// `None`: the project directory's `.env`, when there is one.
    env_files: Option<Vec<PathBuf>>,
}

/// Imports every included project into `doc` and removes `include`.
impl Loader {
    /// The `include`s of one document, imported into it (the loader's walk calls this for
    /// each document it reads).
    pub(super) fn import_includes(&mut self, doc: &mut Mapping, ctx: &Context) -> Result<(), LoadError> {
        apply(doc, ctx, self)
    }
}

fn apply(doc: &mut Mapping, ctx: &Context, loader: &mut Loader) -> Result<(), LoadError> {
    let Some(entries) = doc.remove("include") else {
        return Ok(());
    };
    let at = |key: &str, message: String| LoadError::new(ctx.file, ComposeError::at(key, message));
    let entries = match entries {
        Value::Null => return Ok(()),
        Value::Sequence(seq) => seq,
        _ => return Err(at("include", "expected a list".into())),
    };
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("include.{i}");
        let include = Include::read(entry, ctx.dir).map_err(|m| at(&key, m.to_string()))?;
        if let Some(message) = cycle(&include.files, ctx.chain) {
            return Err(at(&key, message));
        }
        loader.budget.enter().map_err(|e| at(&key, e.message))?;
        let project = include
            .environment(ctx.env, ctx.file, &key, loader)
            .and_then(|env| loader.project(&include.files, &include.project_dir, &env, ctx.chain));
        loader.budget.leave();
        let mut project = project?;
        rebase(&mut project, &include.project_dir);
        import(project, doc).map_err(|e| LoadError::new(ctx.file, e))?;
    }
    Ok(())
}

/// The cycle an entry's `files` would close with `chain` (the including file and the
/// files that include it, outermost first), as a message.
fn cycle(files: &[PathBuf], chain: &[PathBuf]) -> Option<String> {
    let (file, at) = files
        .iter()
        .find_map(|f| chain.iter().position(|c| c == f).map(|at| (f, at)))?;
    if at + 1 == chain.len() {
        return Some(format!("include cycle detected: {} includes itself", file.display()));
    }
    let path: Vec<String> = chain[at..].iter().map(|c| c.display().to_string()).collect();
    Some(format!(
        "include cycle detected: {} includes {}",
        path.join(" includes "),
        file.display()
    ))
}

/// A string, or a list of strings.
fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Sequence(seq) => seq.iter().map(|v| v.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

impl Include {
    /// `- path` or `- {path: p | [p…], project_directory: d, env_file: f | [f…]}`;
    /// relative paths are from `dir`, the including project's directory.
    fn read(entry: &Value, dir: &Path) -> Result<Include, &'static str> {
        let (paths, project_dir, env_files) = match entry {
            Value::String(p) => (vec![p.clone()], None, None),
            Value::Mapping(m) => {
                let paths = m
                    .get("path")
                    .and_then(strings)
                    .ok_or("path is required (a path or a list of paths)")?;
                let project_dir = match m.get("project_directory") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(d)) => Some(d.clone()),
                    Some(_) => return Err("project_directory must be a string"),
                };
                let env_files = match m.get("env_file") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(strings(v).ok_or("env_file must be a path or a list of paths")?),
                };
                (paths, project_dir, env_files)
            }
            _ => return Err("expected a path or a mapping"),
        };
        if paths.is_empty() || paths.iter().any(String::is_empty) {
            return Err("path is required (a path or a list of paths)");
        }
        let files: Vec<PathBuf> = paths.iter().map(|p| absolute(dir, p)).collect();
        let project_dir = match project_dir {
            Some(d) => absolute(dir, &d),
            None => files[0].parent().unwrap_or(Path::new("/")).to_path_buf(),
        };
        let env_files = env_files.map(|fs| {
            fs.iter()
                .filter(|f| f.as_str() != "/dev/null")
                .map(|f| absolute(dir, f))
                .collect()
        });
        Ok(Include {
            files,
            project_dir,
            env_files,
        })
    }

    /// The including project's variables, plus those of the included project's env
    /// files that it leaves unset (compose-go's Mapping.Merge keeps existing keys). Each
    /// env file is a read charged to the budget, and the variables it gives are text.
    fn environment<'e>(
        &self,
        parent: &'e Env,
        file: &Path,
        key: &str,
        loader: &mut Loader,
    ) -> Result<Cow<'e, Env>, LoadError> {
        let files = match &self.env_files {
            Some(files) => {
                for f in files {
                    if !f.is_file() {
                        let message = format!("env_file {} not found", f.display());
                        return Err(LoadError::new(
                            file,
                            ComposeError::at(&format!("{key}.env_file"), message),
                        ));
                    }
                }
                files.clone()
            }
            None => Some(self.project_dir.join(".env"))
                .filter(|p| p.is_file())
                .into_iter()
                .collect(),
        };
        if files.is_empty() {
            return Ok(Cow::Borrowed(parent));
        }
        loader.record_env_files(&files);
        // One file at a time, so that the budget stops a long list before it is all read;
        // a reference looks at the including project's variables first, then at what the
        // files so far define (envfile::load_included).
        let mut own: BTreeMap<String, String> = BTreeMap::new();
        for f in &files {
            let charge = |loader: &mut Loader| {
                loader.budget.file()?;
                let len = std::fs::metadata(f).map_or(0, |m| m.len());
                loader.budget.bytes(len.min(crate::bounded::ENV_CAP))
            };
            charge(loader).map_err(|e| LoadError::new(f, e))?;
            let vars = crate::compose::envfile::load_included(f, parent, &own).map_err(|e| {
                let error = ComposeError {
                    line: e.line,
                    key: None,
                    message: e.message,
                };
                LoadError::new(&e.file, error)
            })?;
            let text = vars.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
            loader.budget.text(text).map_err(|e| LoadError::new(f, e))?;
            own.extend(vars);
        }
        // The including project's values win over the included project's
        // (compose-go's Mapping.Merge keeps existing keys).
        let mut lookup = parent.clone();
        for (k, v) in own {
            if parent.get(&k).is_none() {
                lookup.insert(k, v);
            }
        }
        Ok(Cow::Owned(lookup))
    }
}

/// compose-go's importResources: the included project's definitions join `doc`'s.
fn import(mut project: Mapping, doc: &mut Mapping) -> Result<(), ComposeError> {
    for key in IMPORTED {
        let Some(Value::Mapping(defs)) = project.remove(key) else {
            continue;
        };
        let target = doc
            .entry(Value::String(key.to_string()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if target.is_null() {
            *target = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(target) = target else {
            return Err(ComposeError::at(key, "expected a mapping"));
        };
        for (name, def) in defs {
            match target.get(&name) {
                Some(existing) if *existing == def => {}
                Some(_) => {
                    let name = key_display(&name);
                    return Err(ComposeError::at(
                        &format!("{key}.{name}"),
                        format!("{key}.{name} conflicts with imported resource"),
                    ));
                }
                None => {
                    target.insert(name, def);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Include, &'static str> {
        Include::read(&serde_yaml_ng::from_str(text).unwrap(), Path::new("/p"))
    }

    #[test]
    fn short_and_long_forms() {
        assert_eq!(
            read("sub/compose.yaml").unwrap(),
            Include {
                files: vec!["/p/sub/compose.yaml".into()],
                project_dir: "/p/sub".into(),
                env_files: None,
            }
        );
        assert_eq!(
            read("{path: [a/c.yml, a/o.yml], project_directory: ., env_file: [x.env, /dev/null]}").unwrap(),
            Include {
                files: vec!["/p/a/c.yml".into(), "/p/a/o.yml".into()],
                project_dir: "/p".into(),
                env_files: Some(vec!["/p/x.env".into()]),
            }
        );
        assert!(read("{project_directory: .}").is_err());
        assert!(read("3").is_err());
    }

    #[test]
    fn conflicts_unless_identical() {
        let doc = |t: &str| -> Mapping { serde_yaml_ng::from_str(t).unwrap() };
        let mut into = doc("services: {a: {image: x}}");
        import(
            doc("services: {a: {image: x}, b: {image: y}}\nnetworks: {n: {}}"),
            &mut into,
        )
        .unwrap();
        assert_eq!(into, doc("services: {a: {image: x}, b: {image: y}}\nnetworks: {n: {}}"));
        let e = import(doc("services: {a: {image: z}}"), &mut into).unwrap_err();
        assert_eq!(e.message, "services.a conflicts with imported resource");
    }
}
