//! Stack tree → [`Model`]: discovery of stack directories, ids, layers, env layering,
//! the static reading of each compose file, and the dependency graph.
//!
//! Bad input never stops the others: a stack that cannot be understood becomes a
//! [`StackError`] and is left out (with whatever hard-requires it); only a config that
//! cannot be used at all is an `Err`.

pub mod graph;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::compose::{self, ComposeFile};
use crate::config::{check_name, Config, ConfigError};
use crate::escape::{check_value, BadValue};
use crate::model::{layer_target, Layer, Model, Stack, StackError, FIXED_UNITS};

/// File names Compose looks for, in its own order of preference.
pub const COMPOSE_FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// A directory that holds a compose file, before its file is read.
#[derive(Debug, Clone)]
struct Found {
    /// Path relative to stacks_dir, `/`-separated.
    rel: String,
    dir: PathBuf,
    compose_file: PathBuf,
    /// The first override file Compose would read beside it ([`crate::compose::load::files`]).
    override_file: Option<PathBuf>,
}

/// Walks `stacks_dir`: a directory with a compose file is a stack (nothing below it is
/// searched); other directories are descended; hidden ones are skipped.
fn discover(stacks_dir: &Path, errors: &mut Vec<StackError>) -> Vec<Found> {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    let real_root = std::fs::canonicalize(stacks_dir).unwrap_or_else(|_| stacks_dir.to_path_buf());
    let tree = Tree {
        root: stacks_dir,
        real_root: &real_root,
    };
    walk(&tree, stacks_dir, &mut found, &mut seen, errors);
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    found
}

/// The tree being walked: its path as configured and as resolved (for telling links
/// that point back into it).
struct Tree<'a> {
    root: &'a Path,
    real_root: &'a Path,
}

/// Whether a directory entry is one to descend into. A symlink to a directory inside the
/// tree is not: that directory is walked under its own name, and following the link too
/// would let the link's name (whichever sorts first) become the stack's id. A symlink
/// out of the tree is followed: that is how a stack kept elsewhere joins the tree.
fn descend(tree: &Tree, entry: &std::fs::DirEntry) -> bool {
    if entry.file_name().to_string_lossy().starts_with('.') {
        return false;
    }
    // The entry's type comes with the directory listing (std falls back to lstat where
    // the file system does not report it); only a symlink needs more.
    match entry.file_type() {
        Ok(t) if !t.is_symlink() => t.is_dir(),
        _ => match std::fs::canonicalize(entry.path()) {
            Ok(target) => target.is_dir() && !target.starts_with(tree.real_root),
            Err(_) => false,
        },
    }
}

fn walk(
    tree: &Tree,
    dir: &Path,
    found: &mut Vec<Found>,
    seen: &mut BTreeSet<(u64, u64)>,
    errors: &mut Vec<StackError>,
) {
    // Symlinked directories are followed, but each real directory (device and inode) is
    // read once, so a link loop cannot make the generator spin. One stat, where
    // canonicalize() would cost a readlink per path component.
    if let Ok(m) = std::fs::metadata(dir) {
        use std::os::unix::fs::MetadataExt;
        if !seen.insert((m.dev(), m.ino())) {
            return;
        }
    }
    let root = tree.root;
    let rel = dir.strip_prefix(root).unwrap_or(dir).to_string_lossy().into_owned();
    let listing = match list(tree, dir) {
        Ok(l) => l,
        Err(e) => {
            if dir != root {
                errors.push(StackError {
                    stack: rel,
                    file: dir.to_path_buf(),
                    message: format!("cannot read directory: {e}"),
                });
            }
            return;
        }
    };
    let present: Vec<&str> = COMPOSE_FILE_NAMES
        .iter()
        .copied()
        .filter(|n| listing.files.iter().any(|f| f == n))
        .collect();
    if !rel.is_empty() && !present.is_empty() {
        if present.len() > 1 {
            // Under the id it would have had, so a stack requiring it is told it is in error.
            errors.push(StackError {
                stack: stack_id(&rel).unwrap_or_else(|_| rel.clone()),
                file: dir.join(present[1]),
                message: format!(
                    "more than one compose file in {}: {}; keep one",
                    dir.display(),
                    present.join(", ")
                ),
            });
        } else {
            let override_file = crate::compose::load::files::OVERRIDE_FILE_NAMES
                .iter()
                .find(|n| listing.files.iter().any(|f| f == *n))
                .map(|n| dir.join(n));
            found.push(Found {
                rel,
                dir: dir.to_path_buf(),
                compose_file: dir.join(present[0]),
                override_file,
            });
        }
        return;
    }
    let mut subdirs = listing.subdirs;
    subdirs.sort();
    for d in subdirs {
        walk(tree, &d, found, seen, errors);
    }
}

