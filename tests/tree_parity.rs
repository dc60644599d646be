//! Every valid stack of the example tree (and of every fixture tree with an hlsys.toml,
//! and every fake-root case under tests/cases/ with one) must have the services, networks
//! and GPU need that the real Compose v2 resolves with exactly the env files `hlsys stacks`
//! reports, with the files Compose selects itself (run in the stack directory without
//! `-f`), and those files must be the ones `hlsys stacks` reports (`compose_files`, what
//! `hlsys supervise` passes).

mod common;
#[path = "common/compose_cli.rs"]
mod compose_cli;

use std::path::{Path, PathBuf};

/// (host root, config file) of every tree: `/` for the example and the fixture trees
/// (their configs name their stacks_dir), the case directory for the fake-root cases.
fn config_files() -> Vec<(PathBuf, PathBuf)> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = vec![(PathBuf::from("/"), repo.join("examples/homelab/hlsys.toml"))];
    for (dir, config, fake_root) in [
        ("tests/fixtures/trees", "hlsys.toml", false),
        ("tests/cases", "etc/hlsys/hlsys.toml", true),
    ] {
        if let Ok(rd) = std::fs::read_dir(repo.join(dir)) {
            let mut cases: Vec<(PathBuf, PathBuf)> = rd
                .map(|e| e.unwrap().path())
                .filter(|case| case.join(config).is_file())
                .map(|case| (if fake_root { case.clone() } else { "/".into() }, case.join(config)))
                .collect();
            cases.sort();
            v.extend(cases);
        }
    }
    v
}

#[test]
fn model_matches_docker_compose_config() {
    if !common::require_root_and(&["docker"]) || !compose_cli::compose_available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "docker compose v2 missing in CI"
        );
        eprintln!("SKIP: docker compose v2 not available");
        return;
    }
    let mut checked = 0;
    for (root, cfg_path) in config_files() {
        let mut config = hlsys_core::config::Config::load_under(&root, &cfg_path, true).unwrap();
        common::trust_runner(&mut config);
        let model = hlsys_core::tree::build(config).unwrap();
        for s in &model.stacks {
            let want = compose_cli::compose_config_summary(&s.project, &s.dir, &s.env_files);
            compose_cli::same_files_as_compose(&s.project, &s.dir, &s.compose_files, &s.env_files)
                .unwrap_or_else(|e| panic!("stack {} of {}: compose files differ: {e}", s.id, cfg_path.display()));
            let got = compose_cli::Summary {
                services: s.services.iter().cloned().collect(),
                networks: s.networks.iter().cloned().collect(),
                gpu: s.gpu,
            };
            assert_eq!(got, want, "stack {} of {}", s.id, cfg_path.display());
            checked += 1;
        }
    }
    // The example tree alone has 7 valid stacks: an empty walk must not pass.
    assert!(checked >= 7, "only {checked} stacks checked");
    eprintln!("{checked} stacks match docker compose config");
}
