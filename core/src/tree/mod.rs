//! Stack tree → [`Model`]: discovery of stack directories, ids, layers, env layering,
//! the static reading of each compose file, and the dependency graph.
//!
//! Bad input never stops the others: a stack that cannot be understood becomes a
//! [`StackError`] and is left out (with whatever hard-requires it); only a config that
//! cannot be used at all is an `Err`.

mod discover;
pub mod graph;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::compose::interpolate::Env;
use crate::compose::{self, ComposeFile};
use crate::config::{check_name, Config, ConfigError};
use crate::model::{layer_target, Layer, Model, Stack, StackError, FIXED_UNITS};
use crate::redact::{Forms, Secrets};
use discover::{discover, Found};
pub use discover::{stack_id, COMPOSE_FILE_NAMES};

/// systemd's limit on a unit name (UNIT_NAME_MAX less the NUL), which is also the file
/// system's limit on the unit file's name.
pub const MAX_UNIT_NAME: usize = 255;

/// Why a stack's unit name cannot exist, if it cannot.
fn unit_name_error(prefix: &str, id: &str) -> Option<String> {
    if FIXED_UNITS.contains(&id) {
        return Some(format!(
            "stack id {id:?} is reserved: hlsys's own units are {}; rename the directory",
            FIXED_UNITS.map(|f| format!("{prefix}-{f}.service")).join(", ")
        ));
    }
    let len = prefix.len() + 1 + id.len() + ".service".len();
    (len > MAX_UNIT_NAME).then(|| {
        format!(
            "stack id is {} characters long, which makes a unit name of {len} characters; systemd's limit is {MAX_UNIT_NAME}: shorten the directory names",
            id.len()
        )
    })
}

/// Env files (lowest precedence first) and the variables they define, or the file at
/// fault and why.
type EnvResult = Result<(Vec<PathBuf>, Env), (PathBuf, String)>;

/// What the config's env_files and each layer's `.env` define, loaded once per build and
/// shared by every stack and reading thread (a clone shares the same cache): the config's
/// files once, each layer's `.env` once on top of them. The variables are shared, not
/// copied ([`Env::shared`]), so a stack costs its own env files only, however many
/// variables the shared ones hold.
#[derive(Clone, Default)]
struct EnvCache {
    config: Arc<OnceLock<EnvResult>>,
    layers: Arc<Mutex<BTreeMap<PathBuf, Arc<OnceLock<EnvResult>>>>>,
    /// The values of each shared layer above, indexed for masking once (by the layer's
    /// address, which the cache keeps alive, and the shortest value masked).
    forms: Arc<Mutex<HashMap<(usize, usize), Arc<OnceLock<Arc<Forms>>>>>>,
}

impl EnvCache {
    fn new() -> EnvCache {
        EnvCache::default()
    }

    /// The config's env files ([`config_env`]) and, for a stack below a layer directory,
    /// the layer's `.env` on top ([`layer_env`]), each read once.
    fn shared(&self, config: &Config, layer_dir: Option<&Path>) -> EnvResult {
        let base = self.config.get_or_init(|| config_env(config));
        let Some(l) = layer_dir else {
            return base.clone();
        };
        let slot = {
            let mut layers = self.layers.lock().unwrap_or_else(|p| p.into_inner());
            layers.entry(l.to_path_buf()).or_default().clone()
        };
        slot.get_or_init(|| layer_env(base.clone()?, l)).clone()
    }

    /// The values of `env` to mask in messages, values of `min_chars` characters or more:
    /// its own layer indexed now, the shared layers below it once per build.
    fn secrets(&self, env: &Env, min_chars: usize) -> Secrets {
        let mut parts = vec![Arc::new(Forms::new(env.own_values().map(String::as_str), min_chars))];
        let mut below = env.base();
        while let Some(layer) = below {
            let key = (Arc::as_ptr(layer) as usize, min_chars);
            // Built by the first thread that needs it; the others wait for it there.
            let slot = {
                let mut cache = self.forms.lock().unwrap_or_else(|p| p.into_inner());
                cache.entry(key).or_default().clone()
            };
            let forms = slot.get_or_init(|| Arc::new(Forms::new(layer.own_values().map(String::as_str), min_chars)));
            parts.push(forms.clone());
            below = layer.base();
        }
        Secrets::of_parts(parts)
    }
}

