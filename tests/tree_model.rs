//! The stack tree → model step (`Config::load` + `tree::build`) on small trees written
//! into temporary directories: error reporting (one clear error per bad input, the other
//! stacks unaffected), layer precedence, env layering, disabled stacks, discovery rules,
//! and the JSON contract of `hlsys stacks --json`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hlsys_core::config::{Config, ConfigError};
use hlsys_core::model::{Model, Stack, StackError};

/// A throw-away tree: `<root>/hlsys.toml` (stacks_dir = "tree") and `<root>/tree/...`.
struct Tree {
    dir: tempfile::TempDir,
}

/// Config lines every test starts from: the tree next to the config. (The default env
/// file is `global.env` beside the config, so nothing of the host leaks in.)
const BASE: &str = "stacks_dir = \"tree\"\n";

const SIMPLE: &str = "services:\n  app:\n    image: busybox\n";

impl Tree {
    fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Absolute path of `rel` under the root.
    fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// Writes `text` to `<root>/<rel>`, creating directories.
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `<root>/tree/<dir>/compose.yaml`
    fn stack(&self, dir: &str, compose: &str) -> PathBuf {
        self.write(&format!("tree/{dir}/compose.yaml"), compose)
    }

    /// The config, naming the runner as trusted (`common::trusting_runner`): these tests
    /// are about the model, not about who owns the files.
    fn config(&self, text: &str) -> PathBuf {
        self.write("hlsys.toml", &common::trusting_runner(text))
    }

    fn load(&self) -> Result<Config, ConfigError> {
        Config::load(&self.path("hlsys.toml"), true)
    }

    fn build(&self) -> Model {
        let mut cfg = self.load().unwrap_or_else(|e| panic!("config unusable: {e}"));
        common::trust_runner(&mut cfg);
        hlsys_core::tree::build(cfg).unwrap_or_else(|e| panic!("build failed: {e}"))
    }
}

fn ids(m: &Model) -> Vec<&str> {
    m.stacks.iter().map(|s| s.id.as_str()).collect()
}

fn stack<'m>(m: &'m Model, id: &str) -> &'m Stack {
    m.stack(id)
        .unwrap_or_else(|| panic!("no stack {id:?}; stacks: {:?}, errors: {:#?}", ids(m), m.errors))
}

/// The only error of `m`; panics (showing all) unless there is exactly one.
fn only_error(m: &Model) -> &StackError {
    assert_eq!(m.errors.len(), 1, "expected exactly one error, got {:#?}", m.errors);
    &m.errors[0]
}

fn errors_of<'m>(m: &'m Model, stack: &str) -> Vec<&'m StackError> {
    m.errors.iter().filter(|e| e.stack == stack).collect()
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(haystack.contains(needle), "{haystack:?}\n  does not contain {needle:?}");
}

// ---------------------------------------------------------------------------------
// One bad input: one clear error, the rest unaffected

#[test]
fn malformed_yaml_names_file_and_line() {
    let t = Tree::new();
    t.config(BASE);
    t.stack("good", SIMPLE);
    // Line 4 opens a flow sequence that never closes: the parser fails at end of input
    // (line 5, where the next key is).
    let bad = t.stack(
        "bad",
        "services:\n  app:\n    image: busybox\n    command: [sh, -c\n  other: {image: x}\n",
    );
    let m = t.build();
    assert_eq!(ids(&m), ["good"]);
    let e = only_error(&m);
    assert_eq!(e.stack, "bad");
    assert_eq!(e.file, bad);
    assert!(e.message.starts_with("line 5: "), "{:?}", e.message);
}

#[test]
fn malformed_yaml_line_is_the_offending_line() {
    let t = Tree::new();
    t.config(BASE);
    t.stack("good", SIMPLE);
    // A tab used for indentation on line 3.
    let bad = t.stack("bad", "services:\n  app:\n\timage: busybox\n");
    let m = t.build();
    assert_eq!(ids(&m), ["good"]);
    let e = only_error(&m);
    assert_eq!((e.stack.as_str(), &e.file), ("bad", &bad));
    assert!(e.message.starts_with("line 3: "), "{:?}", e.message);
}

