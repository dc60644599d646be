//! Golden documents of the Compose → Swarm adjustment: every stack under
//! tests/fixtures/swarm is resolved by the real `docker compose config` (in its directory,
//! no -f, with its `.env`), adjusted as `hlsys swarm deploy` does, and compared with its
//! `expected.yaml` (document and notes) or `expected.err` (why Swarm cannot take it).
//! `UPDATE_GOLDEN=1 cargo test --test swarm_adjust` rewrites them; inspect the diff.

#[path = "common/compose_cli.rs"]
mod compose_cli;

use std::path::{Path, PathBuf};

use compose_cli::{compose_config_json, require_compose};
use hlsys_core::config::swarm::TreeBinds;
use hlsys_core::swarm::adjust::{adjust, Placement};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/swarm");

/// The adjusted document and notes as YAML, or the error, with the fixture path as /TREE.
fn render(dir: &Path, gpu_resource: Option<&str>) -> (String, &'static str) {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let env = dir.join(".env");
    let env_files: Vec<PathBuf> = env.exists().then_some(env).into_iter().collect();
    let project = compose_config_json(&name, dir, &[], &env_files).expect("docker compose config");
    let at = Placement {
        gpu_label: "hlsys.gpu",
        gpu_resource,
        // The fixtures directory stands for the stack tree.
        stacks_dir: Path::new(FIXTURES),
        tree_binds: TreeBinds::Pin,
        tree_node: "NODE",
    };
    let (text, file) = match adjust(&project, &at) {
        Ok(a) => {
            let golden = serde_json::json!({"document": a.document, "notes": a.notes, "gpu_services": a.gpu_services});
            (serde_yaml_ng::to_string(&golden).unwrap(), "expected")
        }
        Err(e) => (format!("{e}\n"), "expected.err"),
    };
    (text.replace(FIXTURES, "/TREE"), file)
}

fn check(dir: &Path, got: &str, file: &str) {
    let path = dir.join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    pretty_assertions::assert_eq!(want, got, "{} (UPDATE_GOLDEN=1 to refresh)", path.display());
}

#[test]
fn golden_documents() {
    if !require_compose() {
        return;
    }
    let mut seen = 0;
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("compose.yaml").exists() {
            continue;
        }
        let (got, kind) = render(&dir, None);
        check(&dir, &got, if kind == "expected" { "expected.yaml" } else { kind });
        seen += 1;
    }
    assert!(seen >= 3, "fixtures missing under {FIXTURES}");
}

/// Where a node advertises a GPU generic resource, GPU services also reserve it.
#[test]
fn gpu_generic_resource_reserved_when_advertised() {
    if !require_compose() {
        return;
    }
    let (got, _) = render(&Path::new(FIXTURES).join("gpu"), Some("NVIDIA-GPU"));
    check(&Path::new(FIXTURES).join("gpu"), &got, "expected-generic.yaml");
}

/// The swarm e2e tree's model, read from the fixture directory.
fn swarm_tree_model() -> hlsys_core::model::Model {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trees/swarm");
    let text = std::fs::read_to_string(dir.join("hlsys.toml"))
        .unwrap()
        .replace("\"/srv/compose\"", &format!("{:?}", dir.display().to_string()));
    let config = hlsys_core::config::Config::from_str_at(&text, &dir.join("hlsys.toml")).unwrap();
    hlsys_core::tree::build(config).unwrap()
}

/// What a stack that did not converge holds back: requirers (stack or layer), not wanters.
#[test]
fn held_back_follows_requires_not_wants() {
    use hlsys_core::swarm::held_back;
    let model = swarm_tree_model();
    assert!(model.errors.is_empty(), "{:?}", model.errors);
    let held = |failed: &[&str]| {
        let failed = failed.iter().map(|s| s.to_string()).collect();
        held_back(&model, &failed)
    };
    // genai-webui only wants the GPU stack, genai-agent requires it; the layers after
    // panel only order after it.
    let h = held(&["genai-ollama"]);
    assert_eq!(h.keys().collect::<Vec<_>>(), ["genai-agent"], "{h:?}");
    assert!(held(&["panel"]).is_empty());
    // Layer genai requires layer database: all of it waits, embed (wants-only) included.
    let h = held(&["database"]);
    assert_eq!(
        h.keys().collect::<Vec<_>>(),
        ["genai-agent", "genai-embed", "genai-ollama", "genai-webui"]
    );
    assert!(
        h["genai-embed"].contains("layer genai requires layer database"),
        "{h:?}"
    );
}

/// Inside a layer, a stack waits for the stacks of its layer that it requires, not for
/// those it only wants.
#[test]
fn waves_order_by_requires_within_a_layer() {
    use hlsys_core::swarm::waves;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("hlsys.toml", "stacks_dir = \"srv\"\n[layers.apps]\n");
    for s in ["db", "api", "web", "gpu", "aaa"] {
        write(
            &format!("srv/apps/{s}/compose.yaml"),
            "services:\n  x:\n    image: busybox\n",
        );
    }
    write(
        "srv/service.toml",
        "[apps-api]\nrequires = [\"apps-db\"]\n[apps-web]\nrequires = [\"apps-api\"]\nwants = [\"apps-gpu\"]\n\
         [apps-aaa]\nrequires = [\"apps-web\"]\n",
    );
    let config = hlsys_core::config::Config::load(&root.join("hlsys.toml"), true).unwrap();
    let model = hlsys_core::tree::build(config).unwrap();
    assert!(model.errors.is_empty(), "{:?}", model.errors);
    let w = waves(&model, model.layer("apps").unwrap());
    assert_eq!(
        w,
        [
            vec!["apps-db", "apps-gpu"],
            vec!["apps-api"],
            vec!["apps-web"],
            vec!["apps-aaa"]
        ]
    );
    // And when apps-db does not converge, what requires it (directly or not, sorting
    // before it or after) is held back.
    let held = hlsys_core::swarm::held_back(&model, &["apps-db".to_string()].into());
    assert_eq!(held.keys().collect::<Vec<_>>(), ["apps-aaa", "apps-api", "apps-web"]);
}