fn env_file_error(e: crate::compose::envfile::EnvFileError) -> (PathBuf, String) {
    let message = match e.line {
        Some(l) => format!("line {l}: {}", e.message),
        None => e.message,
    };
    (e.file, message)
}

/// The config's env files that exist (optional ones that are missing are dropped),
/// loaded in that order, shared.
fn config_env(config: &Config) -> EnvResult {
    let mut files = Vec::new();
    for f in &config.env_files {
        // Anything there is read (and refused by name if it is not a regular file).
        if f.path.exists() {
            files.push(f.path.clone());
        } else if !f.optional {
            return Err((
                f.path.clone(),
                "env file from the config's env_files does not exist (prefix it with '-' to make it optional)".into(),
            ));
        }
    }
    let mut env = Env::new();
    crate::compose::envfile::load_onto(&mut env, &files).map_err(env_file_error)?;
    Ok((files, env.shared()))
}

/// The layer's `.env`, when there is one, on top of the config's env files, shared.
fn layer_env((mut files, mut env): (Vec<PathBuf>, Env), layer_dir: &Path) -> EnvResult {
    let p = layer_dir.join(".env");
    if !p.exists() {
        return Ok((files, env));
    }
    crate::compose::envfile::load_onto(&mut env, std::slice::from_ref(&p)).map_err(env_file_error)?;
    files.push(p);
    Ok((files, env.shared()))
}

/// The env files of a stack, lowest precedence first, and the variables they define: the
/// shared ones of [`EnvCache::shared`], then the stack's own `.env` and `.env.local`
/// (optional by nature), layered exactly as [`crate::compose::envfile::load_layered`]
/// would over the whole list.
fn stack_env(cache: &mut EnvCache, config: &Config, stack_dir: &Path, layer_dir: Option<&Path>) -> EnvResult {
    let (mut files, mut env) = cache.shared(config, layer_dir)?;
    let own: Vec<PathBuf> = [".env", ".env.local"]
        .iter()
        .map(|n| stack_dir.join(n))
        .filter(|p| p.exists())
        .collect();
    crate::compose::envfile::load_onto(&mut env, &own).map_err(env_file_error)?;
    files.extend(own);
    Ok((files, env))
}

/// Fingerprint of a file, for telling later whether the units are stale, fit for the
/// world-readable report: a hash of its content when anyone may read the file anyway,
/// else its size and modification time ([`metadata_fingerprint`]): a hash of a file
/// others cannot read would let them test guesses of what it holds (a short secret, a
/// PIN, is guessed in a few thousand tries).
pub fn fingerprint(path: &Path) -> String {
    Readable::default().fingerprint(path, None)
}

/// Which directories others may search, looked at once per build ([`fingerprint`]).
#[derive(Default)]
struct Readable {
    /// A directory → whether others may search it and every directory on the way to it.
    searchable: BTreeMap<PathBuf, bool>,
}

