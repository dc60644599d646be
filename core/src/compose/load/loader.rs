//! The loader's walk over a project's files as compose-go's loader does it
//! (loadYamlModel/loadYamlFile): each document of each file is prepared
//! ([`super::document`]), its services' `extends` resolved ([`super::extends`]), its
//! `!reset`/`!override` paths dropped from what came before, its `include`s imported
//! ([`super::include`]), and then merged over the earlier files ([`super::merge`]).
//!
//! `extends` and `include` load further files through the same [`Loader`], as
//! compose-go recurses: their halves of the walk are `impl Loader` blocks in their own
//! files, so this file names neither.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::{document, merge, rebase, source};
use crate::compose::error::ComposeError;
use crate::compose::interpolate::Env;

/// Why a project could not be loaded, and in which file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {error}", file.display())]
pub struct LoadError {
    pub file: PathBuf,
    pub error: ComposeError,
}

impl LoadError {
    pub fn new(file: &Path, error: ComposeError) -> Self {
        LoadError {
            file: file.to_path_buf(),
            error,
        }
    }
}

/// A loaded project and the files it was made of.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The merged model, before profiles and defaults.
    pub root: Mapping,
    /// Every compose file read (selected, extended, included), with a content fingerprint.
    pub compose_files: Vec<(PathBuf, String)>,
    /// Env files of `include`s (they hold secrets: fingerprint by metadata only).
    pub env_files: Vec<PathBuf>,
    /// Owner and mode of every compose file read, from the descriptor it was read through.
    pub compose_meta: Vec<(PathBuf, crate::trust::Meta)>,
}

/// Loads `files` (merge order) of the project in `project_dir` with `env`.
pub fn load(files: &[PathBuf], project_dir: &Path, env: &Env) -> Result<Loaded, LoadError> {
    let mut loader = Loader::default();
    let root = loader.project(files, project_dir, env, &[])?;
    loader.finish(root, files.first().map_or(project_dir, |f| f.as_path()))
}

/// [`load`] of one file whose content is already at hand (`file` names it in errors).
pub fn load_bytes(bytes: &[u8], file: &Path, project_dir: &Path, env: &Env) -> Result<Loaded, LoadError> {
    let mut loader = Loader::default();
    let mut root = Mapping::new();
    loader.file(bytes, file, project_dir, env, &[], &mut root)?;
    loader.finish(root, file)
}

/// What one loading has read so far, and the files `extends` named (read once).
#[derive(Debug, Default)]
pub(crate) struct Loader {
    compose_files: Vec<(PathBuf, String)>,
    env_files: Vec<PathBuf>,
    compose_meta: Vec<(PathBuf, crate::trust::Meta)>,
    extended: HashMap<PathBuf, Option<Mapping>>,
}

/// Where a document being loaded comes from.
pub(crate) struct Context<'a> {
    pub file: &'a Path,
    /// Relative paths in the document are from here (the project directory, or the
    /// directory of an extended file or included project).
    pub dir: &'a Path,
    pub env: &'a Env,
    pub resets: &'a [Vec<String>],
    /// Files that include this one (and this one), for cycles.
    pub chain: &'a [PathBuf],
}

impl Loader {
    fn finish(self, root: Mapping, first: &Path) -> Result<Loaded, LoadError> {
        if root.is_empty() {
            return Err(LoadError::new(first, ComposeError::message("empty compose file")));
        }
        Ok(Loaded {
            root,
            compose_files: self.compose_files,
            env_files: self.env_files,
            compose_meta: self.compose_meta,
        })
    }

    /// The files of a project merged in order.
    pub(crate) fn project(
        &mut self,
        files: &[PathBuf],
        dir: &Path,
        env: &Env,
        chain: &[PathBuf],
    ) -> Result<Mapping, LoadError> {
        let mut dict = Mapping::new();
        for file in files {
            let bytes = self.read(file)?;
            self.file(&bytes, file, dir, env, chain, &mut dict)?;
        }
        Ok(dict)
    }

    fn file(
        &mut self,
        bytes: &[u8],
        file: &Path,
        dir: &Path,
        env: &Env,
        chain: &[PathBuf],
        dict: &mut Mapping,
    ) -> Result<(), LoadError> {
        let at = |error| LoadError::new(file, error);
        let mut chain = chain.to_vec();
        chain.push(file.to_path_buf());
        for value in document::parse(bytes, file).map_err(at)? {
            let document::Document { root: mut cfg, resets } = document::prepare(value, env).map_err(at)?;
            let ctx = Context {
                file,
                dir,
                env,
                resets: &resets,
                chain: &chain,
            };
            self.resolve_extends(&mut cfg, &ctx)?;
            merge::apply_resets(dict, &resets);
            self.import_includes(&mut cfg, &ctx)?;
            merge::merge_documents(dict, cfg).map_err(at)?;
        }
        Ok(())
    }

    /// A compose file's bytes, recorded for the fingerprint.
    pub(crate) fn read(&mut self, file: &Path) -> Result<Vec<u8>, LoadError> {
        let (bytes, meta) =
            source::read(file).map_err(|e| LoadError::new(file, ComposeError::message(&e.to_string())))?;
        self.compose_files
            .push((file.to_path_buf(), source::fingerprint_bytes(&bytes)));
        self.compose_meta.push((file.to_path_buf(), meta));
        Ok(bytes)
    }

    pub(crate) fn record_env_files(&mut self, files: &[PathBuf]) {
        self.env_files.extend_from_slice(files);
    }

    /// The `services` of a file named by `extends.file` (`None`: it has none), with its
    /// documents merged and its relative paths made absolute from its directory; its
    /// own `extends` are left for the caller, its `include`s ignored (as compose-go does).
    pub(crate) fn services_of(&mut self, file: &Path, env: &Env) -> Result<Option<Mapping>, LoadError> {
        if let Some(cached) = self.extended.get(file) {
            return Ok(cached.clone());
        }
        let at = |error| LoadError::new(file, error);
        let bytes = self.read(file)?;
        let mut dict = Mapping::new();
        for value in document::parse(&bytes, file).map_err(at)? {
            let doc = document::prepare(value, env).map_err(at)?;
            merge::apply_resets(&mut dict, &doc.resets);
            merge::merge_documents(&mut dict, doc.root).map_err(at)?;
        }
        rebase::rebase(&mut dict, file.parent().unwrap_or(Path::new("/")));
        let services = match dict.remove("services") {
            Some(Value::Mapping(m)) => Some(m),
            _ => None,
        };
        self.extended.insert(file.to_path_buf(), services.clone());
        Ok(services)
    }
}