/// What discovery needs from one directory listing.
struct Listing {
    /// Compose and override file names present.
    files: Vec<String>,
    /// Subdirectories (or links to them) that are not hidden.
    subdirs: Vec<PathBuf>,
}

/// Lists `dir` once: the compose and override files in it, and where to descend. One
/// read of the directory, where a lookup per candidate name would cost eight. Anything
/// by a compose file's name counts, a FIFO or a dangling link too: it is then reported
/// by name when it cannot be read, rather than silently ignored.
fn list(tree: &Tree, dir: &Path) -> std::io::Result<Listing> {
    let mut listing = Listing {
        files: Vec::new(),
        subdirs: Vec::new(),
    };
    for entry in std::fs::read_dir(dir)?.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if COMPOSE_FILE_NAMES.contains(&name.as_ref())
            || crate::compose::load::files::OVERRIDE_FILE_NAMES.contains(&name.as_ref())
        {
            listing.files.push(name.into_owned());
        } else if descend(tree, &entry) {
            listing.subdirs.push(entry.path());
        }
    }
    Ok(listing)
}

/// Stack id from its relative path: `genai/ollama` → `genai-ollama`. The id is also the
/// Compose project name, so it must be one Compose accepts (which also makes it a valid
/// unit-name part without escaping).
pub fn stack_id(rel: &str) -> Result<String, BadValue> {
    check_value("stack path", rel)?;
    let id = rel.replace('/', "-");
    let ok = id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ok {
        return Err(BadValue::ProjectName {
            rel: rel.to_string(),
            id,
        });
    }
    Ok(id)
}

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
type EnvResult = Result<(Vec<PathBuf>, BTreeMap<String, String>), (PathBuf, String)>;

/// What the config's env_files and a layer's `.env` define: the same for every stack of
/// the layer, so [`stack_env`] reads and parses it once per layer, not once per stack.
type EnvCache = BTreeMap<Option<PathBuf>, EnvResult>;

fn env_file_error(e: crate::compose::envfile::EnvFileError) -> (PathBuf, String) {
    let message = match e.line {
        Some(l) => format!("line {l}: {}", e.message),
        None => e.message,
    };
    (e.file, message)
}

/// The config's env files that exist (optional ones that are missing are dropped), then
/// the layer's `.env`, loaded in that order.
fn shared_env(config: &Config, layer_dir: Option<&Path>) -> EnvResult {
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
    if let Some(l) = layer_dir {
        let p = l.join(".env");
        if p.exists() {
            files.push(p);
        }
    }
    let env = crate::compose::envfile::load_layered(&files).map_err(env_file_error)?;
    Ok((files, env))
}

/// The env files of a stack, lowest precedence first, and the variables they define: the
/// shared ones of [`shared_env`], then the stack's own `.env` and `.env.local` (optional by
/// nature), layered exactly as [`crate::compose::envfile::load_layered`] would over the whole list.
fn stack_env(cache: &mut EnvCache, config: &Config, stack_dir: &Path, layer_dir: Option<&Path>) -> EnvResult {
    let (mut files, mut env) = cache
        .entry(layer_dir.map(Path::to_path_buf))
        .or_insert_with(|| shared_env(config, layer_dir))
        .clone()?;
    let own: Vec<PathBuf> = [".env", ".env.local"]
        .iter()
        .map(|n| stack_dir.join(n))
        .filter(|p| p.exists())
        .collect();
    crate::compose::envfile::load_onto(&mut env, &own).map_err(env_file_error)?;
    files.extend(own);
    Ok((files, env))
}