#[test]
fn unknown_config_key_is_a_config_error_with_file_line_and_key() {
    let t = Tree::new();
    t.stack("good", SIMPLE);
    // Written as is (not t.config): the line numbers are the point, and loading alone
    // does not check who owns the file.
    let cfg = t.write("hlsys.toml", &format!("{BASE}\n[stacks.good]\nrequire = [\"x\"]\n"));
    let e = t.load().unwrap_err();
    assert_eq!(e.file, cfg);
    assert!(e.message.starts_with("line 4, column 1: "), "{:?}", e.message);
    assert_contains(&e.message, "`require`");
    // A top-level typo too.
    t.write("hlsys.toml", "stack_dir = \"tree\"\n");
    let e = t.load().unwrap_err();
    assert_eq!(e.file, cfg);
    assert!(e.message.starts_with("line 1, column 1: "), "{:?}", e.message);
    assert_contains(&e.message, "`stack_dir`");
    // The Display form leads with the file.
    assert!(e.to_string().starts_with(&format!("{}: line 1", cfg.display())), "{e}");
}

#[test]
fn hlsys_path_systemd_would_refuse_is_a_config_error() {
    let t = Tree::new();
    t.stack("good", SIMPLE);
    for bad in [
        "/opt/\\\"q\\\"/hlsys",
        "/opt/it's/hlsys",
        "/opt/back\\\\slash/hlsys",
        "/opt/tab\\there/hlsys",
    ] {
        let cfg = t.config(&format!("{BASE}hlsys_path = \"{bad}\"\n"));
        let e = t.load().expect_err(bad);
        assert_eq!(e.file, cfg);
        assert!(e.message.starts_with("hlsys_path "), "{bad}: {}", e.message);
    }
    // Spaces, '%', '$' and non-ASCII are fine: they can be escaped.
    t.config(&format!("{BASE}hlsys_path = \"/opt/h l$x 100% é/hlsys\"\n"));
    assert_eq!(t.load().unwrap().hlsys_path, PathBuf::from("/opt/h l$x 100% é/hlsys"));
    t.config(&format!("{BASE}hlsys_path = \"bin/hlsys\"\n"));
    assert!(t.load().unwrap_err().message.contains("must be absolute"));
}

#[test]
fn unknown_key_in_service_toml_names_that_file() {
    let t = Tree::new();
    t.config(BASE);
    t.stack("good", SIMPLE);
    let svc = t.write("tree/service.toml", "[good]\nwants = []\nrequire = [\"x\"]\n");
    let e = t.load().unwrap_err();
    assert_eq!(e.file, svc);
    assert!(e.message.starts_with("line 3, column 1: "), "{:?}", e.message);
    assert_contains(&e.message, "`require`");
}

#[test]
fn required_variable_names_variable_message_and_key() {
    let t = Tree::new();
    t.config(BASE);
    t.stack("good", SIMPLE);
    let bad = t.stack(
        "bad",
        "services:\n  app:\n    image: \"busybox:${TAG:?set TAG in .env}\"\n",
    );
    let m = t.build();
    assert_eq!(ids(&m), ["good"]);
    let e = only_error(&m);
    assert_eq!((e.stack.as_str(), &e.file), ("bad", &bad));
    assert_eq!(
        e.message,
        "key services.app.image: required variable TAG is missing a value: set TAG in .env"
    );
    // Set in the stack's .env, the same stack is fine.
    t.write("tree/bad/.env", "TAG=1.36\n");
    let m = t.build();
    assert!(m.errors.is_empty(), "{:#?}", m.errors);
    assert_eq!(ids(&m), ["bad", "good"]);
}

#[test]
fn two_compose_files_in_one_directory() {
    let t = Tree::new();
    t.config(BASE);
    t.stack("good", SIMPLE);
    t.stack("apps/two", SIMPLE);
    let second = t.write("tree/apps/two/compose.yml", SIMPLE);
    let m = t.build();
    assert_eq!(ids(&m), ["good"]);
    let e = only_error(&m);
    // Reported under the stack id the directory would have had.
    assert_eq!(e.stack, "apps-two");
    assert_eq!(e.file, second);
    assert_contains(&e.message, "more than one compose file");
    assert_contains(&e.message, "compose.yaml, compose.yml");
    assert_contains(&e.message, &t.path("tree/apps/two").display().to_string());
}