impl Readable {
    /// Whether others may read `path`: its file (a link's target) readable by others,
    /// in a directory others may search, and every directory above it.
    fn by_others(&mut self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let file = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(path) {
                Ok(real) => real,
                Err(_) => return false,
            },
            Ok(_) => path.to_path_buf(),
            Err(_) => return false,
        };
        let dir = file.parent().unwrap_or(Path::new("/"));
        self.searchable(dir) && std::fs::metadata(&file).is_ok_and(|m| m.mode() & 0o004 != 0)
    }

    /// Whether others may search `dir` and every directory the kernel passes through to
    /// reach it: those above it as written, and for a link, those above its target.
    fn searchable(&mut self, dir: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        if let Some(&s) = self.searchable.get(dir) {
            return s;
        }
        let mut s = std::fs::metadata(dir).is_ok_and(|m| m.mode() & 0o001 != 0);
        if s {
            if let Some(parent) = dir.parent() {
                s = self.searchable(parent);
            }
        }
        if s && std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
            s = match std::fs::canonicalize(dir) {
                Ok(real) => real.parent().is_none_or(|p| self.searchable(p)),
                Err(_) => false,
            };
        }
        self.searchable.insert(dir.to_path_buf(), s);
        s
    }

    /// [`fingerprint`] of `path`, whose content hash is `hash` when it was read already.
    fn fingerprint(&mut self, path: &Path, hash: Option<String>) -> String {
        if !self.by_others(path) {
            return metadata_fingerprint(path);
        }
        hash.unwrap_or_else(|| match crate::bounded::read(path, crate::bounded::COMPOSE_CAP) {
            Ok(bytes) => crate::compose::load::source::fingerprint_bytes(&bytes),
            Err(_) => "missing".to_string(),
        })
    }
}

/// Size and modification time of a file, for files whose content must not leak.
pub fn metadata_fingerprint(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => format!("size={} mtime={}.{:09}", m.len(), m.mtime(), m.mtime_nsec()),
        Err(_) => "missing".to_string(),
    }
}

/// Shortest env value that keeps a compose error from being shown: shorter ones are not
/// secrets worth the name and would match ordinary words and numbers. (Inside other
/// messages, values of [`crate::redact::MIN_MASKED`] characters or more are masked.)
const MIN_REDACTED_LEN: usize = 3;

/// A compose error as text, unless an env value reached it through interpolation (a
/// service or network name written as `${VAR}`, say), as written or quoted: then only
/// where it happened.
fn without_env_values(e: compose::ComposeError, secrets: &Secrets) -> String {
    let text = e.to_string();
    if !secrets.reveals(&text) {
        return text;
    }
    let place = match (e.line, &e.key) {
        (_, Some(key)) => format!("key {key}: "),
        (Some(line), None) => format!("line {line}: "),
        (None, None) => String::new(),
    };
    format!("{place}invalid value (its text comes from an env file, so it is not shown)")
}

/// `e` with every value of `secrets` masked in its message and its file (a file named
/// through an env value, `extends: {file: "${F}"}`, is named with the value hidden):
/// what every [`StackError`] of a stack whose env files were read goes through before
/// it leaves [`build`], for the report, the kernel log, STATUS= and every CLI view.
fn masked(e: StackError, secrets: &Secrets) -> StackError {
    if secrets.is_empty() {
        return e;
    }
    StackError {
        stack: e.stack,
        file: secrets.mask_path(&e.file),
        message: secrets.mask(&e.message),
    }
}

struct Parsed {
    compose: ComposeFile,
    env_files: Vec<PathBuf>,
    /// The files Compose merges for the stack, in order ([`crate::compose::load::files::select`]).
    compose_files: Vec<PathBuf>,
    /// Every compose file read (selected, extended, included) with its [`fingerprint`],
    /// and env files named by `include` (fingerprinted by metadata later).
    read: Vec<(PathBuf, String)>,
    include_env_files: Vec<PathBuf>,
    /// Owner and mode of each compose file read, as read ([`crate::trust`]).
    read_meta: Vec<(PathBuf, crate::trust::Meta)>,
}