/// Content fingerprint of a file, for telling later whether the units are stale.
pub fn fingerprint(path: &Path) -> String {
    match crate::bounded::read(path, crate::bounded::COMPOSE_CAP) {
        Ok(bytes) => crate::compose::load::source::fingerprint_bytes(&bytes),
        Err(_) => "missing".to_string(),
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

/// Shortest env value looked for in messages: shorter ones are not secrets worth the
/// name and would match ordinary words and numbers.
const MIN_REDACTED_LEN: usize = 3;

/// A compose error as text, unless an env value reached it through interpolation (a
/// service or network name written as `${VAR}`, say): then only where it happened. The
/// last line of defence for "no value from an env file in any message".
fn without_env_values(e: compose::ComposeError, env: &BTreeMap<String, String>) -> String {
    let text = e.to_string();
    let leaks = env
        .values()
        .any(|v| v.len() >= MIN_REDACTED_LEN && text.contains(v.as_str()));
    if !leaks {
        return text;
    }
    let place = match (e.line, &e.key) {
        (_, Some(key)) => format!("key {key}: "),
        (Some(line), None) => format!("line {line}: "),
        (None, None) => String::new(),
    };
    format!("{place}invalid value (its text comes from an env file, so it is not shown)")
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

/// Reads env files and the compose files for a stack assumed to be in `layer`.
fn parse_stack(config: &Config, envs: &mut EnvCache, f: &Found, id: &str, layer: &str) -> Result<Parsed, StackError> {
    let error = |file: PathBuf, message: String| StackError {
        stack: id.to_string(),
        file,
        message,
    };
    let layer_dir = config.stacks_dir.join(layer);
    let below_layer = f.dir.starts_with(&layer_dir) && f.dir != layer_dir;
    let (env_files, env) = stack_env(envs, config, &f.dir, below_layer.then_some(layer_dir.as_path()))
        .map_err(|(file, message)| error(file, message))?;
    let compose_files = crate::compose::load::files::select(&f.dir, &f.compose_file, f.override_file.as_deref(), &env)
        .map_err(|e| {
            error(
                env_files.last().cloned().unwrap_or_else(|| f.compose_file.clone()),
                e.to_string(),
            )
        })?;
    let loaded = crate::compose::load::load(&compose_files, &f.dir, &env)
        .map_err(|e| error(e.file, without_env_values(e.error, &env)))?;
    let compose = compose::project::read(&loaded.root, id, &f.dir, &env)
        .map_err(|e| error(compose_files[0].clone(), without_env_values(e, &env)))?;
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

    let mut layers = layers(&config, &cfg_file, &stacks)?;
    // Ids that exist on disk but failed: a want of them is dropped, a require is fatal.
    let failed: BTreeSet<String> = errors.iter().map(|e| e.stack.clone()).collect();
    let pruned = graph::prune(&mut stacks, &layers, &failed).map_err(|e| ConfigError {
        file: cfg_file.clone(),
        message: e.to_string(),
    })?;
    errors.extend(pruned.errors);
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

/// [`read_stack`] for every candidate, in order, on `threads` threads (each with its own
/// cache of the shared env files; scoped, so no runtime and nothing outlives the call).
fn read_stacks(
    config: &Config,
    candidates: &[(String, Found)],
    listed_layer: &BTreeMap<String, String>,
    threads: usize,
) -> Vec<Result<(Stack, StackInputs), StackError>> {
    let read_all = |part: &[(String, Found)]| {
        let mut envs = EnvCache::new();
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
/// read from. Its layer: the config's, else `x-hlsys.layer`, else its first directory.
fn read_stack(
    config: &Config,
    envs: &mut EnvCache,
    id: &str,
    f: &Found,
    listed_layer: &BTreeMap<String, String>,
) -> Result<(Stack, StackInputs), StackError> {
    let sc = config.stacks.get(id).cloned().unwrap_or_default();
    let first = f.rel.split('/').next().unwrap_or(&f.rel).to_string();
    let configured = sc.layer.clone().or_else(|| listed_layer.get(id).cloned());
    let assumed = configured.clone().unwrap_or_else(|| first.clone());
    let mut parsed = parse_stack(config, envs, f, id, &assumed)?;
    let x = parsed.compose.x_hlsys.clone();
    let layer = configured.or(x.layer.clone()).unwrap_or(first);
    if layer != assumed {
        // x-hlsys moved the stack to another layer: its layer .env changes, so read again.
        parsed = parse_stack(config, envs, f, id, &layer)?;
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
/// stack was read from (selected, extended, included; fingerprinted while parsing them)
/// and the env files.
fn inputs(config: &Config, stacks: &[Stack], read: StackInputs) -> BTreeMap<PathBuf, String> {
    let mut inputs = BTreeMap::new();
    for p in config.input_files() {
        inputs.insert(p.clone(), fingerprint(&p));
    }
    inputs.extend(read.compose);
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