#[test]
fn a_stack_requiring_a_directory_with_two_compose_files_is_left_out_with_reason() {
    let t = Tree::new();
    t.config(&format!("{BASE}[stacks.needy]\nrequires = [\"apps-two\"]\n"));
    t.stack("apps/two", SIMPLE);
    t.write("tree/apps/two/docker-compose.yml", SIMPLE);
    let needy = t.stack("needy", SIMPLE);
    let m = t.build();
    assert!(m.stacks.is_empty(), "{:?}", ids(&m));
    let e = errors_of(&m, "needy");
    assert_eq!(e.len(), 1, "{:#?}", m.errors);
    assert_eq!(e[0].file, needy);
    assert_eq!(
        e[0].message,
        "requires stack \"apps-two\", which is left out (it is in error)"
    );
}

#[test]
fn id_collision_names_both_directories() {
    let t = Tree::new();
    t.config(BASE);
    t.stack("good", SIMPLE);
    let f1 = t.stack("a/b-c", SIMPLE);
    let f2 = t.stack("a-b/c", SIMPLE);
    let m = t.build();
    assert_eq!(ids(&m), ["good"]);
    let errs = errors_of(&m, "a-b-c");
    assert_eq!(m.errors.len(), 2, "{:#?}", m.errors);
    assert_eq!(errs.len(), 2, "{:#?}", m.errors);
    let files: BTreeSet<&PathBuf> = errs.iter().map(|e| &e.file).collect();
    assert_eq!(files, BTreeSet::from([&f1, &f2]));
    for e in errs {
        assert_contains(&e.message, "stack id \"a-b-c\" is given by more than one directory");
        assert_contains(&e.message, &t.path("tree/a/b-c").display().to_string());
        assert_contains(&e.message, &t.path("tree/a-b/c").display().to_string());
    }
}

#[test]
fn dependency_cycle_is_spelled_out() {
    let t = Tree::new();
    t.config(&format!("{BASE}[stacks.a]\nrequires = [\"b\"]\n"));
    let fa = t.stack("a", SIMPLE);
    let fb = t.stack("b", "x-hlsys:\n  wants: [a]\nservices:\n  app: {image: busybox}\n");
    t.stack("c", SIMPLE);
    let m = t.build();
    assert_eq!(ids(&m), ["c"]);
    assert_eq!(m.errors.len(), 2, "{:#?}", m.errors);
    assert_eq!(m.errors[0].stack, "a");
    assert_eq!(m.errors[0].file, fa);
    assert_eq!(m.errors[0].message, "dependency cycle: a → b → a");
    assert_eq!(m.errors[1].stack, "b");
    assert_eq!(m.errors[1].file, fb);
    assert_eq!(m.errors[1].message, "dependency cycle: a → b → a");
}

#[test]
fn unknown_dependency_is_an_error_of_the_stack_that_names_it() {
    let t = Tree::new();
    t.config(BASE);
    t.stack("good", SIMPLE);
    let f = t.stack(
        "typo",
        "x-hlsys:\n  requires: [godo]\nservices:\n  app: {image: busybox}\n",
    );
    let m = t.build();
    assert_eq!(ids(&m), ["good"]);
    let e = only_error(&m);
    assert_eq!((e.stack.as_str(), &e.file), ("typo", &f));
    assert_eq!(e.message, "depends on unknown stack \"godo\"");
}

#[test]
fn requiring_a_broken_stack_leaves_out_wanting_it_does_not() {
    let t = Tree::new();
    t.config(&format!(
        "{BASE}[stacks.needy]\nrequires = [\"broken\"]\n[stacks.wanty]\nwants = [\"broken\", \"needy\", \"good\"]\n"
    ));
    t.stack("good", SIMPLE);
    let broken = t.stack("broken", "services: [\n");
    let needy = t.stack("needy", SIMPLE);
    t.stack("wanty", SIMPLE);
    let m = t.build();
    assert_eq!(ids(&m), ["good", "wanty"]);
    assert_eq!(m.errors.len(), 2, "{:#?}", m.errors);
    assert_eq!(m.errors[0].stack, "broken");
    assert_eq!(m.errors[0].file, broken);
    assert_eq!(m.errors[1].stack, "needy");
    assert_eq!(m.errors[1].file, needy);
    assert_eq!(
        m.errors[1].message,
        "requires stack \"broken\", which is left out (it is in error)"
    );
    // The wants of left-out stacks are dropped; the good one stays.
    assert_eq!(stack(&m, "wanty").wants, ["good"]);
    assert!(stack(&m, "wanty").requires.is_empty());
}