/// Reads env files and the compose files for a stack assumed to be in `layer`; `env_out`
/// gets the variables its env files define, once they are read (for [`masked`]).
fn parse_stack(
    config: &Config,
    envs: &mut EnvCache,
    f: &Found,
    id: &str,
    layer: &str,
    env_out: &mut Option<Env>,
) -> Result<Parsed, StackError> {
    let error = |file: PathBuf, message: String| StackError {
        stack: id.to_string(),
        file,
        message,
    };
    let layer_dir = config.stacks_dir.join(layer);
    let below_layer = f.dir.starts_with(&layer_dir) && f.dir != layer_dir;
    // The stack's own `.env` files are looked up through the directory the walk opened
    // (`/proc/self/fd/N`), and named by the stack's path.
    let fd_dir = f.fd_dir();
    let lookup = fd_dir.as_deref().unwrap_or(&f.dir);
    let named = |p: PathBuf| match fd_dir.as_deref().and_then(|d| p.strip_prefix(d).ok()) {
        Some(rest) => f.dir.join(rest),
        None => p,
    };
    let (env_files, env) = stack_env(envs, config, lookup, below_layer.then_some(layer_dir.as_path()))
        .map_err(|(file, message)| error(named(file), message))?;
    let env_files: Vec<PathBuf> = env_files.into_iter().map(named).collect();
    let parsed = parse_compose(f, id, env_files, &env, envs).map_err(|(file, message)| error(file, message));
    *env_out = Some(env);
    parsed
}

/// The compose files of a stack whose env files are read.
fn parse_compose(
    f: &Found,
    id: &str,
    env_files: Vec<PathBuf>,
    env: &Env,
    envs: &EnvCache,
) -> Result<Parsed, (PathBuf, String)> {
    let compose_files = crate::compose::load::files::select(&f.dir, &f.compose_file, f.override_file.as_deref(), env)
        .map_err(|e| {
        (
            env_files.last().cloned().unwrap_or_else(|| f.compose_file.clone()),
            e.to_string(),
        )
    })?;
    let reveal = || envs.secrets(env, MIN_REDACTED_LEN);
    let loaded = crate::compose::load::load(&compose_files, &f.dir, env)
        .map_err(|e| (e.file, without_env_values(e.error, &reveal())))?;
    let compose = compose::project::read(&loaded.root, id, &f.dir, env)
        .map_err(|e| (compose_files[0].clone(), without_env_values(e, &reveal())))?;
    Ok(Parsed {
        compose,
        env_files,
        compose_files,
        read: loaded.compose_files,
        include_env_files: loaded.env_files,
        read_meta: loaded.compose_meta,
    })
}

/// Pseudo-stack under which network problems are reported (not a valid stack id).
pub const NETWORKS_PROBLEM: &str = "(networks)";

/// [`crate::config::netcheck::problems`] as reported problems: logged and listed, not fatal.
fn network_problems(config: &Config) -> Vec<StackError> {
    crate::config::netcheck::problems(&config.networks)
        .into_iter()
        .map(|(name, message)| StackError {
            stack: NETWORKS_PROBLEM.into(),
            file: config.network_sources.get(&name).cloned().unwrap_or_default(),
            message,
        })
        .collect()
}

/// From this many stacks on, [`build`] reads them on several threads: below it, starting
/// threads costs more than it saves.
const PARALLEL_FROM: usize = 64;
/// At most this many reading threads (reading is mostly parsing; more cores help little).
const MAX_THREADS: usize = 8;

