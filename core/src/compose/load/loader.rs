//! The loader's walk over a project's files as compose-go's loader does it
//! (loadYamlModel/loadYamlFile): each document of each file is prepared
//! ([`super::document`]), its services' `extends` resolved ([`super::extends`]), its
//! `!reset`/`!override` paths dropped from what came before, its `include`s imported
//! ([`super::include`]), and then merged over the earlier files ([`super::merge`]).
//!
//! `extends` and `include` load further files through the same [`Loader`], as
//! compose-go recurses: their halves of the walk are `impl Loader` blocks in their own
//! files, so this file names neither. Every read, level, node and byte of the walk is
//! charged to the load's one [`Budget`] ([`super::budget`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::budget::Budget;
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

/// What one loading has read so far, the files `extends` named (read once, their
/// services kept as they are resolved), and what the load has spent of its budget.
#[derive(Debug, Default)]
pub(crate) struct Loader {
    compose_files: Vec<(PathBuf, String)>,
    env_files: Vec<PathBuf>,
    compose_meta: Vec<(PathBuf, crate::trust::Meta)>,
    extended: HashMap<PathBuf, Option<Mapping>>,
    pub(crate) budget: Budget,
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
        for value in document::parse(bytes, file, &mut self.budget).map_err(at)? {
            let document::Document { root: mut cfg, resets } = document::prepare(value, env).map_err(at)?;
            self.budget.text_of(&cfg).map_err(at)?;
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

    /// A compose file's bytes, recorded for the fingerprint; charged to the budget (each
    /// read counts, a file read again included).
    pub(crate) fn read(&mut self, file: &Path) -> Result<Vec<u8>, LoadError> {
        let at = |error| LoadError::new(file, error);
        self.budget.file().map_err(at)?;
        let (bytes, meta) =
            source::read(file).map_err(|e| LoadError::new(file, ComposeError::message(&e.to_string())))?;
        self.budget.bytes(bytes.len() as u64).map_err(at)?;
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
    ///
    /// The caller resolves in them what it needs and gives them back
    /// ([`Loader::give_back_services`]), so each service of the file is resolved once
    /// and nothing but the one service needed is copied. A file taken and not yet given
    /// back (an `extends` chain that leaves a file and comes back to another of its
    /// services) is read again.
    pub(crate) fn take_services(&mut self, file: &Path, env: &Env) -> Result<Option<Mapping>, LoadError> {
        if let Some(cached) = self.extended.remove(file) {
            return Ok(cached);
        }
        let at = |error| LoadError::new(file, error);
        let bytes = self.read(file)?;
        let mut dict = Mapping::new();
        for value in document::parse(&bytes, file, &mut self.budget).map_err(at)? {
            let doc = document::prepare(value, env).map_err(at)?;
            self.budget.text_of(&doc.root).map_err(at)?;
            merge::apply_resets(&mut dict, &doc.resets);
            merge::merge_documents(&mut dict, doc.root).map_err(at)?;
        }
        rebase::rebase(&mut dict, file.parent().unwrap_or(Path::new("/")));
        let services = match dict.remove("services") {
            Some(Value::Mapping(m)) => Some(m),
            _ => None,
        };
        Ok(services)
    }

    /// The services [`Loader::take_services`] gave, some of them resolved since.
    pub(crate) fn give_back_services(&mut self, file: &Path, services: Option<Mapping>) {
        self.extended.insert(file.to_path_buf(), services);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::load::budget::{MAX_DEPTH, MAX_FILES};

    /// A temp dir of files written from `(name, text)`.
    fn tree(files: &[(String, String)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn load_dir(dir: &Path) -> Result<Loaded, LoadError> {
        load(&[dir.join("compose.yaml")], dir, &Env::new())
    }

    fn f(name: &str, text: impl Into<String>) -> (String, String) {
        (name.to_string(), text.into())
    }

    #[test]
    fn include_cycles_through_any_path_of_an_entry() {
        let d = tree(&[
            f(
                "compose.yaml",
                "include:\n  - path: [o.yaml, compose.yaml]\nservices: {x: {image: x}}\n",
            ),
            f("o.yaml", "services: {o: {image: x}}\n"),
        ]);
        let e = load_dir(d.path()).unwrap_err();
        assert_eq!(e.file, d.path().join("compose.yaml"));
        assert_eq!(e.error.key.as_deref(), Some("include.0"));
        let me = d.path().join("compose.yaml");
        assert_eq!(
            e.error.message,
            format!("include cycle detected: {} includes itself", me.display())
        );

        let d = tree(&[
            f(
                "compose.yaml",
                "include:\n  - path: [s/a.yaml, s/b.yaml]\nservices: {x: {image: x}}\n",
            ),
            f("s/a.yaml", "services: {a: {image: x}}\n"),
            f(
                "s/b.yaml",
                "include:\n  - {path: [c.yaml, ../compose.yaml], project_directory: ..}\n",
            ),
            f("s/c.yaml", "services: {c: {image: x}}\n"),
        ]);
        let e = load_dir(d.path()).unwrap_err();
        let (top, b) = (d.path().join("compose.yaml"), d.path().join("s/b.yaml"));
        assert_eq!(e.file, b);
        assert_eq!(
            e.error.message,
            format!(
                "include cycle detected: {} includes {} includes {}",
                top.display(),
                b.display(),
                top.display()
            )
        );
    }

    #[test]
    fn depth_budget_for_include_and_extends_chains() {
        let want = format!("more than {MAX_DEPTH} nested include/extends levels (the load budget of a stack)");
        // Includes.
        let mut files = vec![f("compose.yaml", "include: [c0.yaml]\nservices: {x: {image: x}}\n")];
        files.extend((0..100).map(|i| f(&format!("c{i}.yaml"), format!("include: [c{}.yaml]\n", i + 1))));
        files.push(f("c100.yaml", "services: {y: {image: x}}\n"));
        let d = tree(&files);
        let e = load_dir(d.path()).unwrap_err();
        assert_eq!(e.error.message, want);
        assert_eq!(e.file, d.path().join(format!("c{}.yaml", MAX_DEPTH - 1)));
        assert_eq!(e.error.key.as_deref(), Some("include.0"));
        // Extends across files.
        let mut files = vec![f(
            "compose.yaml",
            "services: {x: {extends: {file: e0.yaml, service: s}}}\n",
        )];
        files.extend((0..100).map(|i| {
            f(
                &format!("e{i}.yaml"),
                format!("services: {{s: {{extends: {{file: e{}.yaml, service: s}}}}}}\n", i + 1),
            )
        }));
        files.push(f("e100.yaml", "services: {s: {image: x}}\n"));
        let d = tree(&files);
        let e = load_dir(d.path()).unwrap_err();
        assert_eq!(e.error.message, want);
        assert_eq!(e.error.key.as_deref(), Some("services.s.extends"));
        // Extends in one file, and both kinds of levels adding up.
        let mut text = String::from("services:\n");
        for i in 0..100 {
            text.push_str(&format!("  s{i}: {{extends: s{}}}\n", i + 1));
        }
        text.push_str("  s100: {image: x}\n");
        let d = tree(&[f("compose.yaml", text.clone())]);
        let e = load_dir(d.path()).unwrap_err();
        assert_eq!(e.error.message, want);
        let half: String = text.lines().take(40).map(|l| format!("{l}\n")).collect::<String>() + "  s39: {image: x}\n";
        let mut files = vec![f("compose.yaml", "include: [c0.yaml]\nservices: {x: {image: x}}\n")];
        files.extend((0..30).map(|i| f(&format!("c{i}.yaml"), format!("include: [c{}.yaml]\n", i + 1))));
        files.push(f("c30.yaml", half.clone()));
        let d = tree(&files);
        assert_eq!(load_dir(d.path()).unwrap_err().error.message, want);
        // Within the budget, it loads.
        let d = tree(&[f("compose.yaml", half)]);
        assert!(load_dir(d.path()).is_ok());
    }

    /// `levels` levels of two files each including both files of the next level.
    fn diamond(levels: usize) -> Vec<(String, String)> {
        let entry = |l: usize| format!("include: [l{l}a.yaml, l{l}b.yaml]\n");
        let mut files = vec![f("compose.yaml", entry(1) + "services: {x: {image: x}}\n")];
        for l in 1..=levels {
            for side in ["a", "b"] {
                let inc = if l == levels { String::new() } else { entry(l + 1) };
                files.push(f(
                    &format!("l{l}{side}.yaml"),
                    format!("{inc}services: {{s{l}{side}: {{image: x}}}}\n"),
                ));
            }
        }
        files
    }

    #[test]
    fn files_budget_counts_every_read() {
        let d = tree(&diamond(20));
        let start = std::time::Instant::now();
        let e = load_dir(d.path()).unwrap_err();
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        assert!(
            e.error.message.starts_with(&format!(
                "more than {MAX_FILES} compose and env files read (each read counts"
            )),
            "{e:?}"
        );
        // 7 files, 15 reads: fine, and every read recorded.
        let d = tree(&diamond(3));
        let loaded = load_dir(d.path()).unwrap();
        assert_eq!(loaded.compose_files.len(), 1 + 2 + 4 + 8);
        assert_eq!(loaded.root["services"].as_mapping().unwrap().len(), 7);
        // Env files of an include are reads too.
        let list = vec!["e.env"; MAX_FILES + 1].join(", ");
        let d = tree(&[
            f(
                "compose.yaml",
                format!("include:\n  - {{path: s/compose.yaml, env_file: [{list}]}}\nservices: {{x: {{image: x}}}}\n"),
            ),
            f("e.env", "A=1\n"),
            f("s/compose.yaml", "services: {y: {image: \"${A}\"}}\n"),
        ]);
        let e = load_dir(d.path()).unwrap_err();
        assert_eq!(e.file, d.path().join("e.env"));
        assert!(
            e.error.message.starts_with("more than 256 compose and env files read"),
            "{e:?}"
        );
    }

    #[test]
    fn include_env_files_read_one_by_one_as_before() {
        let d = tree(&[
            f(
                "compose.yaml",
                "include:\n  - {path: s/compose.yaml, env_file: [a.env, b.env]}\nservices: {x: {image: x}}\n",
            ),
            // `P` is the including project's: it wins for `B` even after this file's own `P`.
            f("a.env", "A=a\nP=mine\nB=${P}-a\n"),
            f("b.env", "C=${A}-${B}\nA=again\n"),
            f("s/compose.yaml", "services: {y: {image: \"${A} ${B} ${C} ${P}\"}}\n"),
        ]);
        let env: Env = [("P".to_string(), "parent".to_string())].into();
        let loaded = load(&[d.path().join("compose.yaml")], d.path(), &env).unwrap();
        // A reference sees the including project's variables first, then the files
        // before it; the including project's values win in the end (as Compose 2.40.3
        // renders it).
        let image = "again parent-a a-parent-a parent";
        assert_eq!(loaded.root["services"]["y"]["image"].as_str(), Some(image));
    }

    #[test]
    fn node_and_text_budgets() {
        let big = || {
            let mut doc = format!("x-a: &a [{}]\nx-b: [", vec!["1"; 1000].join(","));
            doc.push_str(&vec!["*a"; 95].join(","));
            doc + "]\n"
        };
        // Documents: charged as each is decoded, the error at the document's line.
        let mut text = String::from("services: {x: {image: x}}\n");
        for _ in 0..20 {
            text.push_str("---\n");
            text.push_str(&big());
        }
        let d = tree(&[f("compose.yaml", text)]);
        let e = load_dir(d.path()).unwrap_err();
        assert!(
            e.error
                .message
                .starts_with("more than 500000 YAML nodes decoded or copied"),
            "{e:?}"
        );
        // The 6th big document (96,000 nodes each), at its `---`.
        assert_eq!(e.error.line, Some(2 + 5 * 3), "{e:?}");
        // Copies made by extends.
        let mut text = big().replace("x-b:", "services:\n  base:\n    image: x\n    x-b:");
        for i in 0..20 {
            text.push_str(&format!("  s{i}: {{extends: base}}\n"));
        }
        let d = tree(&[f("compose.yaml", text)]);
        let e = load_dir(d.path()).unwrap_err();
        assert!(e.error.message.starts_with("more than 500000 YAML nodes"), "{e:?}");
        // The document and four copies of its base fit.
        assert_eq!(e.error.key.as_deref(), Some("services.s4.extends"));
        // Text: a 1 MiB value interpolated 8 times per document, in 5 documents.
        let refs: String = (0..8).map(|i| format!("x-v{i}: ${{V}}\n")).collect();
        let mut text = String::from("services: {x: {image: x}}\n");
        for _ in 0..5 {
            text.push_str(&format!("---\n{refs}"));
        }
        let d = tree(&[f("compose.yaml", text)]);
        let env: Env = [("V".to_string(), "v".repeat((1 << 20) - 16))].into();
        let e = load(&[d.path().join("compose.yaml")], d.path(), &env).unwrap_err();
        assert!(e.error.message.starts_with("more than 32 MiB of values"), "{e:?}");
    }

    #[test]
    fn extends_of_another_file_reads_and_resolves_it_once() {
        let mut text = String::from("services:\n");
        for i in 0..200 {
            text.push_str(&format!(
                "  s{i}: {{extends: {{file: base.yaml, service: b{}}}}}\n",
                i % 50
            ));
        }
        let mut base = String::from("services:\n  root: {image: x, labels: [r]}\n");
        for i in 0..50 {
            base.push_str(&format!("  b{i}: {{extends: root, labels: [l{i}]}}\n"));
        }
        let d = tree(&[f("compose.yaml", text), f("base.yaml", base)]);
        let loaded = load_dir(d.path()).unwrap();
        assert_eq!(loaded.compose_files.len(), 2);
        let s = &loaded.root["services"]["s57"];
        assert_eq!(s["image"].as_str(), Some("x"));
        assert_eq!(s["labels"], serde_yaml_ng::from_str::<Value>("[r, l7]").unwrap());
        assert!(s.get("extends").is_none());
        // Out of the file and back into it (not a cycle): read again, resolved the same.
        let d = tree(&[
            f("compose.yaml", "services: {x: {extends: {file: f.yaml, service: a}}}\n"),
            f(
                "f.yaml",
                "services:\n  a: {extends: {file: g.yaml, service: t}}\n  b: {image: x}\n",
            ),
            f(
                "g.yaml",
                "services: {t: {extends: {file: f.yaml, service: b}, user: u}}\n",
            ),
        ]);
        let loaded = load_dir(d.path()).unwrap();
        let x = &loaded.root["services"]["x"];
        assert_eq!((x["image"].as_str(), x["user"].as_str()), (Some("x"), Some("u")));
        // A cycle across files is one.
        let d = tree(&[
            f("compose.yaml", "services: {x: {extends: {file: f.yaml, service: a}}}\n"),
            f("f.yaml", "services: {a: {extends: {file: g.yaml, service: t}}}\n"),
            f("g.yaml", "services: {t: {extends: {file: f.yaml, service: a}}}\n"),
        ]);
        let e = load_dir(d.path()).unwrap_err();
        assert!(e.error.message.contains("circular reference"), "{e:?}");
    }

    /// The deepest load the budget allows (includes cost the most stack per level), with
    /// YAML nested as deep as it may be at the bottom, fits a stack well under the 2 MiB
    /// of a reading thread (about 300 KiB in the release build, 1.1 MiB unoptimised).
    #[test]
    fn deepest_load_fits_a_small_stack() {
        let n = MAX_DEPTH - 1;
        let block: String = (0..120).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        let mut files = vec![f("compose.yaml", "include: [c0.yaml]\nservices: {x: {image: x}}\n")];
        files.extend((0..n).map(|i| f(&format!("c{i}.yaml"), format!("include: [c{}.yaml]\n", i + 1))));
        files.push(f(
            &format!("c{n}.yaml"),
            format!("services: {{y: {{image: x}}}}\n{block}{}v: 1\n", " ".repeat(120)),
        ));
        let d = tree(&files);
        let path = d.path().to_path_buf();
        let loaded = std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || load_dir(&path).map(|l| l.root))
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        // (The deep keys are parsed at the bottom, not imported: include takes services.)
        assert_eq!(loaded["services"]["y"]["image"].as_str(), Some("x"));
    }

    /// Unoptimised builds use about four times the stack of the release build.
    const STACK: usize = if cfg!(debug_assertions) { 1536 << 10 } else { 512 << 10 };
}