#[test]
fn directory_name_that_is_not_a_project_name() {
    let t = Tree::new();
    t.config(BASE);
    t.stack("good", SIMPLE);
    t.stack("Media Server", SIMPLE);
    let m = t.build();
    assert_eq!(ids(&m), ["good"]);
    let e = only_error(&m);
    assert_eq!(e.stack, "Media Server");
    assert_eq!(e.file, t.path("tree/Media Server"));
    assert_contains(&e.message, "directory \"Media Server\" gives stack id \"Media Server\"");
    assert_contains(&e.message, "Docker Compose does not accept as a project name");
    assert_contains(&e.message, "rename the directory");
}

#[test]
fn config_entry_for_a_missing_stack_is_reported() {
    let t = Tree::new();
    let cfg = t.config(&format!("{BASE}[stacks.gone]\nenabled = false\n"));
    t.stack("good", SIMPLE);
    let m = t.build();
    assert_eq!(ids(&m), ["good"]);
    let e = only_error(&m);
    assert_eq!((e.stack.as_str(), &e.file), ("gone", &cfg));
    assert_contains(
        &e.message,
        "configured stack \"gone\" has no directory with a compose file",
    );
}

// ---------------------------------------------------------------------------------
// Layers

#[test]
fn layer_precedence() {
    let t = Tree::new();
    t.config(&format!(
        "{BASE}[layers.listed]\nstacks = [\"grp-s1\", \"grp-s2\"]\n[stacks.grp-s1]\nlayer = \"cfg\"\n"
    ));
    let x = "x-hlsys:\n  layer: fromx\nservices:\n  app: {image: busybox}\n";
    t.stack("grp/s1", x); // config [stacks].layer beats the list and x-hlsys
    t.stack("grp/s2", x); // the layer's stacks list beats x-hlsys
    t.stack("grp/s3", x); // x-hlsys beats the first path component
    t.stack("grp/s4", SIMPLE); // first path component
    t.stack("top", SIMPLE); // a top-level stack is its own layer
    let m = t.build();
    assert!(m.errors.is_empty(), "{:#?}", m.errors);
    let layers: Vec<(&str, &str)> = m.stacks.iter().map(|s| (s.id.as_str(), s.layer.as_str())).collect();
    assert_eq!(
        layers,
        [
            ("grp-s1", "cfg"),
            ("grp-s2", "listed"),
            ("grp-s3", "fromx"),
            ("grp-s4", "grp"),
            ("top", "top")
        ]
    );
    assert_eq!(m.layer("listed").unwrap().stacks, ["grp-s2"]);
    assert_eq!(m.layer("cfg").unwrap().stacks, ["grp-s1"]);
    assert_eq!(m.layer("grp").unwrap().stacks, ["grp-s4"]);
    assert_eq!(m.layer("cfg").unwrap().target, "homelab-cfg.target");
}

#[test]
fn layer_order_follows_after_and_requires() {
    let t = Tree::new();
    t.config(&format!(
        "{BASE}[layers.c]\nafter = [\"b\"]\nrequires = [\"a\"]\n[layers.b]\nafter = [\"a\"]\n[layers.a]\n"
    ));
    t.stack("c/x", SIMPLE);
    t.stack("a/x", SIMPLE);
    t.stack("b/x", SIMPLE);
    let m = t.build();
    let order: Vec<&str> = m.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(order, ["a", "b", "c"]);
    let c = m.layer("c").unwrap();
    assert_eq!(
        (c.after.as_slice(), c.requires.as_slice()),
        (&["b".to_string()][..], &["a".to_string()][..])
    );
    // Depth, for the pull slots: the longest chain before a layer, not its position.
    t.config(&format!(
        "{BASE}[layers.c]\nafter = [\"b\"]\nrequires = [\"a\"]\n[layers.b]\nafter = [\"a\"]\n[layers.a]\n[layers.d]\n"
    ));
    t.stack("d/x", SIMPLE);
    let m = t.build();
    let depth: Vec<(&str, u32)> = m
        .layers
        .iter()
        .map(|l| (l.name.as_str(), m.layer_depth(&l.name)))
        .collect();
    assert_eq!(depth.len(), 4, "{depth:?}");
    for (layer, want) in [("a", 0), ("b", 1), ("c", 2), ("d", 0)] {
        assert!(depth.contains(&(layer, want)), "{layer} not at depth {want}: {depth:?}");
    }
}