/// Builds the model. `Err` only for config problems that leave nothing to build on.
pub fn build(config: Config) -> Result<Model, ConfigError> {
    let mut errors = Vec::new();
    let cfg_file = config
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_CONFIG));
    let tree_available = std::fs::read_dir(&config.stacks_dir).is_ok_and(|mut d| d.next().is_some());
    if !tree_available {
        errors.push(StackError {
            stack: "(tree)".into(),
            file: config.stacks_dir.clone(),
            message: "stacks_dir is missing or empty (not mounted yet?)".into(),
        });
    }
    let found = discover(&config.stacks_dir, &mut errors);
    let candidates = unique_ids(found, &config.unit_prefix, &mut errors);
    let listed_layer = listed_layers(&config, &cfg_file)?;
    report_unknown_stacks(&config, &cfg_file, &candidates, &listed_layer, &mut errors);

    let mut stacks = Vec::new();
    let mut files_read = StackInputs {
        compose: Vec::new(),
        env_files: Vec::new(),
        compose_meta: Vec::new(),
    };
    let threads = if candidates.len() < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
    };
    for read in read_stacks(&config, &candidates, &listed_layer, threads) {
        match read {
            Ok((stack, files)) => {
                if let Some(e) = untrusted(&config, &stack, &files) {
                    errors.push(e);
                    continue;
                }
                files_read.compose.extend(files.compose);
                files_read.env_files.extend(files.env_files);
                stacks.push(stack);
            }
            Err(e) => errors.push(e),
        }
    }

    // The directories the walk kept open for reading are closed.
    drop(candidates);

    let mut layers = layers(&config, &cfg_file, &stacks)?;
    // Ids that exist on disk but failed: a want of them is dropped, a require is fatal.
    let failed: BTreeSet<String> = errors.iter().map(|e| e.stack.clone()).collect();
    let env_files_of: BTreeMap<String, Vec<PathBuf>> =
        stacks.iter().map(|s| (s.id.clone(), s.env_files.clone())).collect();
    let pruned = graph::prune(&mut stacks, &layers, &failed).map_err(|e| ConfigError {
        file: cfg_file.clone(),
        message: e.to_string(),
    })?;
    errors.extend(masked_graph_errors(pruned.errors, &env_files_of));
    errors.extend(network_problems(&config));
    order_layers(&mut layers, &pruned.layer_order, &stacks);
    stacks.sort_by(|a, b| a.id.cmp(&b.id));
    errors.sort_by(|a, b| (&a.stack, &a.file).cmp(&(&b.stack, &b.file)));
    errors.dedup();
    let inputs = inputs(&config, &stacks, files_read);
    Ok(Model {
        config,
        stacks,
        errors,
        layers,
        tree_available,
        inputs,
    })
}

/// Errors of the dependency graph, [`masked`] with the values of the env files of every
/// stack they are about: their messages quote `requires`, `wants` and `layer` values,
/// which may be interpolated, and the reasons of the stacks they require (each about a
/// stack of these errors too). The files are read again only when there are such errors.
fn masked_graph_errors(errors: Vec<StackError>, env_files: &BTreeMap<String, Vec<PathBuf>>) -> Vec<StackError> {
    if errors.is_empty() {
        return errors;
    }
    let lists = errors.iter().filter_map(|e| env_files.get(&e.stack)).map(Vec::as_slice);
    let secrets = Secrets::of_env_files(lists, crate::redact::MIN_MASKED);
    errors.into_iter().map(|e| masked(e, &secrets)).collect()
}

/// Stack ids of what [`discover`] found; ids given by more than one directory (`a/b-c`
/// and `a-b/c` both give `a-b-c`) and invalid ones become errors.
fn unique_ids(found: Vec<Found>, unit_prefix: &str, errors: &mut Vec<StackError>) -> Vec<(String, Found)> {
    let mut by_id: BTreeMap<String, Vec<Found>> = BTreeMap::new();
    for f in found {
        match stack_id(&f.rel) {
            Ok(id) => by_id.entry(id).or_default().push(f),
            Err(e) => errors.push(StackError {
                stack: f.rel.clone(),
                file: f.dir.clone(),
                message: e.to_string(),
            }),
        }
    }
    let mut candidates: Vec<(String, Found)> = Vec::new();
    for (id, mut fs) in by_id {
        if let Some(message) = unit_name_error(unit_prefix, &id) {
            errors.extend(fs.into_iter().map(|f| StackError {
                stack: id.clone(),
                file: f.dir,
                message: message.clone(),
            }));
            continue;
        }
        if fs.len() > 1 {
            let paths: Vec<String> = fs.iter().map(|f| f.dir.display().to_string()).collect();
            for f in fs {
                errors.push(StackError {
                    stack: id.clone(),
                    file: f.compose_file,
                    message: format!(
                        "stack id {id:?} is given by more than one directory: {}",
                        paths.join(" and ")
                    ),
                });
            }
        } else {
            candidates.push((id, fs.remove(0)));
        }
    }
    candidates
}

/// Stack id → layer, from the layers' explicit member lists (`layers.NAME.stacks`).
fn listed_layers(config: &Config, cfg_file: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut listed_layer: BTreeMap<String, String> = BTreeMap::new();
    for (layer, lc) in &config.layers {
        for id in lc.stacks.iter().flatten() {
            if let Some(other) = listed_layer.insert(id.clone(), layer.clone()) {
                if other != *layer {
                    return Err(ConfigError {
                        file: cfg_file.to_path_buf(),
                        message: format!("stack {id:?} is listed in layers.{other}.stacks and layers.{layer}.stacks"),
                    });
                }
            }
        }
    }
    Ok(listed_layer)
}

/// Config entries for stacks that don't exist are reported, not ignored: they are
/// usually typos or moved directories.
fn report_unknown_stacks(
    config: &Config,
    cfg_file: &Path,
    candidates: &[(String, Found)],
    listed_layer: &BTreeMap<String, String>,
    errors: &mut Vec<StackError>,
) {
    let known_ids: BTreeSet<&str> = candidates.iter().map(|(id, _)| id.as_str()).collect();
    let unknown = |id: &String, message: String| StackError {
        stack: id.clone(),
        file: cfg_file.to_path_buf(),
        message,
    };
    let under = config.stacks_dir.display();
    for id in config.stacks.keys() {
        if !known_ids.contains(id.as_str()) && !errors.iter().any(|e| &e.stack == id) {
            let message = format!("configured stack {id:?} has no directory with a compose file under {under}");
            errors.push(unknown(id, message));
        }
    }
    for (id, layer) in listed_layer {
        if !known_ids.contains(id.as_str()) {
            let message = format!("layers.{layer}.stacks names {id:?}, which is not a stack under {under}");
            errors.push(unknown(id, message));
        }
    }
}