// ---------------------------------------------------------------------------------
// Env layering

/// A compose file whose Docker network names come from A, B, C, D: the model's
/// `networks` shows which env file won for each.
const ENV_PROBE: &str = "services:
  app:
    image: busybox
    networks: [na, nb, nc, nd]
networks:
  na: {external: true, name: \"${A:-unset}\"}
  nb: {external: true, name: \"${B:-unset}\"}
  nc: {external: true, name: \"${C:-unset}\"}
  nd: {external: true, name: \"${D:-unset}\"}
";

#[test]
fn env_files_in_order_and_later_ones_win() {
    let t = Tree::new();
    t.config(
        "stacks_dir = \"tree\"\nenv_files = [\"-missing.env\", \"global.env\"]\n\
         [stacks.media-other]\nlayer = \"apps\"\n[stacks.elsewhere-x]\nlayer = \"media\"\n",
    );
    let global = t.write("global.env", "A=a-global\nB=b-global\nC=c-global\nD=d-global\n");
    let layer = t.write("tree/media/.env", "A=a-layer\nB=b-layer\nC=c-layer\n");
    let st = t.write("tree/media/plex/.env", "A=a-stack\nB=b-stack\n");
    let local = t.write("tree/media/plex/.env.local", "A=a-local\n");
    t.stack("media/plex", ENV_PROBE);
    // Moved out of the media layer by the config: no media/.env.
    t.stack("media/other", ENV_PROBE);
    // Moved out by x-hlsys: no media/.env either.
    t.stack("media/moved", &format!("x-hlsys:\n  layer: apps\n{ENV_PROBE}"));
    // In layer media by config but not below tree/media/: no media/.env.
    t.stack("elsewhere/x", ENV_PROBE);
    let m = t.build();
    assert!(m.errors.is_empty(), "{:#?}", m.errors);

    let plex = stack(&m, "media-plex");
    assert_eq!(plex.env_files, [global.as_path(), &layer, &st, &local]);
    assert_eq!(plex.networks, ["a-local", "b-stack", "c-layer", "d-global"]);

    for id in ["media-other", "media-moved", "elsewhere-x"] {
        let s = stack(&m, id);
        assert_eq!(s.env_files, [global.as_path()], "{id}");
        assert_eq!(s.networks, ["a-global", "b-global", "c-global", "d-global"], "{id}");
    }
    assert_eq!(stack(&m, "media-moved").layer, "apps");
}

#[test]
fn top_level_stack_reads_its_own_env_once() {
    let t = Tree::new();
    t.config(BASE);
    let own = t.write("tree/media/.env", "A=a-own\n");
    t.stack("media", ENV_PROBE);
    let m = t.build();
    let s = stack(&m, "media");
    assert_eq!(s.layer, "media");
    assert_eq!(s.env_files, [own]);
    assert_eq!(s.networks, ["a-own", "unset"]);
}

#[test]
fn missing_required_env_file_fails_every_stack_naming_it() {
    let t = Tree::new();
    t.config("stacks_dir = \"tree\"\nenv_files = [\"nope.env\"]\n");
    t.stack("one", SIMPLE);
    t.stack("two", SIMPLE);
    let m = t.build();
    assert!(m.stacks.is_empty(), "{:?}", ids(&m));
    assert_eq!(m.errors.len(), 2, "{:#?}", m.errors);
    for (e, id) in m.errors.iter().zip(["one", "two"]) {
        assert_eq!(e.stack, id);
        assert_eq!(e.file, t.path("nope.env"));
        assert_contains(&e.message, "does not exist");
    }
}

#[test]
fn env_file_syntax_error_names_file_and_line() {
    let t = Tree::new();
    t.config(BASE);
    t.stack("good", SIMPLE);
    t.stack("bad", SIMPLE);
    let env = t.write("tree/bad/.env", "A=1\nB=2\nC=\"unterminated\n");
    let m = t.build();
    assert_eq!(ids(&m), ["good"]);
    let e = only_error(&m);
    assert_eq!((e.stack.as_str(), &e.file), ("bad", &env));
    assert!(e.message.starts_with("line 3: "), "{:?}", e.message);
}

// ---------------------------------------------------------------------------------
// Disabled stacks, discovery

#[test]
fn disabled_stacks_are_listed_but_not_layer_members() {
    let t = Tree::new();
    t.config(&format!(
        "{BASE}[stacks.apps-off-cfg]\nenabled = false\n[stacks.apps-on-cfg]\nenabled = true\n"
    ));
    let off = "x-hlsys:\n  enabled: false\nservices:\n  app: {image: busybox}\n";
    t.stack("apps/off-cfg", SIMPLE);
    t.stack("apps/off-x", off);
    t.stack("apps/on-cfg", off); // config beats x-hlsys
    t.stack("apps/on", SIMPLE);
    let m = t.build();
    assert!(m.errors.is_empty(), "{:#?}", m.errors);
    let en: Vec<(&str, bool)> = m.stacks.iter().map(|s| (s.id.as_str(), s.enabled)).collect();
    assert_eq!(
        en,
        [
            ("apps-off-cfg", false),
            ("apps-off-x", false),
            ("apps-on", true),
            ("apps-on-cfg", true)
        ]
    );
    assert_eq!(m.layer("apps").unwrap().stacks, ["apps-on", "apps-on-cfg"]);
}

#[test]
fn hidden_directories_and_below_a_stack_are_not_searched() {
    let t = Tree::new();
    t.config(BASE);
    t.stack("app", SIMPLE);
    t.stack("app/sub", SIMPLE); // below a stack: not a stack
    t.stack("app/.hidden", SIMPLE);
    t.stack(".git", SIMPLE);
    t.stack(".trash/old", SIMPLE);
    t.stack("grp/.cache/x", SIMPLE);
    t.stack("grp/real", SIMPLE);
    // Broken YAML below a stack is never read.
    t.stack("grp/real/nested", "services: [\n");
    let m = t.build();
    assert!(m.errors.is_empty(), "{:#?}", m.errors);
    assert_eq!(ids(&m), ["app", "grp-real"]);
}

#[test]
fn compose_file_names_in_compose_order() {
    let t = Tree::new();
    t.config(BASE);
    let a = t.write("tree/a/docker-compose.yml", SIMPLE);
    let b = t.write("tree/b/compose.yml", SIMPLE);
    let m = t.build();
    assert!(m.errors.is_empty(), "{:#?}", m.errors);
    assert_eq!(stack(&m, "a").compose_file, a);
    assert_eq!(stack(&m, "b").compose_file, b);
}

#[test]
fn missing_tree_is_reported_not_fatal() {
    let t = Tree::new();
    t.config(BASE);
    let m = t.build();
    assert!(!m.tree_available);
    let e = only_error(&m);
    assert_eq!((e.stack.as_str(), &e.file), ("(tree)", &t.path("tree")));
}

// ---------------------------------------------------------------------------------
// `hlsys stacks --json`

fn hlsys_stacks_json(config: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hlsys"))
        .arg("--config")
        .arg(config)
        .args(["stacks", "--json"])
        .env_remove("HLSYS_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().expect("exit code"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn keys(v: &serde_json::Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn assert_abs(v: &serde_json::Value, what: &str) {
    let s = v.as_str().unwrap_or_else(|| panic!("{what}: not a string: {v}"));
    assert!(s.starts_with('/'), "{what} is not absolute: {s:?}");
}

#[test]
fn stacks_json_contract_and_exit_codes() {
    let t = Tree::new();
    let cfg = t.config("stacks_dir = \"tree\"\nenv_files = [\"-global.env\"]\n");
    t.write("global.env", "TZ=UTC\n");
    t.stack(
        "apps/web",
        "services:\n  web: {image: busybox, networks: [proxy]}\nnetworks:\n  proxy: {external: true}\n",
    );
    t.stack("db", SIMPLE);

    // Clean tree: 0.
    let (code, out, err) = hlsys_stacks_json(&cfg);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(keys(&doc), BTreeSet::from(["stacks", "errors"]));
    assert_eq!(doc["errors"], serde_json::json!([]));
    let stacks = doc["stacks"].as_array().unwrap();
    assert_eq!(stacks.len(), 2);
    let want: BTreeSet<&str> = [
        "id",
        "layer",
        "dir",
        "compose_file",
        "compose_files",
        "project",
        "env_files",
        "services",
        "networks",
        "gpu",
        "requires",
        "wants",
        "unit",
        "enabled",
    ]
    .into();
    for s in stacks {
        assert_eq!(keys(s), want, "{s}");
        assert_abs(&s["dir"], "dir");
        assert_abs(&s["compose_file"], "compose_file");
        // no override file, no COMPOSE_FILE: the compose file alone
        assert_eq!(s["compose_files"], serde_json::json!([s["compose_file"]]), "{s}");
        for e in s["env_files"].as_array().unwrap() {
            assert_abs(e, "env_files entry");
        }
    }
    let web = &stacks[0];
    assert_eq!(web["id"], "apps-web");
    assert_eq!(web["layer"], "apps");
    assert_eq!(web["project"], "apps-web");
    assert_eq!(web["unit"], "homelab-apps-web.service");
    assert_eq!(web["dir"], t.path("tree/apps/web").to_str().unwrap());
    assert_eq!(
        web["compose_file"],
        t.path("tree/apps/web/compose.yaml").to_str().unwrap()
    );
    assert_eq!(
        web["env_files"],
        serde_json::json!([t.path("global.env").to_str().unwrap()])
    );
    assert_eq!(web["services"], serde_json::json!(["web"]));
    assert_eq!(web["networks"], serde_json::json!(["proxy"]));
    assert_eq!(web["gpu"], false);
    assert_eq!(web["enabled"], true);
    assert_eq!(stacks[1]["id"], "db");

    // One stack in error: 1, the error has exactly stack/file/message, absolute file.
    let bad = t.stack("broken", "services: [\n");
    let (code, out, err) = hlsys_stacks_json(&cfg);
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["stacks"].as_array().unwrap().len(), 2);
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{out}");
    assert_eq!(keys(&errors[0]), BTreeSet::from(["stack", "file", "message"]));
    assert_eq!(errors[0]["stack"], "broken");
    assert_eq!(errors[0]["file"], bad.to_str().unwrap());
    assert_abs(&errors[0]["file"], "error file");

    // Unusable config: 2, nothing on stdout, the file named on stderr.
    t.config("stacks_dir = \"tree\"\nbogus = 1\n");
    let (code, out, err) = hlsys_stacks_json(&cfg);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert_eq!(out, "");
    assert_contains(&err, &cfg.display().to_string());
    assert_contains(&err, "bogus");

    // A config path that does not exist, when asked for explicitly: 2 as well.
    let (code, _, err) = hlsys_stacks_json(&t.path("nope.toml"));
    assert_eq!(code, 2, "{err}");
}

// ---------------------------------------------------------------------------------
// The files of a stack: override file, COMPOSE_FILE, extends, include

#[test]
fn override_file_is_part_of_the_stack_and_of_the_fingerprint() {
    let t = Tree::new();
    t.config(BASE);
    let main = t.stack("apps/web", "services:\n  web: {image: busybox}\n");
    let over = t.write(
        "tree/apps/web/compose.override.yaml",
        "services:\n  web: {extends: {file: ../shared/gpu.yml, service: gpu}}\n  sidecar: {image: busybox}\n",
    );
    let shared = t.write("tree/apps/shared/gpu.yml", "services:\n  gpu: {runtime: nvidia}\n");
    let m = t.build();
    assert!(m.errors.is_empty(), "{:#?}", m.errors);
    let s = stack(&m, "apps-web");
    assert_eq!(s.compose_file, main);
    assert_eq!(s.compose_files, [main.clone(), over.clone()]);
    assert_eq!(s.services, ["sidecar", "web"]);
    assert!(s.gpu);
    for f in [&main, &over, &shared] {
        assert_eq!(
            m.inputs.get(f),
            Some(&hlsys_core::tree::fingerprint(f)),
            "{}",
            f.display()
        );
    }
    let args = hlsys::compose_cli::compose_args(s);
    let files: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--file")
        .map(|w| w[1].as_str())
        .collect();
    assert_eq!(files, [main.to_str().unwrap(), over.to_str().unwrap()]);
}

#[test]
fn compose_file_from_a_layer_env_is_relative_to_each_stack() {
    let t = Tree::new();
    t.config(BASE);
    t.write("tree/media/.env", "COMPOSE_FILE=compose.yaml:gpu.yml\n");
    for name in ["plex", "jelly"] {
        t.stack(&format!("media/{name}"), "services:\n  app: {image: busybox}\n");
        t.write(&format!("tree/media/{name}/gpu.yml"), "services:\n  app: {gpus: all}\n");
    }
    // listed but missing: the stack is reported with the file at fault
    t.stack("media/broken", SIMPLE);
    t.write("tree/media/broken/.env", "COMPOSE_FILE=compose.yaml:nope.yml\n");
    let m = t.build();
    assert_eq!(ids(&m), ["media-jelly", "media-plex"]);
    for id in ["media-jelly", "media-plex"] {
        let s = stack(&m, id);
        assert!(s.gpu, "{id}");
        assert_eq!(s.compose_files[1], s.dir.join("gpu.yml"));
    }
    let e = only_error(&m);
    assert_eq!(
        (e.stack.as_str(), &e.file),
        ("media-broken", &t.path("tree/media/broken/nope.yml"))
    );
}

#[test]
fn errors_in_other_files_name_that_file_and_line_never_a_value() {
    let t = Tree::new();
    t.config(BASE);
    t.stack("a", "include: [inc/compose.yaml]\nservices:\n  a: {image: busybox}\n");
    let inc = t.write("tree/a/inc/compose.yaml", "services:\n  b: {image: busybox\n");
    t.stack(
        "b",
        "services:\n  b: {image: busybox, volumes: [\"${SECRET}::/data\"]}\n",
    );
    t.write("tree/b/.env", "SECRET=hunter2\n");
    t.stack("c", SIMPLE);
    let over = t.write("tree/c/compose.override.yml", "services:\n  app: {extends: nope}\n");
    let m = t.build();
    assert!(m.stacks.is_empty(), "{:?}", ids(&m));
    let a = &errors_of(&m, "a")[0];
    assert_eq!(a.file, inc);
    assert!(a.message.starts_with("line 3"), "{}", a.message);
    let b = &errors_of(&m, "b")[0];
    assert_contains(&b.message, "services.b.volumes.0");
    assert_contains(&b.message, "empty section between colons");
    assert!(!b.message.contains("hunter2"), "{}", b.message);
    let c = &errors_of(&m, "c")[0];
    assert_eq!(c.file, over);
    assert_contains(&c.message, "services.app.extends");
}

#[test]
fn env_file_bytes_that_are_not_utf8() {
    let t = Tree::new();
    t.config(BASE);
    t.stack(
        "ok",
        "services:\n  app: {image: busybox, networks: [\"${NET}\"]}\nnetworks:\n  n: {}\n",
    );
    std::fs::write(t.path("tree/ok/.env"), b"# caf\xe9\nNET=n # cr\xe8me\n").unwrap();
    t.stack("bad", SIMPLE);
    let env = t.path("tree/bad/.env");
    std::fs::write(&env, b"A=1\n# \xe9\nTAG=caf\xe9\n").unwrap();
    let m = t.build();
    assert_eq!(ids(&m), ["ok"]);
    let e = only_error(&m);
    assert_eq!((e.stack.as_str(), &e.file), ("bad", &env));
    assert!(e.message.starts_with("line 3: "), "{:?}", e.message);
    assert!(!e.message.contains("caf"), "{:?}", e.message);
}