/// [`read_stack`] for every candidate, in order, on `threads` threads (sharing one cache
/// of the shared env files; scoped, so no runtime and nothing outlives the call).
fn read_stacks(
    config: &Config,
    candidates: &[(String, Found)],
    listed_layer: &BTreeMap<String, String>,
    threads: usize,
) -> Vec<Result<(Stack, StackInputs), StackError>> {
    let shared = EnvCache::new();
    let read_all = |part: &[(String, Found)]| {
        let mut envs = shared.clone();
        part.iter()
            .map(|(id, f)| read_stack(config, &mut envs, id, f, listed_layer))
            .collect::<Vec<_>>()
    };
    if threads < 2 || candidates.is_empty() {
        return read_all(candidates);
    }
    let chunk = candidates.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = candidates
            .chunks(chunk)
            .map(|part| scope.spawn(move || read_all(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

/// The files one stack was read from, beyond its own env files: every compose file (with
/// the fingerprint of the text parsed) and the env files of its `include`s.
#[derive(Debug, PartialEq)]
struct StackInputs {
    compose: Vec<(PathBuf, String)>,
    env_files: Vec<PathBuf>,
    /// Owner and mode of each compose file, from the descriptor it was read through.
    compose_meta: Vec<(PathBuf, crate::trust::Meta)>,
}

/// The stack's files that fail the trust model ([`crate::trust`]) as the error that skips
/// it: every compose file read (selected, extended, included; judged by the metadata of
/// the descriptor read) and every env file (the stack's, its includes', its services'
/// `env_file:`).
fn untrusted(config: &Config, stack: &Stack, read: &StackInputs) -> Option<StackError> {
    let service_env_files = stack
        .service_details
        .iter()
        .flat_map(|s| s.env_files.iter().map(|(p, _)| p));
    let env_files = stack.env_files.iter().chain(&read.env_files).chain(service_env_files);
    let findings = crate::trust::stack_findings(&config.trust, &config.stacks_dir, &read.compose_meta, env_files);
    let first = findings.first()?;
    Some(StackError {
        stack: stack.id.clone(),
        file: first.path.clone(),
        message: crate::trust::describe(&findings),
    })
}

/// Reads one stack (env files, compose files) into a [`Stack`], with the files it was
/// read from, through the directories the walk opened ([`crate::bounded::pin`]). Its
/// error, if any, is [`masked`] with the values of its env files.
fn read_stack(
    config: &Config,
    envs: &mut EnvCache,
    id: &str,
    f: &Found,
    listed_layer: &BTreeMap<String, String>,
) -> Result<(Stack, StackInputs), StackError> {
    let _pinned = crate::bounded::pin(f.pinned.clone());
    let mut env = None;
    read_pinned(config, envs, id, f, listed_layer, &mut env).map_err(|e| match &env {
        Some(env) => masked(e, &envs.secrets(env, crate::redact::MIN_MASKED)),
        None => e,
    })
}

/// [`read_stack`] before masking; `env` gets the stack's variables once read.
fn read_pinned(
    config: &Config,
    envs: &mut EnvCache,
    id: &str,
    f: &Found,
    listed_layer: &BTreeMap<String, String>,
    env: &mut Option<Env>,
) -> Result<(Stack, StackInputs), StackError> {
    let sc = config.stacks.get(id).cloned().unwrap_or_default();
    let first = f.rel.split('/').next().unwrap_or(&f.rel).to_string();
    let configured = sc.layer.clone().or_else(|| listed_layer.get(id).cloned());
    let assumed = configured.clone().unwrap_or_else(|| first.clone());
    let mut parsed = parse_stack(config, envs, f, id, &assumed, env)?;
    let x = parsed.compose.x_hlsys.clone();
    let layer = configured.or(x.layer.clone()).unwrap_or(first);
    if layer != assumed {
        // x-hlsys moved the stack to another layer: its layer .env changes, so read again.
        parsed = parse_stack(config, envs, f, id, &layer, env)?;
    }
    check_name("layer", &layer).map_err(|e| StackError {
        stack: id.to_string(),
        file: f.compose_file.clone(),
        message: e.to_string(),
    })?;
    let requires = sorted_unique(sc.requires.iter().chain(&x.requires));
    let mut wants = sorted_unique(sc.wants.iter().chain(&x.wants));
    wants.retain(|w| !requires.contains(w));
    let services = &parsed.compose.services;
    let networks = sorted_unique(services.iter().flat_map(|s| &s.networks));
    let stack = Stack {
        id: id.to_string(),
        layer,
        dir: f.dir.clone(),
        compose_file: parsed.compose_files[0].clone(),
        compose_files: parsed.compose_files,
        project: id.to_string(),
        env_files: parsed.env_files,
        services: services.iter().map(|s| s.name.clone()).collect(),
        networks,
        gpu: services.iter().any(|s| !s.gpu.is_empty()),
        requires,
        wants,
        unit: format!("{}-{}.service", config.unit_prefix, id),
        enabled: sc.enabled.or(x.enabled).unwrap_or(true),
        timeout_start_sec: sc.timeout_start_sec,
        service_details: parsed.compose.services.clone(),
        secret_files: parsed.compose.secret_files.clone(),
    };
    let read = StackInputs {
        compose: parsed.read,
        env_files: parsed.include_env_files,
        compose_meta: parsed.read_meta,
    };
    Ok((stack, read))
}

fn sorted_unique<'a>(items: impl Iterator<Item = &'a String>) -> Vec<String> {
    let set: BTreeSet<&String> = items.collect();
    set.into_iter().cloned().collect()
}

/// The configured layers plus every layer a stack is in, their dependencies checked
/// (stacks are filled in by [`order_layers`]).
fn layers(config: &Config, cfg_file: &Path, stacks: &[Stack]) -> Result<Vec<Layer>, ConfigError> {
    let mut layer_names: BTreeSet<String> = config.layers.keys().cloned().collect();
    layer_names.extend(stacks.iter().map(|s| s.layer.clone()));
    for (name, lc) in &config.layers {
        for dep in lc.after.iter().chain(&lc.requires) {
            if !layer_names.contains(dep) {
                return Err(ConfigError {
                    file: cfg_file.to_path_buf(),
                    message: format!("layers.{name} depends on unknown layer {dep:?}"),
                });
            }
        }
    }
    Ok(layer_names
        .iter()
        .map(|name| {
            let lc = config.layers.get(name).cloned().unwrap_or_default();
            let requires = sorted_unique(lc.requires.iter());
            let after = sorted_unique(lc.after.iter().filter(|a| !lc.requires.contains(a)));
            Layer {
                name: name.clone(),
                target: layer_target(&config.unit_prefix, name),
                after,
                requires,
                stacks: Vec::new(),
            }
        })
        .collect())
}

/// Puts `layers` in start order and gives each its enabled stacks.
fn order_layers(layers: &mut [Layer], layer_order: &[String], stacks: &[Stack]) {
    let order: BTreeMap<&str, usize> = layer_order.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    layers.sort_by_key(|l| order.get(l.name.as_str()).copied().unwrap_or(usize::MAX));
    for l in layers {
        l.stacks = stacks
            .iter()
            .filter(|s| s.layer == l.name && s.enabled)
            .map(|s| s.id.clone())
            .collect();
    }
}

/// Every file the units depend on, fingerprinted: the config's, every compose file a
/// stack was read from (selected, extended, included; hashed while parsing them) and the
/// env files; a hash only of what others may read anyway ([`fingerprint`]).
fn inputs(config: &Config, stacks: &[Stack], read: StackInputs) -> BTreeMap<PathBuf, String> {
    let mut inputs = BTreeMap::new();
    let mut readable = Readable::default();
    for p in config.input_files() {
        let f = readable.fingerprint(&p, None);
        inputs.insert(p, f);
    }
    for (p, hash) in read.compose {
        let f = readable.fingerprint(&p, Some(hash));
        inputs.insert(p, f);
    }
    // Env files hold secrets: record size and mtime, never a hash of their content (the
    // report under /run is world-readable). Shared ones are looked at once.
    let env_files: BTreeSet<&PathBuf> = stacks
        .iter()
        .flat_map(|s| &s.env_files)
        .chain(&read.env_files)
        .collect();
    for e in env_files {
        inputs.insert(e.clone(), metadata_fingerprint(e));
    }
    inputs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 stacks in two layers with shared and own env files, some broken: the same
    /// results, in the same order, on one thread and on several.
    #[test]
    fn reading_on_threads_gives_what_one_thread_gives() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("tree");
        for i in 0..100 {
            let layer = if i % 2 == 0 { "even" } else { "odd" };
            let dir = tree.join(layer).join(format!("s{i:03}"));
            std::fs::create_dir_all(&dir).unwrap();
            let compose = if i % 17 == 0 {
                "services: [\n".to_string()
            } else {
                format!("services:\n  app:\n    image: busybox:${{TAG}}\n    environment: [N={i}]\n")
            };
            std::fs::write(dir.join("compose.yaml"), compose).unwrap();
            if i % 5 == 0 {
                std::fs::write(dir.join(".env"), format!("TAG={i}\n")).unwrap();
            }
        }
        std::fs::write(tree.join("even/.env"), "TAG=even\n").unwrap();
        std::fs::write(tree.join("odd/.env"), "TAG=odd\n").unwrap();
        let mut config = Config::from_str_at("stacks_dir = \"tree\"\n", &d.path().join("hlsys.toml")).unwrap();
        // About threads, not trust: the temp tree belongs to whoever runs the tests.
        config.trust.owner = Some(nix::unistd::geteuid().as_raw());
        config.trust.group = Some(nix::unistd::getegid().as_raw());
        let mut errors = Vec::new();
        let candidates = unique_ids(
            discover(&config.stacks_dir, &mut errors),
            &config.unit_prefix,
            &mut errors,
        );
        assert_eq!(candidates.len(), 100);
        let listed = BTreeMap::new();
        let one = read_stacks(&config, &candidates, &listed, 1);
        assert_eq!(one.iter().filter(|r| r.is_err()).count(), 6);
        for threads in [2, 3, 8] {
            assert_eq!(
                read_stacks(&config, &candidates, &listed, threads),
                one,
                "{threads} threads"
            );
        }
    }
}
